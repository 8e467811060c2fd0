-- The national story since 2018, each figure with its source: the published national index, the regional
-- (pemda) average against the 2.24 -> 3.5 target of the 2022 Sumedang workshop, and the institutions per
-- predikat. Figures come from the published national series, from aggregates quoted by news and ministry pages
-- (quoted), from the official per-institution results (computed, as agg_groups computes them) and from the
-- targets; several bases for one year and metric are all kept, side by side.
with series as (
    select year, 'national' as scope, 'national_index' as metric, index_value as value, 'index' as unit,
           'published_series' as basis,
           -- the national series' own source (data/reference/README.md)
           'KemenPANRB, Laporan Evaluasi SPBE 2024, Tabel 4' || coalesce('; ' || decree, '') as source,
           null::varchar as source_url, note as notes
    from {{ ref('stg_reference__national_index') }}
    where index_value is not null
),

quoted as (
    select year, scope, metric, value, unit, 'quoted' as basis,
           scope_as_printed || ': ' || value_as_printed as source, source_url, notes
    from {{ ref('stg_reference__published_aggregates') }}
),

groups as (
    select
        year,
        case group_type when 'national' then 'national' else group_value end as scope,
        n_institutions, mean_index, n_memuaskan, n_sangat_baik, n_baik, n_cukup, n_kurang
    from {{ ref('agg_groups') }}
    where group_type = 'national' or (group_type = 'government_level' and group_value in ('pusat', 'pemda'))
),

computed as (
    select year, scope, metric, value,
           case when metric = 'mean_index' then 'index' when metric like 'share_%' then 'percent' else 'count' end
               as unit,
           'computed' as basis,
           'official results per institution (fct_index, source official), as agg_groups' as source,
           null::varchar as source_url, null::varchar as notes
    from (
        select year, scope, mean_index, n_institutions::double as n_evaluated,
               n_memuaskan::double as n_memuaskan, n_sangat_baik::double as n_sangat_baik,
               n_baik::double as n_baik, n_cukup::double as n_cukup, n_kurang::double as n_kurang,
               round(100.0 * (n_memuaskan + n_sangat_baik + n_baik) / n_institutions, 2) as share_baik_or_better
        from groups
    ) unpivot (value for metric in (mean_index, n_evaluated, n_memuaskan, n_sangat_baik, n_baik, n_cukup, n_kurang,
                                   share_baik_or_better))
),

regional_target as (  -- the targets set for the regional governments together (the 2.24 -> 3.5 of 2022)
    select baseline_year as year, 'pemda' as scope, 'mean_index' as metric, baseline_value as value,
           'index' as unit, 'target_baseline' as basis, source, null::varchar as source_url,
           target_id || ' (' || source_status || ')' as notes
    from {{ ref('stg_reference__targets') }}
    where subject_type = 'government_level' and subject_id = 'pemda' and baseline_year is not null
    union all
    select target_year, 'pemda', 'mean_index', target_value, 'index', 'target', source, null,
           target_id || ' (' || source_status || ')'
    from {{ ref('stg_reference__targets') }}
    where subject_type = 'government_level' and subject_id = 'pemda'
)

select * from series
union all select * from quoted
union all select * from computed
union all select * from regional_target
