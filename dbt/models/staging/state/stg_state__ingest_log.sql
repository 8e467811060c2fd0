-- depends_on: {{ source('state', 'ingest_log') }}
-- The ingest log up to the build's log position (var log_position, fixed before dbt starts): a file whose
-- line was written after it waits for the next build, so a publish holds exactly what its build read.
-- Lines written before lines were numbered count as position 0, ordered among themselves by when they were
-- logged (log_order: the order every "latest line" below follows).
with source as (
    select * from {{ read_ingest_log() }}
),

renamed as (
    select
        ---------- ids
        coalesce(seq, 0)::bigint as seq,
        row_number() over (order by coalesce(seq, 0), logged_at)::bigint as log_order,
        sha256::varchar as sha256,
        dataset::varchar as dataset,
        ---------- what the file is about
        year::integer as year,
        institution_id::varchar as institution_id,
        stage::varchar as stage,
        work_unit::varchar as work_unit,
        coverage::double as coverage,
        is_late::boolean as is_late,
        ---------- verdict
        status::varchar as status,
        rows::integer as n_rows,
        reason::varchar as reason,
        coalesce(takes_effect, status in ('loaded', 'duplicate'))::boolean as takes_effect,
        coalesce(changes_data, true)::boolean as changes_data,
        ---------- arrival
        original_name::varchar as original_name,
        source::varchar as source_kind,
        source_version::varchar as source_version,
        run_id::varchar as run_id,
        received_at::timestamptz as received_at,
        logged_at::timestamptz as logged_at
    from source
)

select * from renamed
where logged_at is not null  -- a torn line of a process killed while appending reads as nulls: not a line
    and seq <= {{ var('log_position', 9223372036854775807) }}
