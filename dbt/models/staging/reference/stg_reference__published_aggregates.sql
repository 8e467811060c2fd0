select
    year::integer as year,
    scope::varchar as scope,
    scope_as_printed::varchar as scope_as_printed,
    metric::varchar as metric,
    value::double as value,
    unit::varchar as unit,
    value_as_printed::varchar as value_as_printed,
    source_url::varchar as source_url,
    notes::varchar as notes
from {{ ref('spbe_published_aggregates') }}
