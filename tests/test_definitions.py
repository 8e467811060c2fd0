"""The code location loads fast, and the asset graph reads like documentation in the UI."""

import os
import subprocess
import sys

import dagster as dg
import pytest

from dagster_project.definitions import defs


def graph():
    return defs().resolve_asset_graph()


def test_definitions_load():
    dg.Definitions.validate_loadable(defs())


def test_loading_the_code_location_imports_neither_dbt_nor_great_expectations_nor_pandas():
    """The code location is loaded by every Dagster process: heavy imports wait until a step needs them."""
    code = ("import sys; from dagster_project.definitions import defs; defs(); "
            "print(sorted(m for m in ('dbt', 'dagster_dbt', 'great_expectations', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    assert out.stdout.strip() == "[]"


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
    assert by_group["releases"] == {"official_release", "secondary_release", "ingest_log"}
    assert by_group["submissions"] == {"submission_files", "work_unit_files", "window_completeness_report"}
    assert by_group["publish"] == {"published_warehouse"}
    assert by_group["reports"] == {"scorecards", "validation_results", "dbt_docs"}
    assert {"reference_tables", "reference/institutions", "reference/targets"} <= by_group["reference"]
    assert {"fct_rankings", "fct_index", "staging/stg_lake__official_results"} <= by_group["warehouse"]


def test_lineage_runs_from_the_landing_assets_through_dbt_to_the_published_file():
    g = graph()
    assert dg.AssetKey("official_release") in g.get(dg.AssetKey(["staging", "stg_lake__official_results"])).parent_keys
    assert dg.AssetKey("ingest_log") in g.get(dg.AssetKey(["staging", "stg_state__ingest_log"])).parent_keys
    assert dg.AssetKey("reference_tables") in g.get(dg.AssetKey(["reference", "institutions"])).parent_keys
    assert dg.AssetKey("fct_rankings") in g.get(dg.AssetKey("published_warehouse")).parent_keys
    assert dg.AssetKey("published_warehouse") in g.get(dg.AssetKey("scorecards")).parent_keys


def test_dbt_tests_are_asset_checks_and_landing_checks_are_declared():
    check_names = {k.name for k in graph().asset_check_keys}
    assert "unique_dim_institution_institution_id" in check_names
    assert "assert_domain_formula_holds_for_official_results" in check_names
    assert {"official_results_suite", "submissions_suite", "reference_structure"} <= check_names


def test_one_job_for_every_event_and_it_names_only_what_every_event_may_change():
    """Dagster writes a planned event per asset and check of a run when it is created (30 ms each here): the
    event job leaves the dbt graph out and records what each build rebuilt."""
    d = defs()
    assert {j.name for j in d.jobs} == {"update_warehouse"}
    job = d.resolve_job_def("update_warehouse")
    keys = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    assert keys == {"official_release", "secondary_release", "submission_files", "work_unit_files", "ingest_log",
                    "reference_tables", "published_warehouse", "window_completeness_report", "scorecards",
                    "validation_results", "dbt_docs"}
    assert {s.name for s in d.sensors} == {"inbox_sensor", "release_source_sensor", "reference_sensor",
                                         "abandoned_runs_sensor"}
    for target in [*d.sensors, *d.schedules]:
        if target.name != "abandoned_runs_sensor":
            assert target.job_name == "update_warehouse", target.name


def test_steps_run_in_process_unless_configured(monkeypatch):
    from dagster_project.defs.resources import executor_from_env

    assert defs().executor.name == "in_process"
    monkeypatch.setenv("SPBE_EXECUTOR", "multiprocess")
    assert executor_from_env().name == "multiprocess"
    monkeypatch.setenv("SPBE_EXECUTOR", "threads")
    with pytest.raises(ValueError, match="SPBE_EXECUTOR"):
        executor_from_env()


def test_the_dbt_manifest_is_parsed_again_only_when_a_dbt_file_is_newer(tmp_path):
    from dagster_project.lib.dbt_project import manifest_is_current

    manifest = tmp_path / "manifest.json"
    assert not manifest_is_current(manifest)  # none yet
    manifest.write_text("{}")
    assert manifest_is_current(manifest)
    os.utime(manifest, (1_000_000_000, 1_000_000_000))  # older than the models: parse again
    assert not manifest_is_current(manifest)


def test_dbt_lets_go_of_the_build_database_after_a_run_in_this_process(data_dir, tmp_path, monkeypatch):
    """dbt-duckdb 1.11 keeps its connection open after an in-process run; stream_dbt closes it, or the publish
    in the same process could not open the build database (pinned version: this checks it still works). dbt
    works on the data directory it is given (a run's data_dir resource), whatever SPBE_DATA_DIR says."""
    import duckdb

    from dagster_project.lib.dbt_project import run_dbt

    monkeypatch.setenv("SPBE_DATA_DIR", str(tmp_path / "elsewhere"))
    outcome = run_dbt(["seed", "--select", "spbe_tingkat_kematangan"], data_dir.root, data_dir.state / "dbt_target")
    assert outcome.success, outcome.error
    assert os.environ["SPBE_DATA_DIR"] == str(tmp_path / "elsewhere") and not (tmp_path / "elsewhere").exists()
    assert [r.status for r in outcome.results] == ["success"]
    with duckdb.connect(str(data_dir.build_db), read_only=True) as con:
        assert con.execute("select count(*) from reference.spbe_tingkat_kematangan").fetchone()[0] > 0


def test_the_data_directory_and_the_release_source_follow_the_environment_when_a_run_starts(monkeypatch, tmp_path):
    """The resources are read when a run or a tick starts, not when the code location loads; a field set in
    the launchpad wins for that run."""
    from dagster_project.defs.resources import DataDirResource, ReleaseSourceResource

    resources = defs().resources
    monkeypatch.setenv("SPBE_DATA_DIR", str(tmp_path / "later"))
    monkeypatch.setenv("SPBE_RELEASE_SOURCE", str(tmp_path / "releases"))
    assert resources["data_dir"].paths().root == (tmp_path / "later").resolve()
    assert resources["release_source"].config().location == str(tmp_path / "releases")
    assert DataDirResource(root=str(tmp_path / "chosen")).paths().inbox == (tmp_path / "chosen" / "inbox").resolve()
    chosen = ReleaseSourceResource(retries=0).config()
    assert (chosen.retries, chosen.location) == (0, str(tmp_path / "releases"))


def test_every_module_in_defs_is_part_of_the_code_location():
    """definitions.py lists nothing: Dagster's loader finds each module's definitions."""
    import importlib
    import pkgutil

    import dagster_project.defs as package

    d = defs()
    keys = {k for a in d.assets for k in a.keys}
    names = {s.name for s in d.sensors} | {s.name for s in d.schedules}
    for module in pkgutil.iter_modules(package.__path__):
        for value in vars(importlib.import_module(f"{package.__name__}.{module.name}")).values():
            if isinstance(value, dg.AssetsDefinition):
                assert set(value.keys) <= keys
            elif isinstance(value, dg.SensorDefinition | dg.ScheduleDefinition):
                assert value.name in names
