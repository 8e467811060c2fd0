"""Rank uncertainty (a dbt Python model): the Monte Carlo lives in dagster_project/lib/uncertainty.py, a pure
function tested on its own; the settings (draws, seed, weight range) are this model's config in YAML."""

from dagster_project.lib.uncertainty import MonteCarloSettings, rank_uncertainty


def model(dbt, session):
    dbt.config(materialized="table")
    settings = MonteCarloSettings(draws=int(dbt.config.get("draws")), seed=int(dbt.config.get("seed")),
                                  weight_range=float(dbt.config.get("weight_range")))
    results = _frame(dbt.ref("int_official_results_current"))
    scopes = _frame(dbt.ref("int_official_index_by_scope"))
    return rank_uncertainty(results[results["index_value"].notna()], scopes, settings)


def _frame(relation):
    """The relation in pandas, without its timestamps with time zone: the Monte Carlo has no use for them, and
    DuckDB 1.5.5 converts them with a keyword pandas 3.1 deprecates (Pandas4Warning)."""
    keep = [f'"{c}"' for c, t in zip(relation.columns, relation.dtypes, strict=True)
            if str(t) != "TIMESTAMP WITH TIME ZONE"]
    return relation.project(", ".join(keep)).df()
