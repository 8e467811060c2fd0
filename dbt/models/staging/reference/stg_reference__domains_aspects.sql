select
    level,
    no::integer as number,
    nama as name,
    gloss_en as name_en,
    parent_domain_no as parent_domain_no,
    bobot_pct as weight_pct,
    jumlah_indikator::integer as n_indicators,
    indikator_range as indicator_range
from {{ ref('spbe_domain_aspek_permen59_2020') }}
