select
    scenario_id,
    scenario_name,
    domain_no,
    weight_pct,
    rationale
from {{ ref('weighting_scenarios') }}
