"""The dbt project as Dagster assets: every model and seed, with every dbt test as a check.

Events build them through ``update_warehouse`` (defs/update.py), which records what each build rebuilt and
tested. This asset is how a person rebuilds chosen models from the UI ("Materialize selected"): dbt builds
exactly those, from the ingest log as it stands, into the build database. It never publishes: only
``update_warehouse`` does, so that a published file always holds one consistent position of the log.
"""


import dagster as dg

from dagster_project.defs.resources import DataDirResource
from dagster_project.defs.translator import asset_key, check_name, dbt_check_specs, dbt_specs
from dagster_project.lib.dbt_project import Graph, NodeResult, project_graph, run_dbt
from dagster_project.paths import DataPaths

FAILING_ROWS_SHOWN = 10


def dbt_events(graph: Graph, results: list[NodeResult], paths: DataPaths, selected=None):
    """A materialization per model or seed dbt built, a check evaluation per test it ran (failing rows read
    from the test's store_failures view)."""
    from dagster_project.lib.failing_rows import failing_rows

    for r in results:
        node = graph.nodes.get(r.unique_id)
        if node is None:
            continue
        if node.resource_type in ("model", "seed") and r.status == "success":
            if selected is None or asset_key(node) in selected:
                yield dg.AssetMaterialization(asset_key(node), metadata={
                    "execution_time_s": round(r.execution_time, 3), "dbt/unique_id": node.unique_id})
        elif node.resource_type == "test" and r.status != "skipped":  # skipped: an upstream failed, not judged
            target = graph.nodes.get(node.attached_to or "")
            if target is None or target.resource_type not in ("model", "seed"):
                continue
            if selected is not None and asset_key(target) not in selected:
                continue
            passed = r.status == "pass"
            metadata = {"status": r.status, "failures": r.failures or 0, "message": r.message[:500]}
            if not passed and r.relation:
                rows, note = failing_rows(paths, r.relation, FAILING_ROWS_SHOWN)
                metadata |= {"failing_rows": dg.MetadataValue.json(rows), "failing_rows_relation": note or r.relation}
            yield dg.AssetCheckEvaluation(
                asset_key=asset_key(target), check_name=check_name(node), passed=passed,
                severity=dg.AssetCheckSeverity.WARN if node.severity == "warn" else dg.AssetCheckSeverity.ERROR,
                description=r.message[:2000] or None, metadata=metadata)


def build_dbt_models() -> dg.AssetsDefinition:
    graph = project_graph()

    @dg.multi_asset(name="dbt_models", specs=dbt_specs(graph), check_specs=dbt_check_specs(graph), can_subset=True,
                    description="dbt build of the selected models and seeds, with their tests; never publishes")
    def dbt_models(context: dg.AssetExecutionContext, data_dir: DataDirResource):
        from dagster_project.lib.ingest_log import IngestLog
        from dagster_project.lib.warehouse import build_lock, code_fingerprint, mark_build

        paths = data_dir.paths().ensure()
        names = [n.name for n in graph.of_type("model", "seed") if asset_key(n) in context.selected_asset_keys]
        with build_lock(paths, context.run.run_id):
            position = IngestLog.of(paths.ingest_log).position()
            mark_build(paths, code_fingerprint())
            outcome = run_dbt(["build", "--select", *names], paths.root, paths.state / "dbt_target",
                              {"log_position": position})
        for event in dbt_events(graph, outcome.results, paths, context.selected_asset_keys):
            if isinstance(event, dg.AssetMaterialization):
                yield dg.MaterializeResult(asset_key=event.asset_key, metadata=event.metadata)
            else:
                yield dg.AssetCheckResult(asset_key=event.asset_key, check_name=event.check_name,
                                          passed=event.passed, severity=event.severity,
                                          description=event.description, metadata=event.metadata)
        if not outcome.success:
            raise dg.Failure(f"dbt build failed: {outcome.error or 'see the failed checks and models'}")

    return dbt_models


dbt_models = build_dbt_models()
