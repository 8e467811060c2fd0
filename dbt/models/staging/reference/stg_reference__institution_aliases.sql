select
    institution_id,
    alias as published_name,
    first_year,
    last_year
from {{ ref('institution_aliases') }}
