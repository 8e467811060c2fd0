-- Calibration feedback: per institution x year x indicator, the self-assessed level against the final
-- (verified) level. over_claim > 0 means the institution rated itself higher than the assessors did. The
-- institution's mean over-claim and the indicator's national mean over-claim (with its rank, 1 = the most
-- over-claimed indicator of the year) sit on every row.
with levels as (
    select institution_id, year, framework, indicator, stage, level
    from {{ ref('int_submission_levels') }}
    where is_current and stage in ('self_assessment', 'final')
),

paired as (
    select
        institution_id,
        year,
        framework,
        indicator,
        max(level) filter (where stage = 'self_assessment') as self_assessed_level,
        max(level) filter (where stage = 'final') as final_level
    from levels
    group by all
    having count(distinct stage) = 2
),

gaps as (
    select *, self_assessed_level - final_level as over_claim from paired
),

by_indicator as (
    select year, indicator, avg(over_claim) as indicator_mean_over_claim, count(*) as n_institutions
    from gaps
    group by all
)

select
    g.institution_id,
    g.year,
    g.indicator,
    i.name as indicator_name,
    i.domain,
    g.self_assessed_level,
    g.final_level,
    g.over_claim,
    round(avg(g.over_claim) over (partition by g.institution_id, g.year), 4) as institution_mean_over_claim,
    round(b.indicator_mean_over_claim, 4) as indicator_mean_over_claim,
    dense_rank() over (partition by g.year order by b.indicator_mean_over_claim desc) as indicator_over_claim_rank,
    b.n_institutions as indicator_n_institutions
from gaps as g
inner join by_indicator as b using (year, indicator)
left join {{ ref('stg_reference__indicators') }} as i on i.framework = g.framework and i.indicator = g.indicator
