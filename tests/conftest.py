"""Shared fixtures: an isolated data dir and Dagster home per session, dbt parsed once, and one real
materialization of the whole pipeline on the bundled releases that many tests read from."""

import contextlib
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from dagster_project.paths import REPO_ROOT, DataPaths

VENV_BIN = Path(sys.executable).parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


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
    from dagster_project.lib.dbt_project import ensure_manifest

    ensure_manifest()
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


def run_update(instance, raise_on_error: bool = True, **config):
    """Execute update_warehouse in this process with the given run config (the fields of UpdateConfig)."""
    from dagster_project.definitions import defs
    from dagster_project.defs.update import JOB, run_config

    return defs().resolve_job_def(JOB).execute_in_process(instance=instance, run_config=run_config(**config),
                                                         raise_on_error=raise_on_error)


def land_files(instance, files: list[Path], build: bool = False, raise_on_error: bool = True):
    """Drop files in the inbox and run update_warehouse on them, as the inbox sensor would (landing only,
    unless ``build``)."""
    from dagster_project.paths import data_paths

    inbox = data_paths().ensure().inbox
    for f in files:
        shutil.copyfile(f, inbox / f.name)
    return run_update(instance, raise_on_error=raise_on_error, inbox_files=[f.name for f in files], build=build)


def run_pipeline(instance):
    """What `spbe build` runs on a new data dir: every release of the source and the bundled samples landed,
    the whole warehouse built and published, the reports written: one run."""
    return run_update(instance, changed_releases=True, samples="if_empty")


@contextlib.contextmanager
def data_dir_set_to(paths: DataPaths):
    """SPBE_DATA_DIR pointed at ``paths`` for a session fixture (monkeypatch is function-scoped)."""
    previous = os.environ["SPBE_DATA_DIR"]
    os.environ["SPBE_DATA_DIR"] = str(paths.root)
    try:
        yield paths
    finally:
        os.environ["SPBE_DATA_DIR"] = previous


@dataclass(frozen=True)
class BuiltRun:
    """What the tests read of the run that built the shared warehouse (kept as JSON: workers share it)."""

    run_id: str
    success: bool
    materializations: tuple  # AssetMaterialization, in the run's order
    check_evaluations: tuple  # AssetCheckEvaluation

    def get_asset_materialization_events(self):
        return list(self.materializations)

    def get_asset_check_evaluations(self):
        return list(self.check_evaluations)


@pytest.fixture(scope="session")
def built_warehouse(isolated_environment, tmp_path_factory):
    """The whole pipeline materialized on the bundled data, once per test run: the first test worker to ask
    builds it in a folder every worker shares, the others wait for it. (paths, run). Tests only read it: one
    that writes (dbt, a build) works on ``copy_of_built``."""
    import fcntl

    import dagster as dg

    shared = tmp_path_factory.getbasetemp()
    shared = shared.parent if os.environ.get("PYTEST_XDIST_WORKER") else shared
    paths, record = DataPaths(shared / "built"), shared / "built.json"
    with open(shared / "built.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not record.exists():  # built aside and renamed: a failed build leaves nothing the next one trips on
            building = DataPaths(Path(tempfile.mkdtemp(dir=shared, prefix="building-")) / "built").ensure()
            with data_dir_set_to(building), dg.DagsterInstance.ephemeral() as instance:
                result = run_pipeline(instance)
            run = BuiltRun(result.run_id, result.success,
                           tuple(e.materialization for e in result.get_asset_materialization_events()),
                           tuple(result.get_asset_check_evaluations()))
            shutil.rmtree(paths.root, ignore_errors=True)  # left by a worker that died before its record
            building.root.rename(paths.root)
            record.write_text(dg.serialize_value(run_as_dict(run)))
    yield paths, run_from_dict(dg.deserialize_value(record.read_text()))


def run_as_dict(run: BuiltRun) -> dict:
    return {"run_id": run.run_id, "success": run.success, "materializations": list(run.materializations),
            "check_evaluations": list(run.check_evaluations)}


def run_from_dict(raw: dict) -> BuiltRun:
    return BuiltRun(raw["run_id"], raw["success"], tuple(raw["materializations"]), tuple(raw["check_evaluations"]))


@pytest.fixture(scope="session")
def reports(built_warehouse):
    """The reports (scorecards, validation page, dbt docs), written by the run that built the warehouse."""
    paths, result = built_warehouse
    assert result.success
    return paths.reports, result


@pytest.fixture
def copy_of_built(built_warehouse, tmp_path, monkeypatch) -> DataPaths:
    """The built data dir, copied, so a test can break it without touching the shared one."""
    paths = DataPaths(tmp_path / "data")
    shutil.copytree(built_warehouse[0].root, paths.root)
    monkeypatch.setenv("SPBE_DATA_DIR", str(paths.root))
    return paths


@pytest.fixture(scope="module")
def postgres_server():
    """A PostgreSQL server of its own for a test module (lib/local_postgres.py); skipped, saying why, where
    PostgreSQL cannot run (`make test` installs Debian's package when missing)."""
    from dagster_project.lib.local_postgres import LocalPostgres, unavailable

    if reason := unavailable():
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="spbe-postgres-"))  # not under pytest's 0700 tree: the owner must enter
    server = LocalPostgres(root).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (Debian's package, driven by Playwright from PyPI), one per test module."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed: `make test` installs Debian's chromium package (as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        yield browser
        browser.close()


@pytest.fixture
def published(built_warehouse):
    import duckdb

    paths = built_warehouse[0]
    con = duckdb.connect(str(paths.published_db), read_only=True)
    yield con
    con.close()


# `make test-fast`: the tests that build no warehouse and start no server (pure functions, landing, parsing,
# exports on small files), for the inner loop. `make test` runs everything.
SLOW_FIXTURES = {"built_warehouse", "copy_of_built", "reports", "published", "hostile", "browser",
                 "postgres_server"}
SLOW_MODULES = {"test_batch_landing", "test_bench", "test_blocking", "test_cli", "test_dbt_unit_tests",
                "test_definitions", "test_entry_points", "test_event_path", "test_inbox", "test_moving_data_dir",
                "test_pipeline", "test_postgres", "test_sources", "test_windows"}


# The order test files are handed to workers (`make test` passes `--no-loadscope-reorder`: by default xdist
# hands out the files with the most tests first, whatever their length): the longest first, so that no worker
# is left running one alone at the end (measured: 80 s of a 400 s run). The first builds the shared
# warehouse; the next two need none, so the other workers start at once. Order only: a file not named here
# runs after these, in the usual order.
LONGEST_FIRST = ("test_scorecards", "test_bench", "test_sources", "test_ducklake", "test_event_path",
                 "test_entry_points", "test_resource_faults", "test_inbox", "test_crash", "test_postgres",
                 "test_bad_inputs", "test_moving_data_dir", "test_blocking", "test_readers", "test_batch_landing",
                 "test_injection", "test_idempotency", "test_export", "test_definitions", "test_secondary",
                 "test_submissions")


def pytest_collection_modifyitems(config, items):
    rank = {name: n for n, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.module.__name__.rsplit(".", 1)[-1], len(rank)))
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1]
        if (SLOW_FIXTURES & set(item.fixturenames) or module in SLOW_MODULES
                or "reliability" in item.module.__name__):
            item.add_marker(pytest.mark.slow)
