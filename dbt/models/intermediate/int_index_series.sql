-- One official index value per institution and year, with its place in the institution's history:
-- the basis for trends, rank changes and target projections.
select
    r.institution_id,
    r.year,
    r.index_value,
    i.government_level,
    i.category,
    i.province_code,
    lag(r.year) over w as previous_year,
    lag(r.index_value) over w as previous_index_value,
    first_value(r.year) over w as first_year,
    first_value(r.index_value) over w as first_index_value,
    count(*) over w as n_years,
    -- regr_slope of a single point is NaN in DuckDB; one year has no slope
    case when count(*) over w > 1 then regr_slope(r.index_value, r.year) over w end as slope_per_year
from {{ ref('int_official_results_current') }} as r
inner join {{ ref('stg_reference__institutions') }} as i using (institution_id)
where r.index_value is not null
window w as (partition by r.institution_id order by r.year rows between unbounded preceding and current row)
