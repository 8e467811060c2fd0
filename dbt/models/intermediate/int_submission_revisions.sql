-- Every accepted submission file per (institution, year, stage), numbered in landing order. The current
-- revision is the file with the latest accepted landing event: a newer file supersedes an older one, and
-- sending an older file again makes it current again. Every revision stays in the lake.
with files as (
    select institution_id, year, stage, source_sha256,
           any_value(received_at) as received_at, any_value(original_name) as original_name,
           any_value(coverage) as coverage, bool_or(is_late) as is_late
    from {{ ref('stg_lake__submissions') }}
    group by institution_id, year, stage, source_sha256
),

landings as (
    select sha256 as source_sha256, min(logged_at) as first_landed_at, max(logged_at) as last_landed_at
    from {{ ref('stg_state__ingest_log') }}
    where dataset = 'submissions' and status in ('loaded', 'duplicate')
    group by sha256
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
                       order by landings.first_landed_at, files.source_sha256) as revision,
    landings.last_landed_at = max(landings.last_landed_at) over (
        partition by files.institution_id, files.year, files.stage) as is_current
from files
inner join landings using (source_sha256)
