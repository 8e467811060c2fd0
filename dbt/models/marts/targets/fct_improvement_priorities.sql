-- What to improve next: every indicator (or, where only official domain indices exist, every domain) of an
-- institution and year, with the index one more level would add, ranked. See int_improvement_items for the
-- two bases and how a step's gain is defined.
select
    institution_id,
    year,
    basis,
    stage,
    current_index,
    item_type,
    item_no,
    item_name,
    domain_no,
    current_value,
    weight_pct,
    case when steps_available > 0 then round(gain_per_step, 6) else 0 end as gain_per_step,
    steps_available,
    round(gain_per_step * steps_available, 6) as gain_at_level_5,
    rank() over (
        partition by institution_id, year, basis
        order by case when steps_available > 0 then gain_per_step else 0 end desc, current_value
    ) as priority_rank
from {{ ref('int_improvement_items') }}
