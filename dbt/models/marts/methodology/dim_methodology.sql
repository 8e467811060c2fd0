-- Every way an index can be computed here: the framework versions (regulations) and the what-if weightings of
-- data/reference/weighting_scenarios.csv. The index "as published" is always PermenPANRB 59/2020 (2021 on);
-- scenarios are separate, labelled series in fct_methodology_comparison.
with indicator_counts as (
    select framework, count(*) as n_indicators, count(weight) as n_weighted
    from {{ ref('dim_indicator') }}
    group by framework
),

years as (
    -- "PermenPANRB 59/2020 + Pedoman MenPANRB 6/2023" is still PermenPANRB 59/2020
    select trim(split_part(framework_text, '+', 1)) as framework, min(year) as first_year, max(year) as last_year
    from {{ ref('stg_reference__national_index') }}
    group by all
),

domains as (
    select
        max(weight_pct) filter (where number = 1) as policy_weight_pct,
        max(weight_pct) filter (where number = 2) as governance_weight_pct,
        max(weight_pct) filter (where number = 3) as management_weight_pct,
        max(weight_pct) filter (where number = 4) as services_weight_pct
    from {{ ref('stg_reference__domains_aspects') }}
    where level = 'domain'
),

frameworks as (
    select
        c.framework as methodology_id,
        'framework' as methodology_type,
        c.framework,
        case c.framework
            when 'PermenPANRB 59/2020' then 'official: the index as published since 2021'
            when 'PermenPANRB 5/2018' then 'official 2018-2020; indicator list reconstructed, weights not published'
            else 'UNVERIFIED successor framework (Indeks Pemdi); listed only, no index computed'
        end as status,
        c.n_indicators,
        c.n_weighted,
        y.first_year,
        y.last_year,
        case when c.framework = 'PermenPANRB 59/2020' then d.policy_weight_pct end as policy_weight_pct,
        case when c.framework = 'PermenPANRB 59/2020' then d.governance_weight_pct end as governance_weight_pct,
        case when c.framework = 'PermenPANRB 59/2020' then d.management_weight_pct end as management_weight_pct,
        case when c.framework = 'PermenPANRB 59/2020' then d.services_weight_pct end as services_weight_pct,
        null as rationale
    from indicator_counts as c
    left join years as y using (framework)
    cross join domains as d
),

scenarios as (
    select
        scenario_id as methodology_id,
        'what_if_weighting' as methodology_type,
        'PermenPANRB 59/2020' as framework,
        any_value(scenario_name) as status,
        47 as n_indicators,
        47 as n_weighted,
        null::integer as first_year,
        null::integer as last_year,
        max(weight_pct) filter (where domain_no = 1) as policy_weight_pct,
        max(weight_pct) filter (where domain_no = 2) as governance_weight_pct,
        max(weight_pct) filter (where domain_no = 3) as management_weight_pct,
        max(weight_pct) filter (where domain_no = 4) as services_weight_pct,
        any_value(rationale) as rationale
    from {{ ref('stg_reference__weighting_scenarios') }}
    group by scenario_id
)

select * from frameworks
union all
select * from scenarios
