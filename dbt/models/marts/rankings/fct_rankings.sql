-- Rankings of the official index per year in four scopes. Ties share the lowest rank (1, 2, 2, 4);
-- percentile is 100 for the top and 0 for the bottom; rank_change is positive when an institution climbed
-- since the previous year in the same scope.
with ranked as (
    select
        institution_id,
        year,
        scope,
        scope_value,
        index_value,
        predikat,
        rank() over w as rank,
        count(*) over (partition by year, scope, scope_value) as n
    from {{ ref('int_official_index_by_scope') }}
    window w as (partition by year, scope, scope_value order by index_value desc)
)

select
    cur.institution_id,
    cur.year,
    cur.scope,
    cur.scope_value,
    cur.rank,
    cur.n,
    round(case when cur.n = 1 then 100 else 100.0 * (cur.n - cur.rank) / (cur.n - 1) end, 1) as percentile,
    cur.index_value,
    cur.predikat,
    prev.rank as previous_rank,
    prev.rank - cur.rank as rank_change
from ranked as cur
left join ranked as prev
    on prev.institution_id = cur.institution_id
    and prev.scope = cur.scope
    and prev.scope_value = cur.scope_value
    and prev.year = cur.year - 1
