-- How a methodology change would move the results (like COINr's compare_coins): every index re-scored from
-- its domain indices under each weighting of dim_methodology, next to the index and rank as it stands. Two
-- bases: the official results (published domain indices; rank among everyone published that year) and the
-- computed final-stage indices (domains computed from submitted levels; rank among those computed).
-- 'recomputed' applies the official domain weights themselves, so its differences show what rounding of the
-- published values alone does. "As published" never changes: these are separate, labelled series.
with official as (
    select 'official' as basis, institution_id, year, index_value, predikat, policy_index, governance_index,
           management_index, services_index
    from {{ ref('int_official_results_current') }}
    where index_value is not null
    union all
    select 'computed', institution_id, year, index_value, predikat, policy_index, governance_index,
           management_index, services_index
    from {{ ref('fct_index') }}
    where source = 'computed' and stage = 'final' and is_complete
),

weightings as (
    select
        case when methodology_type = 'framework' then 'recomputed' else methodology_id end as methodology_id,
        methodology_type,
        policy_weight_pct,
        governance_weight_pct,
        management_weight_pct,
        services_weight_pct
    from {{ ref('dim_methodology') }}
    where policy_weight_pct is not null
),

bands as (
    select * from {{ ref('stg_reference__predikat_bands') }} where framework = 'PermenPANRB 59/2020'
),

rescored as (
    select
        o.basis,
        o.institution_id,
        o.year,
        w.methodology_id,
        w.methodology_type,
        o.index_value as index_as_published,
        o.predikat as predikat_as_published,
        (o.policy_index * w.policy_weight_pct + o.governance_index * w.governance_weight_pct
         + o.management_index * w.management_weight_pct + o.services_index * w.services_weight_pct) / 100
            as index_rescored,
        rank() over (partition by o.basis, w.methodology_id, o.year order by o.index_value desc) as rank_as_published
    from official as o
    cross join weightings as w
),

ranked as (
    select
        *,
        -- a row missing a domain cannot be re-scored; it keeps no rank under the variant
        case when index_rescored is not null then
            rank() over (partition by basis, methodology_id, year order by index_rescored desc nulls last) end
            as rank_rescored
    from rescored
)

select
    r.basis,
    r.institution_id,
    r.year,
    r.methodology_id,
    r.methodology_type,
    r.index_as_published,
    round(r.index_rescored, 4) as index_rescored,
    round(r.index_rescored - r.index_as_published, 4) as index_difference,
    r.rank_as_published,
    r.rank_rescored,
    r.rank_as_published - r.rank_rescored as rank_difference,
    r.predikat_as_published,
    b.predikat as predikat_rescored,
    b.predikat is distinct from r.predikat_as_published and b.predikat is not null as predikat_changes
from ranked as r
left join bands as b
    on r.index_rescored >= b.lower_bound
    and (r.index_rescored < b.upper_bound or (b.upper_bound_inclusive and r.index_rescored = b.upper_bound))
