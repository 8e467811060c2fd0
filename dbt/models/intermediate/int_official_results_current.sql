-- The current official result per (institution, year): rows of the newest accepted release file of each
-- year. Older revisions stay in the lake and in stg_lake__official_results.
with ranked as (
    select
        *,
        dense_rank() over (partition by year order by received_at desc, source_sha256 desc) as revision_rank
    from {{ ref('stg_lake__official_results') }}
)

select * exclude (revision_rank)
from ranked
where revision_rank = 1
