-- Each official index value once per scope it is compared in: national (everyone), government_level
-- (pusat / pemda), category, province (a province government with its kabupaten/kota), cohort (groups
-- people define in data/reference/cohorts.csv) and previous_predikat (everyone who held the same predikat
-- the year before: peers that started from the same band). The one place that defines the scopes of
-- rankings, group summaries, peers and rank uncertainty.
with scored as (
    select
        f.institution_id,
        f.year,
        f.index_value,
        f.predikat,
        i.government_level,
        i.category,
        i.province_code
    from {{ ref('int_official_results_current') }} as f
    inner join {{ ref('stg_reference__institutions') }} as i using (institution_id)
    where f.index_value is not null
)

select institution_id, year, index_value, predikat, 'national' as scope, 'Indonesia' as scope_value from scored
union all
select institution_id, year, index_value, predikat, 'government_level', government_level from scored
union all
select institution_id, year, index_value, predikat, 'category', category from scored
union all
select institution_id, year, index_value, predikat, 'province', province_code from scored
where province_code is not null
union all
select s.institution_id, s.year, s.index_value, s.predikat, 'cohort', c.cohort_id
from scored as s
inner join {{ ref('stg_reference__cohorts') }} as c using (institution_id)
union all
select s.institution_id, s.year, s.index_value, s.predikat, 'previous_predikat', prev.predikat
from scored as s
inner join scored as prev on prev.institution_id = s.institution_id and prev.year = s.year - 1
