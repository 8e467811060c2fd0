-- Preparing for the future: every applicable target with its gap, the annual gain it still requires and a
-- linear projection. A target set for a group (e.g. the regional average, government_level = pemda)
-- applies to the group's mean and, as 'group_member', to each evaluated member institution.
-- Projection rule: latest + observed annual gain x years left, where the observed gain is the average
-- yearly change from the baseline (the target's own, else the first observation) to the latest value.
with targets as (
    select * from {{ ref('stg_reference__targets') }}
),

institutions as (
    select * from {{ ref('dim_institution') }}
),

series as (
    select 'national' as series_type, 'indonesia' as series_id, year, index_value
    from {{ ref('stg_reference__national_index') }}
    where index_value is not null
    union all
    select group_type, group_value, year, mean_index
    from {{ ref('agg_groups') }}
    where group_type in ('government_level', 'category', 'province')
    union all
    select 'institution', institution_id, year, index_value
    from {{ ref('int_index_series') }}
),

applications as (
    select t.*, t.subject_type as series_type, t.subject_id as series_id, 'direct' as applies_as
    from targets as t
    union all
    select t.*, 'institution', i.institution_id, 'group_member'
    from targets as t
    inner join institutions as i
        on (t.subject_type = 'government_level' and i.government_level = t.subject_id)
        or (t.subject_type = 'category' and i.category = t.subject_id)
        or (t.subject_type = 'province' and i.province_code = t.subject_id)
    where i.n_years_evaluated > 0
),

observed as (
    select
        a.target_id,
        a.series_type,
        a.series_id,
        arg_max(s.index_value, s.year) as latest_value,
        max(s.year) as latest_year,
        arg_min(s.index_value, s.year) as first_value,
        min(s.year) as first_year,
        max(s.index_value) filter (where s.year = a.target_year) as value_at_target_year
    from applications as a
    inner join series as s
        on s.series_type = a.series_type and s.series_id = a.series_id
    group by a.target_id, a.series_type, a.series_id
),

measured as (
    select
        a.target_id,
        a.series_type as subject_type,
        a.series_id as subject_id,
        a.applies_as,
        a.subject_type as target_subject_type,
        a.subject_id as target_subject_id,
        -- The target's own baseline (year and value together), else the first observation.
        case when a.applies_as = 'direct' and a.baseline_year is not null then a.baseline_year else o.first_year end
            as baseline_year,
        case when a.applies_as = 'direct' and a.baseline_year is not null then a.baseline_value else o.first_value end
            as baseline_value,
        o.latest_year,
        o.latest_value,
        a.target_year,
        a.target_value,
        o.value_at_target_year,
        a.source,
        a.source_status
    from applications as a
    left join observed as o
        on o.target_id = a.target_id and o.series_type = a.series_type and o.series_id = a.series_id
),

projected as (
    select
        *,
        round(target_value - latest_value, 4) as gap,
        target_year - latest_year as years_left,
        case when target_year > latest_year
            then round((target_value - latest_value) / (target_year - latest_year), 4) end as required_annual_gain,
        case when latest_year > baseline_year
            then round((latest_value - baseline_value) / (latest_year - baseline_year), 4) end as observed_annual_gain
    from measured
)

select
    p.target_id,
    p.subject_type,
    p.subject_id,
    case p.subject_type
        when 'national' then 'Indonesia (published national index)'
        when 'government_level' then 'mean of ' || p.subject_id || ' institutions'
        when 'category' then 'mean of ' || p.subject_id
        else coalesce(i.name, prov.province_name, p.subject_id)
    end as subject_name,
    p.applies_as,
    p.target_subject_type,
    p.target_subject_id,
    p.baseline_year,
    p.baseline_value,
    p.latest_year,
    p.latest_value,
    p.target_year,
    p.target_value,
    p.gap,
    p.years_left,
    p.required_annual_gain,
    p.observed_annual_gain,
    case when p.target_year >= p.latest_year and p.observed_annual_gain is not null
        then round(p.latest_value + p.observed_annual_gain * (p.target_year - p.latest_year), 4) end
        as projected_value,
    p.value_at_target_year,
    case
        when p.latest_year is null then 'no_data'
        when p.value_at_target_year is not null and p.value_at_target_year >= p.target_value then 'met'
        when p.value_at_target_year is not null then 'missed'
        when p.target_year < p.latest_year then 'not_observed'
        when p.latest_value >= p.target_value then 'achieved_early'
        when p.observed_annual_gain is null then 'no_trend'
        when p.latest_value + p.observed_annual_gain * (p.target_year - p.latest_year) >= p.target_value
            then 'on_track'
        else 'off_track'
    end as status,
    p.source,
    p.source_status
from projected as p
left join {{ ref('dim_institution') }} as i
    on p.subject_type = 'institution' and i.institution_id = p.subject_id
left join {{ ref('stg_reference__provinces') }} as prov
    on p.subject_type = 'province' and prov.province_code = p.subject_id
