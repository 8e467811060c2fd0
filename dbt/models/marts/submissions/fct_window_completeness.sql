-- Who submitted what, per submission window (year x stage) and institution. Expected institutions are those
-- in the official results of that year, or of the latest earlier year with results (the round before the
-- decree). Status: submitted (on time), late, quarantined (only rejected files), missing. Institutions that
-- submitted without being expected are listed too, with is_expected false.
with windows as (
    select * from {{ ref('stg_reference__submission_windows') }}
),

official as (
    select distinct institution_id, year from {{ ref('int_official_results_current') }}
),

reference_years as (
    select w.year, max(o.year) as reference_year
    from (select distinct year from windows) as w
    inner join (select distinct year from official) as o on o.year <= w.year
    group by w.year
),

expected as (
    select w.year, w.stage, o.institution_id
    from windows as w
    inner join reference_years as r using (year)
    inner join official as o on o.year = r.reference_year
),

submitted as (
    select institution_id, year, stage, is_late, n_revisions, received_at
    from (
        select *, count(*) over (partition by institution_id, year, stage) as n_revisions
        from {{ ref('int_submission_revisions') }}
    )
    where is_current
),

quarantined as (
    select institution_id, year, stage, arg_max(reason, log_order) as last_rejection,
           count(distinct sha256) as n_rejected
    from {{ ref('stg_state__ingest_log') }}
    where dataset = 'submissions' and status = 'quarantined' and institution_id is not null
    group by all
),

keys as (
    select year, stage, institution_id from expected
    union
    select s.year, s.stage, s.institution_id from submitted as s
    inner join windows as w using (year, stage)
    union
    select q.year, q.stage, q.institution_id from quarantined as q
    inner join windows as w using (year, stage)
)

select
    k.year,
    k.stage,
    w.opens,
    w.closes,
    k.institution_id,
    i.name as institution_name,
    i.category,
    i.government_level,
    i.province_code,
    i.province_name,
    e.institution_id is not null as is_expected,
    case
        when s.institution_id is not null and not s.is_late then 'submitted'
        when s.institution_id is not null then 'late'
        when q.institution_id is not null then 'quarantined'
        else 'missing'
    end as status,
    s.n_revisions,
    s.received_at as last_received_at,
    coalesce(q.n_rejected, 0) as n_rejected,
    q.last_rejection
from keys as k
inner join windows as w using (year, stage)
left join expected as e using (year, stage, institution_id)
left join submitted as s using (year, stage, institution_id)
left join quarantined as q using (year, stage, institution_id)
left join {{ ref('dim_institution') }} as i using (institution_id)
