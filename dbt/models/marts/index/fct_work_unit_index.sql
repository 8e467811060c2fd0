-- Work units (OPD) inside each institution, ranked: which units carry the institution's index and which hold
-- it back. One row per institution x work unit x year x stage, from each unit's current file.
with units as (
    select * from {{ ref('int_work_unit_index') }}
),

official as (
    select institution_id, year, index_value as official_index
    from {{ ref('int_official_results_current') }}
)

select
    u.institution_id,
    d.name as institution_name,
    u.work_unit,
    u.year,
    u.stage,
    u.framework,
    u.index_value,
    u.policy_index,
    u.governance_index,
    u.management_index,
    u.services_index,
    u.n_indicators,
    u.coverage,
    rank() over (partition by u.institution_id, u.year, u.stage order by u.index_value desc) as rank_in_institution,
    count(*) over (partition by u.institution_id, u.year, u.stage) as n_work_units,
    avg(u.index_value) over (partition by u.institution_id, u.year, u.stage) as institution_mean_index,
    o.official_index,
    u.index_value - o.official_index as gap_to_official_index,
    u.source_sha256
from units as u
left join {{ ref('dim_institution') }} as d using (institution_id)
left join official as o using (institution_id, year)
