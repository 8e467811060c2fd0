select
    framework,
    model as maturity_model,
    level::integer as level,
    nama as name,
    nilai::integer as score,
    kriteria_ringkas as criteria
from {{ ref('spbe_tingkat_kematangan') }}
