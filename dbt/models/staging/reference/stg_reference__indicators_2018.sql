select
    framework,
    indikator_no::integer as indicator,
    indikator_nama as name,
    aspek_no::integer as aspect_no,
    aspek_nama as aspect,
    domain_nama as domain,
    bobot_indikator_pct as weight_pct,
    indikator_permen59_terkait as related_indicator_2020,
    catatan as note
from {{ ref('spbe_indikator_permen5_2018') }}
