-- Indicators of every framework version. PermenPANRB 5/2018 published no weights: weight stays null.
-- PermenPANRB 8/2026 (Indeks Pemdi) is UNVERIFIED: listed, never used to compute an index.
select
    framework,
    indicator,
    name,
    name_en,
    aspect_no,
    aspect,
    domain_no,
    domain,
    weight_pct as weight,
    aspect_weight_pct as aspect_weight,
    domain_weight_pct as domain_weight,
    maturity_model,
    null::varchar as related_indicator_2020
from {{ ref('stg_reference__indicators') }}

union all

select
    framework,
    indicator,
    name,
    null as name_en,
    aspect_no,
    aspect,
    null as domain_no,
    domain,
    weight_pct as weight,
    null as aspect_weight,
    null as domain_weight,
    null as maturity_model,
    related_indicator_2020
from {{ ref('stg_reference__indicators_2018') }}

union all

select
    framework,
    indicator,
    name,
    null as name_en,
    aspect_no,
    aspect,
    null as domain_no,
    null as domain,
    weight_pct as weight,
    aspect_weight_pct as aspect_weight,
    null as domain_weight,
    null as maturity_model,
    null as related_indicator_2020
from {{ ref('stg_reference__indicators_pemdi') }}
