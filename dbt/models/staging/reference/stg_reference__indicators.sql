select
    framework,
    indikator_no::integer as indicator,
    indikator_nama as name,
    indikator_gloss_en as name_en,
    aspek_no::integer as aspect_no,
    aspek_nama as aspect,
    domain_no::integer as domain_no,
    domain_nama as domain,
    bobot_indikator_pct as weight_pct,
    bobot_aspek_pct as aspect_weight_pct,
    bobot_domain_pct as domain_weight_pct,
    model_kematangan as maturity_model
from {{ ref('spbe_indikator_permen59_2020') }}
