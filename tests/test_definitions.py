"""The code location loads, and the asset graph reads like documentation in the UI."""

import dagster as dg
import pytest

from dagster_project.definitions import defs


def graph():
    return defs().resolve_asset_graph()


def test_definitions_load():
    dg.Definitions.validate_loadable(defs())


def test_every_asset_has_a_group_kinds_and_a_description():
    g = graph()
    for key in g.get_all_asset_keys():
        node = g.get(key)
        assert node.group_name in {"reference", "releases", "submissions", "warehouse", "publish", "reports"}, key
        assert node.kinds, key
        assert node.description, key


def test_groups_hold_what_their_names_say():
    g = graph()
    by_group: dict[str, set[str]] = {}
    for key in g.get_all_asset_keys():
        by_group.setdefault(g.get(key).group_name, set()).add(key.to_user_string())
    assert by_group["releases"] == {"official_release", "ingest_log"}
    assert by_group["submissions"] == {"submission_files", "work_unit_files", "window_completeness_report"}
    assert by_group["publish"] == {"published_warehouse"}
    assert by_group["reports"] == {"scorecards", "validation_results", "dbt_docs"}
    assert {"reference_tables", "reference/institutions", "reference/targets"} <= by_group["reference"]
    assert {"fct_rankings", "fct_index", "staging/stg_lake__official_results"} <= by_group["warehouse"]


def assets_by_key(d: dg.Definitions) -> dict[str, dg.AssetsDefinition]:
    return {k.to_user_string(): a for a in d.assets if isinstance(a, dg.AssetsDefinition) for k in a.keys}


def test_releases_are_partitioned_by_year_and_gate_the_warehouse():
    g = graph()
    release = g.get(dg.AssetKey("official_release"))
    assert release.partitions_def.name == "release_year"
    assert release.key in g.get(dg.AssetKey(["staging", "stg_lake__official_results"])).parent_keys
    specs = {s.name: s for s in assets_by_key(defs())["official_release"].check_specs}
    assert specs["official_results_suite"].blocking and not specs["official_results_warnings"].blocking


def test_dbt_tests_are_asset_checks_and_duckdb_writers_share_one_pool():
    d = defs()
    check_names = {k.name for k in d.resolve_asset_graph().asset_check_keys}
    assert "unique_dim_institution_institution_id" in check_names
    assert "assert_domain_formula_holds_for_official_results" in check_names
    assert {"official_results_suite", "reference_structure"} <= check_names
    assets = assets_by_key(d)
    assert assets["fct_index"].op.pool == assets["published_warehouse"].op.pool == "duckdb"
    # Assets that never open the DuckDB file stay out of the pool.
    assert assets["official_release"].op.pool is None and assets["reference_tables"].op.pool is None


def test_marts_rebuild_when_a_release_lands_unless_a_blocking_check_failed():
    g = graph()
    for key in (dg.AssetKey("fct_rankings"), dg.AssetKey("published_warehouse")):
        condition = g.get(key).automation_condition
        assert condition.get_label() == "eager, unless a blocking check failed"
        assert "all_deps_blocking_checks_passed" in [op.get_label() for op in condition.operands]


def test_sensors_and_jobs():
    d = defs()
    assert {s.name for s in d.sensors} == {"release_source_sensor", "inbox_sensor", "warehouse_automation",
                                         "abandoned_runs_sensor"}
    assert {j.name for j in d.jobs} == {"ingest_release", "ingest_submissions", "build_warehouse", "publish_reports"}
    # the warehouse job never waits on the reports; they follow a publish in a job of their own
    build = d.resolve_job_def("build_warehouse").asset_layer.selected_asset_keys
    assert dg.AssetKey("published_warehouse") in build and dg.AssetKey("scorecards") not in build


def test_steps_run_in_process_unless_configured(monkeypatch):
    from dagster_project.defs.resources import executor_from_env

    assert defs().executor.name == "in_process"
    monkeypatch.setenv("SPBE_EXECUTOR", "multiprocess")
    assert executor_from_env().name == "multiprocess"
    monkeypatch.setenv("SPBE_EXECUTOR", "threads")
    with pytest.raises(ValueError, match="SPBE_EXECUTOR"):
        executor_from_env()


def test_the_dbt_manifest_is_parsed_again_only_when_a_dbt_file_is_newer(tmp_path):
    import os

    from dagster_project.defs.warehouse import manifest_is_current

    manifest = tmp_path / "manifest.json"
    assert not manifest_is_current(manifest)  # none yet
    manifest.write_text("{}")
    assert manifest_is_current(manifest)
    os.utime(manifest, (1_000_000_000, 1_000_000_000))  # older than the models: parse again
    assert not manifest_is_current(manifest)


def test_the_dbt_resource_knows_its_version_without_a_subprocess_and_skips_the_adapter():
    import importlib.metadata

    from dagster_project.defs.resources import dbt_resource

    dbt = dbt_resource()
    assert str(dbt._cli_version) == importlib.metadata.version("dbt-core")
    assert dbt._cli_version.major < 2  # dbt Core, not Fusion: dagster-dbt's own branch would need the adapter
    assert dbt._initialize_dbt_core_adapter(["build"]) is None


def test_only_the_newest_dbt_invocation_folders_are_kept(tmp_path):
    import os

    from dagster_project.defs.warehouse import prune_invocation_dirs

    for i in range(13):
        folder = tmp_path / f"warehouse_dbt-{i:02d}"
        folder.mkdir()
        (folder / "run_results.json").write_text("{}")
        os.utime(folder, (1_000_000 + i, 1_000_000 + i))
    (tmp_path / "manifest.json").write_text("{}")  # the project's own artifacts are not invocations
    prune_invocation_dirs(tmp_path, keep=10)
    kept = [f"warehouse_dbt-{i:02d}" for i in range(3, 13)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", *kept]
