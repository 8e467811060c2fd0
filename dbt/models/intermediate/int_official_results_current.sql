-- The current official result per (institution, year): rows of the file named by the year's latest
-- accepted landing event (loaded or duplicate) in the ingest log. A corrected release supersedes the
-- earlier file without deleting it, and landing an earlier file again makes it current again.
with landings as (
    select year, sha256, logged_at
    from {{ ref('stg_state__ingest_log') }}
    where dataset = 'official_results' and status in ('loaded', 'duplicate')
),

current_files as (
    select year, arg_max(sha256, logged_at) as source_sha256
    from landings
    group by year
)

select results.*
from {{ ref('stg_lake__official_results') }} as results
inner join current_files using (year, source_sha256)
