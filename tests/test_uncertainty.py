"""The rank-uncertainty Monte Carlo as a pure function: ranks, intervals, ties and determinism, without dbt."""

import numpy as np
import pandas as pd
import pytest

from dagster_project.lib.framework import domain_weights
from dagster_project.lib.uncertainty import (
    MonteCarloSettings,
    _min_rank_desc,
    rank_uncertainty,
    simulate_indices,
    tied_groups,
)


def results(rows):
    """(id, policy, governance, management, services) -> a frame with the official index formula applied."""
    w = domain_weights()
    return pd.DataFrame([{"institution_id": i, "year": 2024, "policy_index": d1, "governance_index": d2,
                          "management_index": d3, "services_index": d4,
                          "index_value": round(w[0] * d1 + w[1] * d2 + w[2] * d3 + w[3] * d4, 2)}
                         for i, d1, d2, d3, d4 in rows])


def national(frame):
    return pd.DataFrame({"institution_id": frame["institution_id"], "year": frame["year"], "scope": "national",
                         "scope_value": "Indonesia"})


def test_ranks_follow_fct_rankings_ties_share_the_lowest_rank():
    assert _min_rank_desc(np.array([[5.0], [3.0], [3.0], [1.0]]))[:, 0].tolist() == [1, 2, 2, 4]


def test_far_apart_institutions_keep_their_rank_in_every_draw():
    frame = results([("a", 4.5, 4.5, 4.5, 4.5), ("b", 3, 3, 3, 3), ("c", 1.5, 1.5, 1.5, 1.5)])
    out = rank_uncertainty(frame, national(frame), MonteCarloSettings(draws=200, seed=1)).set_index("institution_id")
    assert out[["rank_p5", "rank_p50", "rank_p95", "published_rank"]].to_dict("index") == {
        "a": dict.fromkeys(["rank_p5", "rank_p50", "rank_p95", "published_rank"], 1),
        "b": dict.fromkeys(["rank_p5", "rank_p50", "rank_p95", "published_rank"], 2),
        "c": dict.fromkeys(["rank_p5", "rank_p50", "rank_p95", "published_rank"], 3)}
    assert out["tied_group"].tolist() == [1, 2, 3] and out["share_of_draws_at_published_rank"].eq(1).all()


def test_an_institution_strong_where_weights_move_swaps_places_and_is_tied():
    # Equal index under the official weights, but one leans on services (45.5 %), the other on policy: when the
    # weights move, their order flips, so their intervals overlap and they form one tied group.
    frame = results([("services", 3.0, 3.0, 3.0, 3.6), ("policy", 5.0, 3.0, 3.4, 3.0), ("low", 1.2, 1.2, 1.2, 1.2)])
    out = rank_uncertainty(frame, national(frame), MonteCarloSettings(draws=1000, seed=7)).set_index("institution_id")
    assert out.loc["services", "rank_p5"] == out.loc["policy", "rank_p5"] == 1
    assert out.loc["services", "rank_p95"] == out.loc["policy", "rank_p95"] == 2
    assert out.loc["services", "tied_group"] == out.loc["policy", "tied_group"] == 1
    assert out.loc["services", "tied_group_size"] == 2 and out.loc["low", "tied_group"] == 2
    assert out.loc["services", "n_overlapping"] == 1 and out.loc["low", "n_overlapping"] == 0


def test_the_same_seed_gives_the_same_table_and_another_seed_other_draws():
    frame = results([(str(i), 1 + (i * 7 % 40) / 10, 1 + (i * 3 % 40) / 10, 2.5, 1 + (i * 11 % 40) / 10)
                     for i in range(30)])
    one = rank_uncertainty(frame, national(frame), MonteCarloSettings(draws=300, seed=3))
    pd.testing.assert_frame_equal(one, rank_uncertainty(frame, national(frame), MonteCarloSettings(draws=300, seed=3)))
    assert not np.array_equal(simulate_indices(frame, MonteCarloSettings(draws=50, seed=3)),
                              simulate_indices(frame, MonteCarloSettings(draws=50, seed=4)))
    assert (one["rank_p5"] <= one["rank_p50"]).all() and (one["rank_p50"] <= one["rank_p95"]).all()


def test_the_table_does_not_depend_on_the_order_rows_arrive_in():
    frame = results([(str(i), 1 + (i * 7 % 40) / 10, 2.0, 1 + (i * 5 % 40) / 10, 3.0) for i in range(25)])
    settings = MonteCarloSettings(draws=200, seed=11)
    key = ["institution_id", "year", "scope", "scope_value"]
    one = rank_uncertainty(frame, national(frame), settings).sort_values(key).reset_index(drop=True)
    shuffled = frame.sample(frac=1, random_state=3)
    two = rank_uncertainty(shuffled, national(shuffled).sample(frac=1, random_state=4), settings)
    pd.testing.assert_frame_equal(one, two.sort_values(key).reset_index(drop=True))


def test_a_missing_domain_is_back_solved_and_more_missing_keeps_the_published_index():
    frame = results([("one_missing", 3.0, 3.0, 3.0, 3.0), ("two_missing", 2.0, 2.0, 2.0, 2.0)])
    frame.loc[0, "policy_index"] = None
    frame.loc[1, ["policy_index", "services_index"]] = None
    simulated = simulate_indices(frame, MonteCarloSettings(draws=500, seed=5, weight_range=0.0))
    # zero weight range: only rounding noise moves the index (at most 0.005 on every domain)
    assert np.abs(simulated[0] - 3.0).max() <= 0.005 + 1e-9
    assert np.abs(simulated[1] - 2.0).max() <= 0.005 + 1e-9


def test_tied_groups_walk_down_the_median_ranks_from_each_leader():
    p5, p50, p95 = np.array([1, 1, 3, 6]), np.array([1, 2, 4, 6]), np.array([2, 4, 5, 7])
    assert tied_groups(p5, p50, p95, np.array([1, 2, 3, 4])).tolist() == [1, 1, 2, 3]


def test_settings_are_checked():
    with pytest.raises(ValueError):
        MonteCarloSettings(draws=0)
    with pytest.raises(ValueError):
        MonteCarloSettings(weight_range=1.5)
