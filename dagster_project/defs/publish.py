"""Publish group: the marts copied into data/warehouse/spbe.duckdb atomically, with a release manifest."""


import dagster as dg

from dagster_project.defs.warehouse import DUCKDB_POOL, WAREHOUSE_CONDITION, mart_keys
from dagster_project.lib.publish import build_fingerprint, input_hashes, publish_marts
from dagster_project.lib.snapshots import keep_setting, list_snapshots
from dagster_project.paths import data_paths

PUBLISHED_KEY = dg.AssetKey("published_warehouse")


def build_publish_asset() -> dg.AssetsDefinition:
    @dg.asset(
        key=PUBLISHED_KEY,
        group_name="publish",
        kinds={"duckdb"},
        deps=mart_keys(),
        pool=DUCKDB_POOL,
        automation_condition=WAREHOUSE_CONDITION,
        description=(
            "The analysts' warehouse: every mart copied into a new DuckDB file that atomically replaces "
            "data/warehouse/spbe.duckdb (os.replace), with spbe.manifest.json and a publish_manifest table "
            "(run id, code version, input hashes, row counts, checksums). Runs only after the marts and their "
            "tests succeed, so a failing check leaves the last published file in place. The last "
            "SPBE_KEEP_SNAPSHOTS (default 10) published files stay in data/warehouse/history/ for as-of queries."
        ),
    )
    def published_warehouse(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        paths = data_paths().ensure()
        inputs = input_hashes(paths)
        result = publish_marts(paths.build_db, paths.published_db, paths.published_manifest, context.run.run_id,
                               [key.path[-1] for key in mart_keys()], inputs, build_fingerprint(inputs),
                               paths.snapshots, keep_setting())
        tables = result.manifest["tables"]
        return dg.MaterializeResult(metadata={
            "path": dg.MetadataValue.path(str(result.path)),
            "manifest": dg.MetadataValue.path(str(paths.published_manifest)),
            "code_version": result.manifest["code_version"],
            "snapshots_kept": len(list_snapshots(paths.snapshots)),
            "dagster/row_count": sum(t["rows"] for t in tables.values()),
            "tables": dg.MetadataValue.md("| mart | rows | checksum |\n|---|---|---|\n" + "\n".join(
                f"| {name} | {t['rows']} | {t['checksum']} |" for name, t in tables.items())),
        })

    return published_warehouse
