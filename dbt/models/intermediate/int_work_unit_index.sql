-- The index of each work unit (OPD) per year and stage, from its current self-assessment file: the file of
-- the latest ingest-log line that takes effect per (institution, work unit, year, stage), as for institutions.
-- Weighted like int_computed_index; over an incomplete file the average is over the indicators present.
with current_files as (
    select institution_id, work_unit, year, stage, arg_max(sha256, log_order) as source_sha256
    from {{ ref('stg_state__ingest_log') }}
    where dataset = 'work_unit_submissions' and takes_effect
    group by institution_id, work_unit, year, stage
),

levels as (
    select s.institution_id, s.work_unit, s.year, s.stage, s.framework, s.level, s.source_sha256,
           i.weight_pct, i.domain_no
    from {{ ref('stg_lake__work_unit_submissions') }} as s
    inner join current_files using (institution_id, work_unit, year, stage, source_sha256)
    inner join {{ ref('stg_reference__indicators') }} as i on i.framework = s.framework and i.indicator = s.indicator
),

required as (
    select framework, count(*) as n_required from {{ ref('stg_reference__indicators') }} group by framework
)

select
    l.institution_id,
    l.work_unit,
    l.year,
    l.stage,
    l.framework,
    any_value(l.source_sha256) as source_sha256,
    {{ weighted_level() }} as index_value,
    {{ weighted_level(where='domain_no = 1') }} as policy_index,
    {{ weighted_level(where='domain_no = 2') }} as governance_index,
    {{ weighted_level(where='domain_no = 3') }} as management_index,
    {{ weighted_level(where='domain_no = 4') }} as services_index,
    count(*) as n_indicators,
    round(count(*) / any_value(r.n_required), 4) as coverage
from levels as l
inner join required as r using (framework)
group by l.institution_id, l.work_unit, l.year, l.stage, l.framework
