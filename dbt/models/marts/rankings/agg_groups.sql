-- Year x group summaries of the official index, over the scopes of int_official_index_by_scope. A province
-- group holds the province government and its kabupaten/kota. Counts per predikat use the published predikat.
select
    year,
    scope as group_type,
    scope_value as group_value,
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
from {{ ref('int_official_index_by_scope') }}
group by year, scope, scope_value
