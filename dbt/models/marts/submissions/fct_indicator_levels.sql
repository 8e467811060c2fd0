-- Indicator levels submitted at every stage: institution x year x indicator x stage x revision.
-- is_current marks the revision that counts.
select * from {{ ref('int_submission_levels') }}
