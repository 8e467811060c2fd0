-- Secondary rows whose institution is not in the registry: listed with the reason, never dropped and never
-- guessed. Add an alias (data/reference/institution_aliases.csv) for a name you can confirm; the next build
-- matches it.
select
    year,
    published_name,
    published_category,
    given_institution_id,
    unmatched_reason,
    index_value,
    predikat,
    source_urls,
    notes,
    source_sha256,
    source_row_number,
    release_url
from {{ ref('int_secondary_results_current') }}
where institution_id is null
