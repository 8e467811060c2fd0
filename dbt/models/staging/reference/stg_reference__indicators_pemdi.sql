select
    -- "PermenPANRB 8/2026 (Indeks Pemdi)" -> "PermenPANRB 8/2026", as the predikat bands name it
    trim(split_part(framework, '(', 1)) as framework,
    indikator_no::integer as indicator,
    indikator_nama as name,
    aspek_no::integer as aspect_no,
    aspek_nama as aspect,
    bobot_indikator_pct as weight_pct,
    bobot_aspek_pct as aspect_weight_pct,
    status as source_status
from {{ ref('pemdi_indikator_permen8_2026_UNVERIFIED') }}
