-- A secondary value against the decree for the same institution and year: agree (within the rounding of what
-- was printed), differ (by how much), or only one tier present. Several secondary rows for one institution and
-- year are each compared, and flagged as a conflict when they disagree among themselves.
with official as (
    select institution_id, year, index_value, predikat
    from {{ ref('fct_index') }}
    where source = 'official'
),

secondary as (
    select institution_id, year, index_value, predikat, index_decimals, source_urls, source_row_number,
           count(*) over same as n_secondary_rows,
           count(distinct index_value) over same > 1
               or count(distinct predikat) over same > 1 as is_secondary_conflict
    from {{ ref('fct_index') }}
    where source = 'secondary'
    window same as (partition by institution_id, year)
),

paired as (
    select
        coalesce(s.institution_id, o.institution_id) as institution_id,
        coalesce(s.year, o.year) as year,
        o.index_value as official_index_value,
        o.predikat as official_predikat,
        s.index_value as secondary_index_value,
        s.predikat as secondary_predikat,
        s.index_decimals as secondary_index_decimals,
        s.source_urls as secondary_source_urls,
        s.source_row_number as secondary_row_number,
        coalesce(s.n_secondary_rows, 0) as n_secondary_rows,
        coalesce(s.is_secondary_conflict, false) as is_secondary_conflict
    from secondary as s
    full outer join official as o using (institution_id, year)
)

select
    *,
    round(secondary_index_value - official_index_value, 4) as difference,
    case
        when official_index_value is null and official_predikat is null then 'secondary_only'
        when secondary_index_value is null and secondary_predikat is null then 'official_only'
        when secondary_index_value is null then
            case when secondary_predikat = official_predikat then 'agree' else 'differ' end
        -- a value printed with d decimals agrees with any official value it rounds from
        when abs(secondary_index_value - official_index_value)
             <= 0.5 * pow(10, -coalesce(secondary_index_decimals, 2)) + 1e-9
             and (secondary_predikat is null or secondary_predikat = official_predikat) then 'agree'
        else 'differ'
    end as comparison
from paired
