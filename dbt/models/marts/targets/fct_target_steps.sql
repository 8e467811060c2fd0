-- The shortest list of one-level steps that reaches each target of an institution, from its latest year of
-- each basis. Steps are taken largest gain first. That list is minimal: every step of an item adds the same
-- gain, so no k steps can add more than the k largest gains, and the list stops at the first k that closes
-- the gap (tests/test_analysis.py checks it against every shorter list's best sum).
with items as (
    select *
    from {{ ref('int_improvement_items') }}
    qualify year = max(year) over (partition by institution_id, basis)
),

targets as (
    select target_id, subject_id as institution_id, applies_as, target_year, target_value
    from {{ ref('fct_target_gap') }}
    where subject_type = 'institution'
),

steps as (
    select
        items.*,
        k as step_of_item,
        least(items.current_value + (k - 1) * items.level_per_step, 5) as from_value,
        least(items.current_value + k * items.level_per_step, 5) as to_value
    from items
    cross join unnest(range(1, items.steps_available + 1)) as s(k)
),

ordered as (
    select
        *,
        row_number() over (
            partition by institution_id, year, basis order by gain_per_step desc, from_value, item_no, step_of_item
        ) as step_no
    from steps
),

cumulative as (
    select
        *,
        sum(gain_per_step) over (
            partition by institution_id, year, basis order by step_no rows unbounded preceding
        ) as cumulative_gain,
        sum(gain_per_step) over (partition by institution_id, year, basis) as max_gain
    from ordered
),

planned as (
    select
        t.target_id,
        t.applies_as,
        t.target_year,
        t.target_value,
        c.*,
        round(t.target_value - c.current_index, 6) as gap
    from targets as t
    inner join cumulative as c using (institution_id)
    where t.target_year >= c.year
      and t.target_value > c.current_index
      -- a step belongs to the plan while the steps before it have not closed the gap
      and c.cumulative_gain - c.gain_per_step < t.target_value - c.current_index - 1e-9
)

select
    target_id,
    institution_id,
    year,
    basis,
    stage,
    applies_as,
    target_year,
    target_value,
    current_index,
    gap,
    step_no,
    item_type,
    item_no,
    item_name,
    domain_no,
    round(from_value, 4) as from_value,
    round(to_value, 4) as to_value,
    round(gain_per_step, 6) as gain,
    round(cumulative_gain, 6) as cumulative_gain,
    round(current_index + cumulative_gain, 4) as index_after,
    count(*) over (partition by target_id, institution_id, basis) as n_steps,
    max_gain >= gap - 1e-9 as is_reachable
from planned
