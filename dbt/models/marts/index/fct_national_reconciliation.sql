-- The published national index against aggregates of the published institution results. KemenPANRB does
-- not publish its aggregation rule, and the published figure is not the plain mean, so nothing is forced:
-- our rule is the plain mean of the official index of every evaluated institution, and the difference to
-- the published figure is reported. Other candidate aggregates are shown for comparison.
with results as (
    select f.year, f.index_value, i.government_level
    from {{ ref('fct_index') }} as f
    inner join {{ ref('dim_institution') }} as i using (institution_id)
    where f.source = 'official' and f.index_value is not null
),

aggregates as (
    select
        year,
        count(*) as n_institutions,
        count(*) filter (where government_level = 'pusat') as n_pusat,
        count(*) filter (where government_level = 'pemda') as n_pemda,
        avg(index_value) as mean_all,
        median(index_value) as median_all,
        avg(index_value) filter (where government_level = 'pusat') as mean_pusat,
        avg(index_value) filter (where government_level = 'pemda') as mean_pemda
    from results
    group by year
)

select
    a.year,
    n.index_value as published_national_index,
    a.n_institutions,
    n.n_institutions as published_n_institutions,
    a.n_pusat,
    a.n_pemda,
    'plain mean of the official index of every evaluated institution' as rule,
    round(a.mean_all, 4) as computed_national_index,
    round(n.index_value - a.mean_all, 4) as difference,
    round(a.median_all, 4) as median_all,
    round(a.mean_pusat, 4) as mean_pusat,
    round(a.mean_pemda, 4) as mean_pemda,
    round((a.mean_pusat + a.mean_pemda) / 2, 4) as mean_of_pusat_and_pemda
from aggregates as a
left join {{ ref('stg_reference__national_index') }} as n using (year)
