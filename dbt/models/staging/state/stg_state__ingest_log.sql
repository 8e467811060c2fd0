with source as (
    select * from {{ source('state', 'ingest_log') }}
),

renamed as (
    select
        sha256::varchar as sha256,
        dataset::varchar as dataset,
        year::integer as year,
        institution_id::varchar as institution_id,
        stage::varchar as stage,
        is_late::boolean as is_late,
        status::varchar as status,
        rows::integer as n_rows,
        reason::varchar as reason,
        original_name::varchar as original_name,
        source::varchar as source_kind,
        received_at::timestamptz as received_at,
        logged_at::timestamptz as logged_at
    from source
)

select * from renamed
