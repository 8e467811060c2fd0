-- Year x group summaries of the official index. A region's province group holds the province government
-- and its kabupaten/kota. Counts per predikat use the published predikat.
with scored as (
    select f.year, f.index_value, f.predikat, i.government_level, i.category, i.province_code
    from {{ ref('fct_index') }} as f
    inner join {{ ref('dim_institution') }} as i using (institution_id)
    where f.source = 'official' and f.index_value is not null
),

grouped as (
    select *, 'national' as group_type, 'Indonesia' as group_value from scored
    union all
    select *, 'government_level', government_level from scored
    union all
    select *, 'category', category from scored
    union all
    select *, 'province', province_code from scored where province_code is not null
)

select
    year,
    group_type,
    group_value,
    count(*) as n_institutions,
    round(avg(index_value), 4) as mean_index,
    median(index_value) as median_index,
    min(index_value) as min_index,
    max(index_value) as max_index,
    count(*) filter (where predikat = 'Memuaskan') as n_memuaskan,
    count(*) filter (where predikat = 'Sangat Baik') as n_sangat_baik,
    count(*) filter (where predikat = 'Baik') as n_baik,
    count(*) filter (where predikat = 'Cukup') as n_cukup,
    count(*) filter (where predikat = 'Kurang') as n_kurang
from grouped
group by year, group_type, group_value
