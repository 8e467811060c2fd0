"""Warehouse group: the dbt project on DuckDB, as Dagster assets with dbt tests as asset checks."""


import json
from collections.abc import Mapping
from functools import cache
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
    get_asset_key_for_model,
)

from dagster_project.paths import DBT_PROJECT_DIR

DUCKDB_POOL = "duckdb"  # every DuckDB writer shares one pool of size 1 (dagster.yaml)
REFERENCE_KEY = dg.AssetKey("reference_tables")
# Written by landing, not by a materialization of their own: they may legitimately look "missing".
LANDED_KEYS = (dg.AssetKey("official_release"), dg.AssetKey("ingest_log"), dg.AssetKey("submission_files"))

# Rebuild when anything upstream changed, never over a failed blocking check, never twice at once. A release
# year that was added but never landed must not freeze the warehouse, so missing release partitions (and
# the ingest log before the first landing) are ignored: the lake simply has no file for them yet.
WAREHOUSE_CONDITION = (
    dg.AutomationCondition.eager().without(~dg.AutomationCondition.any_deps_missing())
    & ~dg.AutomationCondition.any_deps_missing().ignore(dg.AssetSelection.assets(*LANDED_KEYS))
    & dg.AutomationCondition.all_deps_blocking_checks_passed()
).with_label("eager, unless a blocking check failed")


class SpbeDbtTranslator(DagsterDbtTranslator):
    """Seeds are reference data (after validation); models are the warehouse and rebuild eagerly."""

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        node = manifest["nodes"].get(unique_id) or manifest["sources"].get(unique_id) or {}
        resource_type = node.get("resource_type")
        if resource_type == "seed":
            return spec.replace_attributes(group_name="reference", automation_condition=WAREHOUSE_CONDITION,
                                           deps=[*spec.deps, dg.AssetDep(REFERENCE_KEY)])
        if resource_type == "model":
            return spec.replace_attributes(group_name="warehouse", automation_condition=WAREHOUSE_CONDITION,
                                           tags={**spec.tags, "layer": node["fqn"][1]})
        return spec


@cache
def dbt_project() -> DbtProject:
    project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
    project.prepare_if_dev()
    if not project.manifest_path.exists():
        # A fresh clone has no dbt/target yet: parse once so the asset graph can be read.
        project.preparer.prepare(project)
    return project


def refresh_dbt_manifest() -> None:
    """dbt parse (partial parse makes it cheap), so the asset graph matches the dbt files on disk."""
    project = dbt_project()
    project.preparer.prepare(project)


@cache
def warehouse_dbt_assets() -> dg.AssetsDefinition:
    project = dbt_project()

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        name="warehouse_dbt",
        dagster_dbt_translator=SpbeDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)),
        pool=DUCKDB_POOL,
    )
    def warehouse_dbt(context: dg.AssetExecutionContext, dbt: DbtCliResource):
        """dbt build: seeds, staging, intermediate and marts with their tests, into build.duckdb."""
        invocation = dbt.cli(["build"], context=context, raise_on_error=False)
        yield from invocation.stream()
        if not invocation.is_successful():
            raise dg.Failure(dbt_failure_summary(invocation), metadata={"dbt_log": str(invocation.target_path)})

    return warehouse_dbt


def dbt_failure_summary(invocation) -> str:
    """What failed in a dbt build, a line per node with dbt's own message (the disk error, the failing test)."""
    try:
        results = invocation.get_artifact("run_results.json")["results"]
    except (OSError, ValueError, KeyError):
        results = []
    lines = [f"{r['unique_id']}: {r['status']} - {' '.join(str(r.get('message') or '').split())[:300]}"
             for r in results if r.get("status") in ("error", "fail", "runtime error")]
    if not lines:
        lines = [str(invocation.get_error() or "dbt exited with an error")[:1000]]
    return f"dbt build failed ({len(lines)} node(s)):\n" + "\n".join(lines[:20])


def mart_keys() -> list[dg.AssetKey]:
    """Asset keys of the models under models/marts: what publish copies."""
    manifest = json.loads(dbt_project().manifest_path.read_text(encoding="utf-8"))
    names = sorted(n["name"] for n in manifest["nodes"].values()
                   if n["resource_type"] == "model" and n["fqn"][1] == "marts")
    return [get_asset_key_for_model([warehouse_dbt_assets()], name) for name in names]
