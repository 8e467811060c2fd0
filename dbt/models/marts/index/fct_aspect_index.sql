-- Aspect indices computed from the current indicator levels: institution x year x stage x aspect (the weight-averaged level of its indicators).
select
    l.institution_id,
    l.year,
    l.stage,
    l.framework,
    i.aspect_no,
    any_value(i.aspect) as aspect,
    any_value(i.domain_no) as domain_no,
    {{ weighted_level('l.level', 'i.weight_pct') }} as aspect_index,
    count(*) as n_indicators
from {{ ref('int_submission_levels') }} as l
inner join {{ ref('stg_reference__indicators') }} as i
    on i.framework = l.framework and i.indicator = l.indicator
where l.is_current
group by l.institution_id, l.year, l.stage, l.framework, i.aspect_no
