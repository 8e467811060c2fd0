-- Every file received, accepted or not, with why: the data engineers' audit trail in SQL, in log order (seq).
with log as (
    select * from {{ ref('stg_state__ingest_log') }}
),

current_files as (
    select distinct year, source_sha256 from {{ ref('int_official_results_current') }}
)

select
    log.seq,
    log.logged_at,
    log.dataset,
    log.year,
    log.institution_id,
    log.stage,
    log.work_unit,
    log.coverage,
    log.is_late,
    log.sha256,
    log.original_name,
    log.source_kind,
    log.received_at,
    log.status,
    log.n_rows,
    log.reason,
    log.takes_effect,
    log.changes_data,
    log.run_id,
    current_files.source_sha256 is not null or revisions.source_sha256 is not null as is_current
from log
left join current_files
    on log.dataset = 'official_results' and current_files.year = log.year and current_files.source_sha256 = log.sha256
    -- submissions: current when it is the current revision of its institution, year and stage
left join {{ ref('int_submission_revisions') }} as revisions
    on log.dataset = 'submissions' and revisions.source_sha256 = log.sha256 and revisions.is_current
