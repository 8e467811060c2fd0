-- Each official index value once per scope it is compared in: national (everyone), government_level
-- (pusat / pemda), category, and province (a province government with its kabupaten/kota). The one place
-- that defines the scopes of rankings and group summaries.
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
