-- Who to learn from: for each institution, year and peer group, every domain (official) or indicator (submitted
-- levels) where it sits below its peers' median, and the up to three peers strongest there. Peer groups are
-- the scopes of int_official_index_by_scope that name real peers: category, province, cohort (people-defined)
-- and previous_predikat (those who started the year in the same band).
with peer_groups as (
    select institution_id, year, scope as peer_scope, scope_value as peer_group
    from {{ ref('int_official_index_by_scope') }}
    where scope in ('category', 'province', 'cohort', 'previous_predikat')
),

members as (
    select g.peer_scope, g.peer_group, i.institution_id, i.year, i.basis, i.item_type, i.item_no, i.item_name,
           i.current_value as value
    from {{ ref('int_improvement_items') }} as i
    inner join peer_groups as g using (institution_id, year)
),

group_stats as (
    select year, peer_scope, peer_group, item_type, item_no, median(value) as peer_median, count(*) as n_peers
    from members
    group by all
),

-- the four strongest of each group and item are enough to name three mentors for anyone below them
leaders as (
    select *
    from members
    qualify row_number() over (
        partition by year, peer_scope, peer_group, item_type, item_no order by value desc, institution_id
    ) <= 4
),

weak as (
    select m.*, s.peer_median, s.n_peers
    from members as m
    inner join group_stats as s using (year, peer_scope, peer_group, item_type, item_no)
    where m.value < s.peer_median
),

matched as (
    select
        w.institution_id,
        w.year,
        w.peer_scope,
        w.peer_group,
        w.n_peers,
        w.basis,
        w.item_type,
        w.item_no,
        w.item_name,
        w.value as own_value,
        w.peer_median,
        l.institution_id as mentor_id,
        l.value as mentor_value,
        row_number() over (
            partition by w.institution_id, w.year, w.peer_scope, w.peer_group, w.item_type, w.item_no
            order by l.value desc, l.institution_id
        ) as mentor_rank
    from weak as w
    inner join leaders as l
        on l.year = w.year and l.peer_scope = w.peer_scope and l.peer_group = w.peer_group
        and l.item_type = w.item_type and l.item_no = w.item_no
    where l.institution_id != w.institution_id and l.value > w.value
)

select
    m.* exclude (mentor_id, mentor_value, mentor_rank, own_value, peer_median),
    round(m.own_value, 4) as own_value,
    round(m.peer_median, 4) as peer_median,
    m.mentor_rank,
    m.mentor_id,
    d.name as mentor_name,
    round(m.mentor_value, 4) as mentor_value,
    round(m.mentor_value - m.own_value, 4) as advantage,
    o.index_value as mentor_index
from matched as m
inner join {{ ref('dim_institution') }} as d on d.institution_id = m.mentor_id
left join {{ ref('int_official_results_current') }} as o on o.institution_id = m.mentor_id and o.year = m.year
where m.mentor_rank <= 3
