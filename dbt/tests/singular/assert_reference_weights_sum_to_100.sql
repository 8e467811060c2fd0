-- Indicator weights of PermenPANRB 59/2020 sum to 100, and to their aspect's and domain's weights.
select 'framework' as level, framework as name, sum(weight_pct) as total, 100.0 as expected
from {{ ref('stg_reference__indicators') }}
group by framework
having abs(sum(weight_pct) - 100) > 1e-6
union all
select 'aspect', aspect, sum(weight_pct), any_value(aspect_weight_pct)
from {{ ref('stg_reference__indicators') }}
group by aspect
having abs(sum(weight_pct) - any_value(aspect_weight_pct)) > 1e-6
union all
select 'domain', domain, sum(weight_pct), any_value(domain_weight_pct)
from {{ ref('stg_reference__indicators') }}
group by domain
having abs(sum(weight_pct) - any_value(domain_weight_pct)) > 1e-6
