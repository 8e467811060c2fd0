{{ config(meta={'dagster': {'ref': {'name': 'fct_index'}}}) }}
-- PermenPANRB 59/2020: index = sum of domain indices x domain weights, within the rounding of published
-- 2-decimal values. The weights come from the reference seed, not from this file.
with weights as (
    select
        max(weight_pct) filter (where number = 1) / 100 as w1,
        max(weight_pct) filter (where number = 2) / 100 as w2,
        max(weight_pct) filter (where number = 3) / 100 as w3,
        max(weight_pct) filter (where number = 4) / 100 as w4
    from {{ ref('stg_reference__domains_aspects') }}
    where level = 'domain'
)

select f.institution_id, f.year, f.index_value,
       f.policy_index * w1 + f.governance_index * w2 + f.management_index * w3 + f.services_index * w4 as weighted
from {{ ref('fct_index') }} as f
cross join weights
where f.source = 'official'
  and f.framework = 'PermenPANRB 59/2020'
  and f.is_complete
  and abs(f.index_value - (f.policy_index * w1 + f.governance_index * w2 + f.management_index * w3
                           + f.services_index * w4)) > {{ var('formula_tolerance') }}
