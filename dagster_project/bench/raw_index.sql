-- The lower bound for `spbe bench`: the computed index, its domains and the yearly ranking of final
-- submissions, straight from the lake's Parquet files in one plain DuckDB statement (no staging views, no
-- tests, no revision history beyond "latest file per institution, work unit, year and stage"). Work units
-- (OPD) are ranked inside their institution; institutions nationally.
with levels as (
    select institution_id, coalesce(work_unit, '') as work_unit, year, stage, indicator, level, framework,
           source_sha256, received_at
    from read_parquet(getvariable('lake'), hive_partitioning = false, union_by_name = true)
),

current_files as (
    select institution_id, work_unit, year, stage, arg_max(source_sha256, received_at) as source_sha256
    from levels
    group by all
),

weights as (
    select framework, indikator_no as indicator, domain_no, bobot_indikator_pct as weight_pct
    from read_csv(getvariable('indicators'), header = true)
),

current_levels as (
    select l.institution_id, l.work_unit, l.year, l.stage, l.level, w.domain_no, w.weight_pct
    from levels as l
    inner join current_files as c using (institution_id, work_unit, year, stage, source_sha256)
    inner join weights as w on w.framework = l.framework and w.indicator = l.indicator
),

domains as (
    select institution_id, work_unit, year, stage, domain_no,
           sum(level * weight_pct) / sum(weight_pct) as domain_index
    from current_levels
    group by all
),

index as (
    select institution_id, work_unit, year, stage, sum(level * weight_pct) / sum(weight_pct) as index_value
    from current_levels
    group by all
)

select
    i.institution_id,
    nullif(i.work_unit, '') as work_unit,
    i.year,
    i.stage,
    i.index_value,
    max(d.domain_index) filter (where d.domain_no = 1) as policy_index,
    max(d.domain_index) filter (where d.domain_no = 2) as governance_index,
    max(d.domain_index) filter (where d.domain_no = 3) as management_index,
    max(d.domain_index) filter (where d.domain_no = 4) as services_index,
    case when i.work_unit <> '' then rank() over (
            partition by i.institution_id, i.year, i.stage, i.work_unit <> '' order by i.index_value desc)
         when i.stage = 'final' then rank() over (
            partition by i.year, i.stage = 'final' and i.work_unit = '' order by i.index_value desc)
    end as rank
from index as i
inner join domains as d using (institution_id, work_unit, year, stage)
group by i.institution_id, i.work_unit, i.year, i.stage, i.index_value
