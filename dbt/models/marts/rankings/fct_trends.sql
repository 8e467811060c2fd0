-- Learning from the past: each institution's and each group's index by year, the change since the
-- previous evaluated year, the least-squares slope so far and the direction. Groups use agg_groups means;
-- 'national_published' is KemenPANRB's published national series (2018 onwards). An institution's values
-- quoted by news, regional and ministry pages before the decree are its longer history: they stand beside
-- the official points, marked source_tier 'secondary' with their pages, and never enter a change or a slope.
with institutions as (
    select
        'institution' as entity_type,
        s.institution_id as entity_id,
        d.name as entity_name,
        s.year,
        s.index_value,
        s.previous_year,
        s.previous_index_value,
        s.n_years,
        s.slope_per_year
    from {{ ref('int_index_series') }} as s
    inner join {{ ref('dim_institution') }} as d using (institution_id)
),

group_series as (
    select
        g.group_type as entity_type,
        g.group_value as entity_id,
        coalesce(p.province_name, g.group_value) as entity_name,
        g.year,
        g.mean_index as index_value
    from {{ ref('agg_groups') }} as g
    left join {{ ref('stg_reference__provinces') }} as p
        on g.group_type = 'province' and p.province_code = g.group_value
    -- a previous_predikat group has new members every year: its mean is no trend
    where g.group_type != 'previous_predikat'
    union all
    select 'national_published', 'Indonesia', 'Indeks SPBE Nasional (published)', year, index_value
    from {{ ref('stg_reference__national_index') }}
    where index_value is not null
),

groups as (
    select
        *,
        lag(year) over w as previous_year,
        lag(index_value) over w as previous_index_value,
        count(*) over w as n_years,
        case when count(*) over w > 1 then regr_slope(index_value, year) over w end as slope_per_year
    from group_series
    window w as (partition by entity_type, entity_id order by year rows between unbounded preceding and current row)
),

quoted as (
    select
        'institution' as entity_type,
        q.institution_id as entity_id,
        d.name as entity_name,
        q.year,
        q.index_value,
        'secondary' as source_tier,
        q.source_urls,
        q.source_row_number
    from {{ ref('int_secondary_results_current') }} as q
    inner join {{ ref('dim_institution') }} as d using (institution_id)
    where q.index_value is not null
),

unioned as (
    select *, 'official' as source_tier from institutions
    union all by name
    select *, 'official' as source_tier from groups
    union all by name
    select * from quoted
)

select
    entity_type,
    entity_id,
    entity_name,
    year,
    index_value,
    previous_year,
    previous_index_value,
    round(index_value - previous_index_value, 4) as change,
    n_years,
    round(slope_per_year, 4) as slope_per_year,
    case
        when source_tier = 'secondary' then null
        when previous_index_value is null then 'first'
        when index_value > previous_index_value then 'up'
        when index_value < previous_index_value then 'down'
        else 'flat'
    end as direction,
    source_tier,
    source_urls,
    source_row_number
from unioned
