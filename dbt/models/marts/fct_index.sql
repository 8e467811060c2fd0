-- Official values stored as published. The band of the 2-decimal index is shown next to the published
-- predikat; they differ only at band edges, where the published one (set on the unrounded index) stands.
with results as (
    select * from {{ ref('int_official_results_current') }}
),

bands as (
    select * from {{ ref('stg_reference__predikat_bands') }}
)

select
    results.institution_id,
    results.year,
    'official' as source,
    'final' as stage,
    results.framework,
    results.index_value,
    results.predikat,
    bands.predikat as predikat_of_rounded_index,
    results.predikat_consistency = 'band_edge_below' as is_band_edge_predikat,
    results.policy_index,
    results.governance_index,
    results.management_index,
    results.services_index,
    results.missing_values is null as is_complete,
    results.missing_values,
    results.formula_residual,
    results.published_name,
    results.source_note,
    results.source_sha256,
    results.source_row_number,
    results.received_at
from results
left join bands
    on bands.framework = results.framework
    and results.index_value >= bands.lower_bound
    and (results.index_value < bands.upper_bound
         or (bands.upper_bound_inclusive and results.index_value = bands.upper_bound))
