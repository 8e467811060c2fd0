select
    year,
    stage,
    opens,
    closes,
    source,
    status as source_status
from {{ ref('submission_windows') }}
