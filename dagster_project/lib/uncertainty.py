"""Rank uncertainty of the official index: a seeded Monte Carlo over the weights and the rounding.

How solid is "Sumedang is 3rd, Banyuwangi 5th"? Each draw perturbs every domain weight by a uniform factor in
[1 - weight_range, 1 + weight_range] and renormalises the four to sum to 1, adds uniform noise of half a unit
of the last published decimal (±0.005) to every published domain index, recomputes every index and ranks it
in every scope. Over the draws each institution gets the 5th, 50th and 95th percentile of its rank (the
interval COINr's ``plot_uncertainty`` shows). Deterministic for a given seed.

Institutions whose intervals overlap cannot be told apart by these data: ``tied_group`` numbers runs of
them. Walking down the median ranks, a group starts with its first institution (the leader) and takes in
every following one whose 5th-percentile rank is within the leader's 95th percentile.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dagster_project.lib.framework import DOMAIN_COLUMNS, complete_domains, domain_weights

ROUNDING_HALF_WIDTH = 0.005  # published indices have 2 decimals
COLUMNS = {"institution_id": "object", "year": "int64", "scope": "object", "scope_value": "object", "n": "int64",
           "published_rank": "int64", "rank_p5": "int64", "rank_p50": "int64", "rank_p95": "int64",
           "rank_mean": "float64", "share_of_draws_at_published_rank": "float64", "n_overlapping": "int64",
           "tied_group": "int64", "tied_group_size": "int64", "draws": "int64", "seed": "int64",
           "weight_range": "float64"}


@dataclass(frozen=True)
class MonteCarloSettings:
    draws: int = 1000
    seed: int = 20240
    weight_range: float = 0.25  # each domain weight x U(0.75, 1.25), then renormalised

    def __post_init__(self):
        if self.draws < 1 or not 0 <= self.weight_range < 1:
            raise ValueError(f"need draws >= 1 and 0 <= weight_range < 1, got {self}")


def simulate_indices(results: pd.DataFrame, settings: MonteCarloSettings,
                     base_weights: tuple[float, ...] | None = None) -> np.ndarray:
    """An (institution-year rows x draws) matrix of recomputed indices. ``results`` has index_value and the four
    domain columns; a row missing one domain gets it back-solved from the formula, a row missing more keeps
    its published index (plus rounding noise) in every draw."""
    rng = np.random.default_rng(settings.seed)
    w0 = np.asarray(base_weights or domain_weights())
    factors = rng.uniform(1 - settings.weight_range, 1 + settings.weight_range, size=(settings.draws, len(w0)))
    weights = w0 * factors
    weights /= weights.sum(axis=1, keepdims=True)  # draws x 4
    full = complete_domains(results[["index_value", *DOMAIN_COLUMNS]])
    domains = full[list(DOMAIN_COLUMNS)].to_numpy(dtype=float)  # rows x 4
    noise = rng.uniform(-ROUNDING_HALF_WIDTH, ROUNDING_HALF_WIDTH, size=(settings.draws, *domains.shape))
    simulated = np.einsum("drk,dk->rd", domains + noise, weights)
    incomplete = np.isnan(domains).any(axis=1)
    if incomplete.any():
        index = full["index_value"].to_numpy(dtype=float)[incomplete, None]
        simulated[incomplete] = index + noise[:, incomplete, 0].T
    return simulated


def _draw_ranks(values: np.ndarray) -> np.ndarray:
    """Rank 1 = highest per column, for simulated values: the noise is continuous and drawn per institution, so
    two values tie with probability zero and an ordinal rank equals the min rank (one sort per column, in C)."""
    ranks = np.empty(values.shape, dtype=np.int64)
    np.put_along_axis(ranks, np.argsort(-values, axis=0, kind="stable"),
                      np.arange(1, values.shape[0] + 1)[:, None], axis=0)
    return ranks


def _min_rank_desc(values: np.ndarray) -> np.ndarray:
    """Rank 1 = highest per column; ties share the lowest rank (1, 2, 2, 4), as fct_rankings ranks."""
    ascending = np.sort(values, axis=0)
    n = values.shape[0]
    ranks = np.empty(values.shape, dtype=np.int64)
    for d in range(values.shape[1]):  # one more than the number of values strictly greater
        ranks[:, d] = n - np.searchsorted(ascending[:, d], values[:, d], side="right") + 1
    return ranks


def tied_groups(p5: np.ndarray, p50: np.ndarray, p95: np.ndarray, published_rank: np.ndarray) -> np.ndarray:
    """Group numbers (1, 2, ...) in median-rank order: a group's leader takes in every following institution
    whose 5th percentile reaches the leader's 95th."""
    order = np.lexsort((published_rank, p50))
    groups = np.empty(len(order), dtype=np.int64)
    group, leader_p95 = 0, -1
    for i in order:
        if p5[i] > leader_p95:
            group, leader_p95 = group + 1, p95[i]
        groups[i] = group
    return groups


def rank_uncertainty(results: pd.DataFrame, scopes: pd.DataFrame, settings: MonteCarloSettings,
                     base_weights: tuple[float, ...] | None = None) -> pd.DataFrame:
    """Percentile ranks per institution x year x scope.

    ``results``: one row per institution and year (institution_id, year, index_value, the four domains).
    ``scopes``: institution_id, year, scope, scope_value (int_official_index_by_scope).
    """
    # Row order decides which noise each institution draws: sort, so the same seed gives the same table.
    results = results.sort_values(["year", "institution_id"]).reset_index(drop=True)
    simulated = simulate_indices(results, settings, base_weights)
    row_of = {(i, int(y)): n for n, (i, y) in enumerate(zip(results["institution_id"], results["year"],
                                                                strict=True))}
    frames = []
    for (year, scope, scope_value), members in scopes.groupby(["year", "scope", "scope_value"], sort=True):
        members = members[[(i, int(year)) in row_of for i in members["institution_id"]]].sort_values("institution_id")
        if members.empty:
            continue
        rows = np.array([row_of[(i, int(year))] for i in members["institution_id"]])
        ranks = _draw_ranks(simulated[rows])
        p5, p50, p95 = (np.percentile(ranks, q, axis=1, method="inverted_cdf").astype(np.int64)
                        for q in (5, 50, 95))
        published = _min_rank_desc(results["index_value"].to_numpy(dtype=float)[rows, None])[:, 0]
        overlaps = (p5[:, None] <= p95[None, :]) & (p5[None, :] <= p95[:, None])
        frames.append(pd.DataFrame({
            "institution_id": members["institution_id"].to_numpy(),
            "year": int(year),
            "scope": scope,
            "scope_value": scope_value,
            "n": len(rows),
            "published_rank": published,
            "rank_p5": p5,
            "rank_p50": p50,
            "rank_p95": p95,
            "rank_mean": ranks.mean(axis=1).round(2),
            "share_of_draws_at_published_rank": (ranks == published[:, None]).mean(axis=1).round(4),
            "n_overlapping": overlaps.sum(axis=1) - 1,
            "tied_group": tied_groups(p5, p50, p95, published),
        }))
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in COLUMNS.items()})
    out = pd.concat(frames, ignore_index=True)
    out["tied_group_size"] = out.groupby(["year", "scope", "scope_value", "tied_group"])["institution_id"] \
        .transform("size")
    out["draws"], out["seed"], out["weight_range"] = settings.draws, settings.seed, settings.weight_range
    return out[list(COLUMNS)].astype(COLUMNS)
