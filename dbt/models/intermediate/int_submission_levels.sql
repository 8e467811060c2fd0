-- Every indicator level of every accepted submission revision, with its revision number and whether it is current.
select
    s.institution_id,
    s.year,
    s.indicator,
    s.stage,
    r.revision,
    r.is_current,
    s.level,
    s.framework,
    s.explanation,
    s.evidence,
    s.submitted_at,
    r.is_late,
    s.source_sha256,
    s.source_row_number,
    s.received_at
from {{ ref('stg_lake__submissions') }} as s
inner join {{ ref('int_submission_revisions') }} as r using (institution_id, year, stage, source_sha256)
