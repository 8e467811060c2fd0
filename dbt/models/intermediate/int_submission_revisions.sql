-- Every accepted submission file per (institution, year, stage), numbered in landing order. The current
-- revision is the file of the latest ingest-log line that takes effect (lib/ingest_log.py): a newer file
-- supersedes an older one, sending an older file again makes it current again, and an incomplete file never
-- replaces a complete one. Every revision stays in the lake.
with files as (
    select institution_id, year, stage, source_sha256,
           any_value(received_at) as received_at, any_value(original_name) as original_name,
           any_value(coverage) as coverage, bool_or(is_late) as is_late
    from {{ ref('stg_lake__submissions') }}
    group by institution_id, year, stage, source_sha256
),

log as (
    select * from {{ ref('stg_state__ingest_log') }}
    where dataset = 'submissions' and status in ('loaded', 'duplicate')
),

landings as (
    select sha256 as source_sha256, min(log_order) as first_order,
           min(logged_at) as first_landed_at, max(logged_at) as last_landed_at
    from log
    group by sha256
),

current_files as (
    select institution_id, year, stage, arg_max(sha256, log_order) as source_sha256
    from log
    where takes_effect
    group by institution_id, year, stage
)

select
    files.institution_id,
    files.year,
    files.stage,
    files.source_sha256,
    files.original_name,
    files.received_at,
    files.coverage,
    files.is_late,
    landings.first_landed_at,
    landings.last_landed_at,
    row_number() over (partition by files.institution_id, files.year, files.stage
                       order by landings.first_order, files.source_sha256) as revision,
    current_files.source_sha256 is not null as is_current
from files
inner join landings using (source_sha256)
left join current_files using (institution_id, year, stage, source_sha256)
