with registry as (
    select * from {{ ref('stg_reference__institutions') }}
),

provinces as (
    select * from {{ ref('stg_reference__provinces') }}
),

evaluated as (
    select
        institution_id,
        min(year) as first_evaluated_year,
        max(year) as last_evaluated_year,
        count(distinct year) as n_years_evaluated,
        string_agg(distinct published_name, ' | ' order by published_name) as published_names
    from {{ ref('int_official_results_current') }}
    group by institution_id
)

select
    registry.institution_id,
    registry.name,
    registry.category,
    registry.government_level,
    registry.kemendagri_code,
    registry.province_code,
    provinces.province_name,
    evaluated.first_evaluated_year,
    evaluated.last_evaluated_year,
    coalesce(evaluated.n_years_evaluated, 0) as n_years_evaluated,
    evaluated.published_names
from registry
left join provinces using (province_code)
left join evaluated using (institution_id)
