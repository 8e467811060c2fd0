-- Every item (indicator, or domain) an institution could still raise, with the index one more level adds.
-- Two bases:
--   indicator_levels: the levels of the most advanced stage with a complete submission (coverage 1). One
--     step raises one indicator one level; it adds the indicator's weight / 100 to the index (the index is
--     sum(level x weight) / 100), and a level-5 indicator has no step left.
--   official_domains: where only published domain indices exist. One step raises one indicator of the
--     domain one level, which lifts the domain index by 1 / n (n = its indicators) and the index by the
--     domain weight / (100 n): the domain's mean indicator weight. Steps left = (5 - domain index) x n,
--     rounded down (the published index has 2 decimals, hence the 0.05 allowance).
with indicators as (
    select * from {{ ref('stg_reference__indicators') }}
),

levels as (
    select l.institution_id, l.year, l.stage, l.framework, l.indicator, l.level
    from {{ ref('int_submission_levels') }} as l
    where l.is_current
),

complete_stages as (
    select c.institution_id, c.year, c.stage, c.index_value
    from {{ ref('int_computed_index') }} as c
    where c.coverage = 1
    qualify {{ stage_order('c.stage') }} = max({{ stage_order('c.stage') }}) over (partition by c.institution_id, c.year)
),

indicator_items as (
    select
        s.institution_id,
        s.year,
        'indicator_levels' as basis,
        s.stage,
        s.index_value as current_index,
        'indicator' as item_type,
        i.indicator as item_no,
        i.name as item_name,
        i.domain_no,
        l.level::double as current_value,
        i.weight_pct,
        i.weight_pct / 100 as gain_per_step,
        5 - l.level as steps_available,
        1.0 as level_per_step
    from complete_stages as s
    inner join levels as l using (institution_id, year, stage)
    inner join indicators as i on i.framework = l.framework and i.indicator = l.indicator
),

domains as (
    select domain_no, any_value(domain) as domain_name, any_value(domain_weight_pct) as domain_weight_pct,
           count(*) as n_indicators
    from indicators
    group by domain_no
),

official_domains as (
    unpivot (
        select institution_id, year, index_value, policy_index, governance_index, management_index, services_index
        from {{ ref('int_official_results_current') }}
        where index_value is not null
    )
    on policy_index, governance_index, management_index, services_index
    into name domain_column value domain_index
),

domain_items as (
    select
        o.institution_id,
        o.year,
        'official_domains' as basis,
        'final' as stage,
        o.index_value as current_index,
        'domain' as item_type,
        d.domain_no as item_no,
        d.domain_name as item_name,
        d.domain_no,
        o.domain_index as current_value,
        d.domain_weight_pct as weight_pct,
        d.domain_weight_pct / (100 * d.n_indicators) as gain_per_step,
        greatest(floor((5 - o.domain_index) * d.n_indicators + 0.05), 0)::integer as steps_available,
        1.0 / d.n_indicators as level_per_step
    from official_domains as o
    inner join domains as d
        on d.domain_no = list_position(
            ['policy_index', 'governance_index', 'management_index', 'services_index'], o.domain_column)
)
select * from indicator_items
union all
select * from domain_items
