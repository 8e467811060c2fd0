"""The insight marts on the real published warehouse: improvement steps (and their minimality), rank
uncertainty, cohorts, mentors and methodology comparisons. Every number is checked against its definition."""

import re
from collections import defaultdict

import pytest

from dagster_project.lib.releases import FORMULA_TOLERANCE
from dagster_project.lib.submissions import STAGES
from dagster_project.paths import DBT_PROJECT_DIR


def rows(con, sql, **params):
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]


def test_the_stage_order_macro_matches_the_python_stages():
    macro = (DBT_PROJECT_DIR / "macros" / "submission_files.sql").read_text()
    listed = re.search(r"list_position\(\[([^\]]*)\]", macro).group(1)
    assert tuple(s.strip(" '") for s in listed.split(",")) == STAGES


def test_an_indicator_step_gains_its_weight_over_100_and_level_5_gains_nothing(published):
    checked = rows(published, """
        select p.current_value, p.gain_per_step, p.steps_available, d.weight
        from fct_improvement_priorities p
        join dim_indicator d on d.framework = 'PermenPANRB 59/2020' and d.indicator = p.item_no
        where p.basis = 'indicator_levels'""")
    assert checked
    for r in checked:
        assert r["steps_available"] == 5 - r["current_value"]
        assert r["gain_per_step"] == pytest.approx(r["weight"] / 100 if r["current_value"] < 5 else 0)


def test_every_target_plan_is_the_shortest_list_of_steps(published):
    """No k steps can add more than the k largest gains available (all steps of an item gain the same), so a
    plan of n steps is minimal when it closes the gap and the n-1 largest gains do not."""
    available = defaultdict(list)
    for r in rows(published, "select institution_id, year, basis, gain_per_step, steps_available "
                             "from fct_improvement_priorities"):
        available[r["institution_id"], r["year"], r["basis"]] += [r["gain_per_step"]] * r["steps_available"]
    plans = defaultdict(list)
    for r in rows(published, "select * from fct_target_steps order by step_no"):
        plans[r["target_id"], r["institution_id"], r["year"], r["basis"]].append(r)
    assert any(k[1] == "32.11" and k[3] == "indicator_levels" for k in plans), "Sumedang has an indicator plan"
    for (_, institution, year, basis), steps in plans.items():
        gains = sorted(available[institution, year, basis], reverse=True)
        gap, n = steps[0]["gap"], len(steps)
        assert [s["step_no"] for s in steps] == list(range(1, n + 1)) and steps[0]["n_steps"] == n
        assert sorted((s["gain"] for s in steps), reverse=True) == pytest.approx(gains[:n], abs=1e-6)
        if steps[0]["is_reachable"]:
            assert steps[-1]["cumulative_gain"] >= gap - 1e-6
            assert sum(gains[:n - 1]) < gap - 1e-9
        else:
            assert n == len(gains) and sum(gains) < gap


def test_sumedang_needs_four_indicator_steps_to_4_6(published):
    plan = rows(published, """select step_no, item_no, from_value, to_value, gain, index_after, current_index
                              from fct_target_steps where target_id = 'sumedang-2025' and institution_id = '32.11'
                              and basis = 'indicator_levels' order by step_no""")
    assert len(plan) == 4 and plan[-1]["index_after"] >= 4.6 > plan[-2]["index_after"]
    assert all(s["to_value"] == s["from_value"] + 1 for s in plan)


def test_the_rank_interval_holds_the_published_rank_and_matches_fct_rankings(published):
    mismatched = published.execute("""
        select count(*) from fct_rank_uncertainty u
        full join fct_rankings r using (institution_id, year, scope, scope_value)
        where u.published_rank is distinct from r.rank or u.n is distinct from r.n""").fetchone()[0]
    assert mismatched == 0
    bad = published.execute("""select count(*) from fct_rank_uncertainty
        where not (rank_p5 <= rank_p50 and rank_p50 <= rank_p95 and rank_p95 <= n) or draws < 1000""").fetchone()[0]
    assert bad == 0
    (sumedang,) = rows(published, """select * from fct_rank_uncertainty where institution_id = '32.11'
                                     and year = 2024 and scope = 'national'""")
    assert sumedang["rank_p5"] <= sumedang["published_rank"] <= sumedang["rank_p95"]
    assert sumedang["seed"] == 20240 and sumedang["weight_range"] == 0.25


def test_cohorts_are_groups_and_ranking_scopes(published):
    (race,) = rows(published, "select * from agg_groups where group_type = 'cohort' and group_value = "
                              "'sumedang-banyuwangi' and year = 2024")
    assert race["n_institutions"] == 2 and race["max_index"] == 4.77
    ranks = dict(published.execute("""select institution_id, rank from fct_rankings where scope = 'cohort'
        and scope_value = 'sumedang-banyuwangi' and year = 2024""").fetchall())
    assert ranks == {"35.10": 1, "32.11": 2}
    assert published.execute("select count(*) from fct_trends where entity_type = 'previous_predikat'").fetchone() \
        == (0,)


def test_a_mentor_is_a_stronger_peer_of_the_same_group(published):
    checked = published.execute("""
        select count(*) filter (where m.own_value >= m.peer_median or m.mentor_value <= m.own_value),
               count(*) filter (where r.institution_id is null),
               count(*)
        from fct_mentors m
        left join fct_rankings r
            on r.institution_id = m.mentor_id and r.year = m.year and r.scope = m.peer_scope
            and r.scope_value = m.peer_group""").fetchone()
    assert checked[0] == 0 and checked[1] == 0 and checked[2] > 1000
    banyuwangi = rows(published, """select * from fct_mentors where institution_id = '32.11' and year = 2024
        and peer_scope = 'cohort' and peer_group = 'sumedang-banyuwangi' and item_type = 'indicator'""")
    assert banyuwangi and {m["mentor_id"] for m in banyuwangi} == {"35.10"}


def test_methodology_variants_rescore_without_touching_as_published(published):
    recomputed = published.execute("""select max(abs(index_difference)) from fct_methodology_comparison
        where methodology_id = 'recomputed'""").fetchone()[0]
    assert recomputed <= FORMULA_TOLERANCE  # the published values are rounded; the formula holds within it
    (equal,) = rows(published, """select c.index_rescored, f.policy_index, f.governance_index, f.management_index,
        f.services_index, c.index_as_published, f.index_value
        from fct_methodology_comparison c join fct_index f using (institution_id, year)
        where c.methodology_id = 'equal_domains' and c.basis = 'official' and f.source = 'official'
        and institution_id = '32.11'
        and year = 2024""")
    assert equal["index_rescored"] == pytest.approx(
        (equal["policy_index"] + equal["governance_index"] + equal["management_index"] + equal["services_index"]) / 4,
        abs=1e-4)
    assert equal["index_as_published"] == equal["index_value"] == 4.51
    computed = published.execute("""select count(*), max(abs(index_difference)) from fct_methodology_comparison
        where basis = 'computed' and methodology_id = 'recomputed'""").fetchone()
    assert computed[0] >= 4 and computed[1] < 1e-9  # computed indices follow the formula exactly
    kinds = dict(published.execute("select methodology_id, methodology_type from dim_methodology").fetchall())
    assert kinds["PermenPANRB 8/2026"] == "framework" and kinds["equal_indicators"] == "what_if_weighting"
