-- Revision history: every accepted file per institution x year x stage, oldest first, with the current one
-- marked. Landing a file again shows in fct_ingest_log, not here: a re-run changes no row of this mart.
select
    r.institution_id,
    d.name as institution_name,
    r.year,
    r.stage,
    r.revision,
    r.is_current,
    r.source_sha256,
    r.original_name,
    r.received_at,
    r.first_landed_at,
    r.coverage,
    r.is_late
from {{ ref('int_submission_revisions') }} as r
left join {{ ref('dim_institution') }} as d using (institution_id)
