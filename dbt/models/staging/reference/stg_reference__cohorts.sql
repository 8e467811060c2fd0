select
    cohort_id,
    cohort_name,
    institution_id,
    source,
    status as source_status
from {{ ref('cohorts') }}
