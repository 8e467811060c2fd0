select
    -- "PermenPANRB 59/2020 (Tabel 13)" -> "PermenPANRB 59/2020", the framework name used everywhere else
    trim(split_part(framework, '(', 1)) as framework,
    predikat,
    batas_bawah_inklusif as lower_bound,
    batas_atas as upper_bound,
    batas_atas_inklusif as upper_bound_inclusive,
    status_sumber as source_status
from {{ ref('spbe_predikat') }}
