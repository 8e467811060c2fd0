-- The index per institution x year x source x stage. Official rows are stored as published: the band of
-- the 2-decimal index is shown next to the published predikat; they differ only at band edges, where the
-- published one (set on the unrounded index) stands. Computed rows come from the submitted indicator levels
-- of each stage; their predikat is the band of the unrounded computed value, and the computed final index is
-- compared with the official one of the same year. Secondary rows are values quoted by news, regional and
-- ministry pages (matched to the registry; unmatched ones are in fct_secondary_unmatched), as printed, with
-- their source pages: source_tier tells them apart, and nothing official reads them.
with official as (
    select * from {{ ref('int_official_results_current') }}
),

computed as (
    select * from {{ ref('int_computed_index') }}
),

secondary as (
    select * from {{ ref('int_secondary_results_current') }}
    where institution_id is not null
),

bands as (
    select * from {{ ref('stg_reference__predikat_bands') }}
),

official_rows as (
    select
        official.institution_id,
        official.year,
        'official' as source,
        'official' as source_tier,
        'final' as stage,
        official.framework,
        official.index_value,
        official.predikat as published_predikat,
        official.predikat_consistency = 'band_edge_below' as is_band_edge_predikat,
        official.policy_index,
        official.governance_index,
        official.management_index,
        official.services_index,
        official.missing_values is null as is_complete,
        official.missing_values,
        official.formula_residual,
        null::double as coverage,
        null::double as official_index_value,
        null::double as difference_vs_official,
        official.published_name,
        official.source_note,
        official.source_sha256,
        official.source_row_number,
        null::varchar as source_urls,
        null::integer as index_decimals,
        official.received_at
    from official
),

computed_rows as (
    select
        computed.institution_id,
        computed.year,
        'computed' as source,
        'official' as source_tier,
        computed.stage,
        computed.framework,
        computed.index_value,
        null::varchar as published_predikat,
        false as is_band_edge_predikat,
        computed.policy_index,
        computed.governance_index,
        computed.management_index,
        computed.services_index,
        computed.coverage = 1 as is_complete,
        case when computed.coverage < 1 then 'indicators missing' end as missing_values,
        null::double as formula_residual,
        computed.coverage,
        official.index_value as official_index_value,
        case when computed.stage = 'final' then round(computed.index_value - official.index_value, 4) end
            as difference_vs_official,
        null::varchar as published_name,
        null::varchar as source_note,
        null::varchar as source_sha256,
        null::integer as source_row_number,
        null::varchar as source_urls,
        null::integer as index_decimals,
        null::timestamptz as received_at
    from computed
    left join official using (institution_id, year)
),

secondary_rows as (
    select
        secondary.institution_id,
        secondary.year,
        'secondary' as source,
        'secondary' as source_tier,
        'final' as stage,
        secondary.framework,
        secondary.index_value,
        secondary.predikat as published_predikat,
        secondary.predikat_consistency = 'band_edge_below' as is_band_edge_predikat,
        secondary.policy_index,
        secondary.governance_index,
        secondary.management_index,
        secondary.services_index,
        secondary.index_value is not null
            and secondary.policy_index is not null and secondary.governance_index is not null
            and secondary.management_index is not null and secondary.services_index is not null as is_complete,
        case when secondary.index_value is null then 'index not printed (predikat only)' end as missing_values,
        secondary.formula_residual,
        null::double as coverage,
        null::double as official_index_value,
        null::double as difference_vs_official,
        secondary.published_name,
        secondary.notes as source_note,
        secondary.source_sha256,
        secondary.source_row_number,
        secondary.source_urls,
        secondary.index_decimals,
        secondary.received_at
    from secondary
),

unioned as (
    select * from official_rows
    union all
    select * from computed_rows
    union all
    select * from secondary_rows
)

-- One band lookup for all: the band of the value as stored (2 decimals for official rows, unrounded for
-- computed ones, as printed for secondary ones) under its year's framework. A published or printed predikat is
-- kept as it is. The 2018 framework has no bands in the reference: its rows get none.
select
    unioned.* exclude (published_predikat, is_band_edge_predikat),
    -- a secondary row's predikat is the one its source printed, never derived
    case when unioned.source_tier = 'secondary' then unioned.published_predikat
         else coalesce(unioned.published_predikat, bands.predikat) end as predikat,
    bands.predikat as predikat_of_rounded_index,
    unioned.is_band_edge_predikat
from unioned
left join bands
    on bands.framework = unioned.framework
    and unioned.index_value >= bands.lower_bound
    and (unioned.index_value < bands.upper_bound
         or (bands.upper_bound_inclusive and unioned.index_value = bands.upper_bound))
