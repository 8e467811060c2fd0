select
    target_id,
    subject_type,
    subject_id,
    baseline_year,
    baseline_value,
    target_year,
    target_value,
    source,
    status as source_status
from {{ ref('targets') }}
