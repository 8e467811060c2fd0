"""Warehouse group: the dbt project on DuckDB, as Dagster assets with dbt tests as asset checks."""


import json
import shutil
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
    get_asset_key_for_model,
)

from dagster_project.paths import DBT_PROJECT_DIR, REFERENCE_DIR, data_paths

DUCKDB_POOL = "duckdb"  # every DuckDB writer shares one pool of size 1 (dagster.yaml)
REFERENCE_KEY = dg.AssetKey("reference_tables")
FAILING_ROWS_SHOWN = 10
INVOCATIONS_KEPT = 10  # dbt/target/warehouse_dbt-* folders kept (logs, run_results.json)
# Written by landing, not by a materialization of their own: they may legitimately look "missing".
LANDED_KEYS = (dg.AssetKey("official_release"), dg.AssetKey("ingest_log"), dg.AssetKey("submission_files"),
               dg.AssetKey("work_unit_files"))

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
    """dbt parse, so the asset graph matches the dbt files on disk; skipped when no dbt file (nor seed) is
    newer than the manifest, which saves the 5-7 s of a dbt start-up on every `spbe` command."""
    project = dbt_project()
    if not manifest_is_current(project.manifest_path):
        project.preparer.prepare(project)


def manifest_is_current(manifest: Path) -> bool:
    if not manifest.exists():
        return False
    built = manifest.stat().st_mtime
    inputs = [DBT_PROJECT_DIR / "dbt_project.yml", DBT_PROJECT_DIR / "profiles.yml",
              *(p for folder in ("models", "macros", "tests") for p in (DBT_PROJECT_DIR / folder).rglob("*")),
              *REFERENCE_DIR.glob("*.csv")]
    return all(p.stat().st_mtime <= built for p in inputs if p.exists())


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
        failed_checks = []
        for event in invocation.stream():
            if isinstance(event, dg.AssetCheckResult) and not event.passed:
                failed_checks.append(event)  # shown with its rows once dbt has let go of build.duckdb
            else:
                yield event
        yield from with_failing_rows(failed_checks, invocation)
        prune_invocation_dirs(Path(invocation.target_path).parent)
        if not invocation.is_successful():
            raise dg.Failure(dbt_failure_summary(invocation), metadata={"dbt_log": str(invocation.target_path)})

    return warehouse_dbt


def prune_invocation_dirs(target_root: Path, keep: int = INVOCATIONS_KEPT) -> None:
    """dagster-dbt gives every build its own folder under dbt/target (about 7 MB of compiled SQL and
    artifacts); without pruning, a daemon rebuilding after every landing fills the disk. The newest are
    kept for their logs and run_results.json."""
    runs = sorted(target_root.glob("warehouse_dbt-*"), key=lambda d: d.stat().st_mtime, reverse=True)
    for old in runs[keep:]:
        shutil.rmtree(old, ignore_errors=True)


def _run_results(invocation) -> list[dict]:
    """dbt's run_results.json of an invocation, or nothing if dbt died before writing it."""
    try:
        return invocation.get_artifact("run_results.json")["results"]
    except (OSError, ValueError, KeyError):
        return []


def with_failing_rows(checks: list[dg.AssetCheckResult], invocation) -> list[dg.AssetCheckResult]:
    """Failed dbt tests with up to FAILING_ROWS_SHOWN of their failing rows (from the store_failures views)."""
    if not checks:
        return []
    relations = {r["unique_id"]: r.get("relation_name") for r in _run_results(invocation)}
    out = []
    for check in checks:
        unique_id = check.metadata.get("unique_id")
        relation = relations.get(getattr(unique_id, "value", unique_id))
        rows, note = _failing_rows(relation) if relation else ([], "not stored")
        out.append(check._replace(metadata={
            **check.metadata,
            "failing_rows": dg.MetadataValue.json(rows),
            "failing_rows_relation": dg.MetadataValue.text(note or relation),
        }))
    return out


def _failing_rows(relation: str) -> tuple[list[dict], str | None]:
    """Up to FAILING_ROWS_SHOWN rows of a test's failures view, or none with the reason they are unavailable
    (a build that failed before dbt could write the view, say)."""
    try:
        with duckdb.connect(str(data_paths().build_db), read_only=True) as con:
            cursor = con.execute(f"select * from {relation} limit {FAILING_ROWS_SHOWN}")  # noqa: S608 (dbt's name)
            names = [d[0] for d in cursor.description]
            return [{n: str(v) for n, v in zip(names, row, strict=True)} for row in cursor.fetchall()], None
    except duckdb.Error as e:
        return [], f"{relation}: rows unavailable ({e.__class__.__name__}: {str(e).splitlines()[0]})"


def _node_label(unique_id: str) -> str:
    """'test.spbe_monitor.<name>.<hash>' -> 'test <name>', the name the UI shows for the check."""
    parts = unique_id.split(".")
    return f"{parts[0]} {parts[2]}" if len(parts) >= 3 else unique_id


def dbt_failure_summary(invocation) -> str:
    """What failed in a dbt build, a line per node with dbt's own message (the disk error, the failing test)."""
    results = _run_results(invocation)
    lines = [f"{_node_label(r['unique_id'])}: {r['status']} - {' '.join(str(r.get('message') or '').split())[:300]}"
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
