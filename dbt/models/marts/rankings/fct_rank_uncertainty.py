"""Rank uncertainty (a dbt Python model): the Monte Carlo lives in dagster_project/lib/uncertainty.py, a pure
function tested on its own; the settings (draws, seed, weight range) are this model's config in YAML."""

from dagster_project.lib.uncertainty import MonteCarloSettings, rank_uncertainty


def model(dbt, session):
    dbt.config(materialized="table")
    settings = MonteCarloSettings(draws=int(dbt.config.get("draws")), seed=int(dbt.config.get("seed")),
                                  weight_range=float(dbt.config.get("weight_range")))
    results = dbt.ref("int_official_results_current").df()
    scopes = dbt.ref("int_official_index_by_scope").df()
    return rank_uncertainty(results[results["index_value"].notna()], scopes, settings)
