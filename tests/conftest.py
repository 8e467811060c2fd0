"""Shared fixtures: an isolated data dir and Dagster home per session, dbt parsed once, and one real
materialization of the whole pipeline on the bundled releases that many tests read from."""

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dagster_project.paths import BUNDLED_DATA_DIR, DBT_PROJECT_DIR, REPO_ROOT, DataPaths

VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="session", autouse=True)
def isolated_environment(tmp_path_factory):
    """Point every path at a temp dir (never the developer's data/) and parse dbt once."""
    root = tmp_path_factory.mktemp("spbe")
    env = {
        "SPBE_DATA_DIR": str(root / "data"),
        "DAGSTER_HOME": str(root / "dagster_home"),
        "PATH": os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", "")]),
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "GX_ANALYTICS_ENABLED": "false",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    Path(env["DAGSTER_HOME"]).mkdir(parents=True)
    shutil.copyfile(REPO_ROOT / "dagster.yaml", Path(env["DAGSTER_HOME"]) / "dagster.yaml")
    for var in [k for k in os.environ if k.startswith("SPBE_RELEASE_")]:
        saved[var] = os.environ.pop(var)
    # Test workers (pytest-xdist) share dbt/target: one parses while the other waits, then finds it current.
    from dagster_project.defs.warehouse import manifest_is_current

    (DBT_PROJECT_DIR / "target").mkdir(exist_ok=True)
    with open(DBT_PROJECT_DIR / "target" / ".parse.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not manifest_is_current(DBT_PROJECT_DIR / "target" / "manifest.json"):
            subprocess.run([str(VENV_BIN / "dbt"), "parse", "--project-dir", str(DBT_PROJECT_DIR),
                            "--profiles-dir", str(DBT_PROJECT_DIR), "--quiet"], check=True)
    yield root
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> DataPaths:
    """A fresh, empty data dir for one test."""
    monkeypatch.setenv("SPBE_DATA_DIR", str(tmp_path / "data"))
    return DataPaths(tmp_path / "data").ensure()


def land_files(instance, files: list[Path]):
    """Drop files in the inbox and run the inbox sensor's job on them, as the sensor would."""
    from dagster_project.definitions import defs
    from dagster_project.defs.automation import SUBMISSIONS_JOB
    from dagster_project.paths import data_paths

    inbox = data_paths().ensure().inbox
    for f in files:
        shutil.copyfile(f, inbox / f.name)
    config = {"ops": {"submission_files": {"config": {"files": [f.name for f in files]}}}}
    return defs().resolve_job_def(SUBMISSIONS_JOB).execute_in_process(instance=instance, run_config=config)


def run_pipeline(instance):
    """Materialize everything the way `spbe build` does: each release year, the bundled sample
    submissions, then the warehouse job."""
    from dagster_project.definitions import defs
    from dagster_project.defs.automation import BUILD_JOB, INGEST_JOB
    from dagster_project.defs.releases import release_years
    from dagster_project.lib.sources import list_releases, source_config_from_env

    definitions = defs()
    years = [str(e.year) for e in list_releases(source_config_from_env())]
    instance.add_dynamic_partitions(release_years.name, years)
    ingest = [definitions.resolve_job_def(INGEST_JOB).execute_in_process(partition_key=y, instance=instance)
              for y in years]
    ingest.append(land_files(instance, sorted((BUNDLED_DATA_DIR / "samples").glob("*.json"))))
    build = definitions.resolve_job_def(BUILD_JOB).execute_in_process(instance=instance)
    return ingest, build


@contextlib.contextmanager
def data_dir_set_to(paths: DataPaths):
    """SPBE_DATA_DIR pointed at ``paths`` for a session fixture (monkeypatch is function-scoped)."""
    previous = os.environ["SPBE_DATA_DIR"]
    os.environ["SPBE_DATA_DIR"] = str(paths.root)
    try:
        yield paths
    finally:
        os.environ["SPBE_DATA_DIR"] = previous


@pytest.fixture(scope="session")
def built_warehouse(isolated_environment):
    """The whole pipeline materialized once on the bundled data, in its own data dir."""
    import dagster as dg

    paths = DataPaths(isolated_environment / "built").ensure()
    with data_dir_set_to(paths), dg.DagsterInstance.ephemeral() as instance:
        ingest, build = run_pipeline(instance)
    yield paths, ingest, build


@pytest.fixture(scope="session")
def reports(built_warehouse):
    """The reports job (scorecards, validation page, dbt docs) materialized once on the built warehouse."""
    import dagster as dg

    from dagster_project.definitions import defs
    from dagster_project.defs.automation import REPORTS_JOB

    paths = built_warehouse[0]
    with data_dir_set_to(paths), dg.DagsterInstance.ephemeral() as instance:
        result = defs().resolve_job_def(REPORTS_JOB).execute_in_process(instance=instance)
    assert result.success
    return paths.reports, result


@pytest.fixture
def copy_of_built(built_warehouse, tmp_path, monkeypatch) -> DataPaths:
    """The built data dir, copied, so a test can break it without touching the shared one."""
    paths = DataPaths(tmp_path / "data")
    shutil.copytree(built_warehouse[0].root, paths.root)
    monkeypatch.setenv("SPBE_DATA_DIR", str(paths.root))
    return paths


@pytest.fixture
def published(built_warehouse):
    import duckdb

    paths = built_warehouse[0]
    con = duckdb.connect(str(paths.published_db), read_only=True)
    yield con
    con.close()
