-- The current secondary rows per year: those of the file named by the year's latest ingest-log line that takes
-- effect (as for official releases: a corrected file supersedes the earlier one without deleting it). Rows of
-- every institution, matched or not; several rows may quote one institution and year (a conflict is kept).
with current_files as (
    select year, arg_max(sha256, log_order) as source_sha256
    from {{ ref('stg_state__ingest_log') }}
    where dataset = 'secondary_results' and takes_effect
    group by year
)

select results.*
from {{ ref('stg_lake__secondary_results') }} as results
inner join current_files using (year, source_sha256)
