-- The current official result per (institution, year): rows of the file named by the year's latest ingest-log
-- line that takes effect (lib/ingest_log.py decides that when the line is written). A corrected release
-- supersedes the earlier file without deleting it, and landing an earlier file again makes it current again.
with current_files as (
    select year, arg_max(sha256, log_order) as source_sha256
    from {{ ref('stg_state__ingest_log') }}
    where dataset = 'official_results' and takes_effect
    group by year
)

select results.*
from {{ ref('stg_lake__official_results') }} as results
inner join current_files using (year, source_sha256)
