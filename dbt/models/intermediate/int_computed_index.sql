-- The index computed from indicator levels, per institution x year x stage, with the framework weights
-- (PermenPANRB 59/2020): every aspect, domain and total index is the weight-averaged level of the indicators
-- beneath it. Over an incomplete submission the average is over the indicators present, and coverage says
-- how many that is.
with levels as (
    select l.*, i.weight_pct, i.aspect_no, i.domain_no
    from {{ ref('int_submission_levels') }} as l
    inner join {{ ref('stg_reference__indicators') }} as i
        on i.framework = l.framework and i.indicator = l.indicator
    where l.is_current
),

required as (
    select framework, count(*) as n_required from {{ ref('stg_reference__indicators') }} group by framework
),

by_domain as (
    select institution_id, year, stage, framework, domain_no,
           {{ weighted_level() }} as domain_index
    from levels
    group by all
),

totals as (
    select institution_id, year, stage, framework,
           {{ weighted_level() }} as index_value,
           count(*) as n_indicators
    from levels
    group by all
)

select
    t.institution_id,
    t.year,
    t.stage,
    t.framework,
    t.index_value,
    max(d.domain_index) filter (where d.domain_no = 1) as policy_index,
    max(d.domain_index) filter (where d.domain_no = 2) as governance_index,
    max(d.domain_index) filter (where d.domain_no = 3) as management_index,
    max(d.domain_index) filter (where d.domain_no = 4) as services_index,
    t.n_indicators,
    round(t.n_indicators / r.n_required, 4) as coverage
from totals as t
inner join required as r using (framework)
left join by_domain as d using (institution_id, year, stage, framework)
group by all
