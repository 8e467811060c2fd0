"""The same code location on a PostgreSQL-backed Dagster instance (deploy/dagster-postgres.yaml) with the
multiprocess executor, against a real PostgreSQL server started here. `make test` installs Debian's
postgresql when the machine has none; where it cannot, this module is skipped, saying so."""

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from dagster_project.defs.update import JOB, STEP, run_config
from dagster_project.paths import REPO_ROOT
from tests.events import submission

VENV_BIN = Path(sys.executable).parent
RUN_START, STEP_START = dg.DagsterEventType.RUN_START, dg.DagsterEventType.STEP_START


def _postgres_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    return found[-1] if found else shutil.which(name)


@pytest.fixture(scope="module")
def postgres_port():
    initdb, pg_ctl = _postgres_bin("initdb"), _postgres_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL is not installed: `apt-get install postgresql` (Debian), as `make test` does")
    root = Path(tempfile.mkdtemp(prefix="spbe-postgres-"))  # not under pytest's 0700 tree: the owner must enter
    as_owner: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root: the server runs as Debian's postgres user
        if shutil.which("runuser") is None or subprocess.run(["id", "postgres"], capture_output=True).returncode:
            pytest.skip("running as root without a 'postgres' user to own the test server")
        shutil.chown(root, "postgres")
        as_owner = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data, log = root / "data", root / "server.log"
    subprocess.run([*as_owner, initdb, "-D", str(data), "-A", "trust", "-U", "spbe", "--no-sync"], check=True,
                   capture_output=True)
    subprocess.run([*as_owner, pg_ctl, "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o",
                    f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start"], check=True, capture_output=True)
    try:
        yield port
    finally:
        subprocess.run([*as_owner, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_the_code_location_runs_on_postgres_with_the_multiprocess_executor(postgres_port, copy_of_built, tmp_path,
                                                                          monkeypatch):
    paths = copy_of_built
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(REPO_ROOT / "deploy" / "dagster-postgres.yaml", home / "dagster.yaml")
    for name, value in {"DAGSTER_HOME": str(home), "SPBE_EXECUTOR": "multiprocess",
                        "SPBE_PG_URL": f"postgresql+psycopg2://spbe@127.0.0.1:{postgres_port}/postgres"}.items():
        monkeypatch.setenv(name, value)
    (paths.inbox / "luwu.json").write_bytes(submission("73.17", level=2))  # a new revision: a partial build
    config = tmp_path / "run_config.yaml"
    config.write_text(json.dumps(run_config(inbox_files=["luwu.json"])))
    done = subprocess.run([str(VENV_BIN / "dagster"), "job", "execute", "-m", "dagster_project.definitions", "-a",
                           "defs", "-j", JOB, "-c", str(config)], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        (run,) = instance.get_runs()
        assert (run.job_name, run.status) == (JOB, dg.DagsterRunStatus.SUCCESS)
        logs = instance.all_logs(run.run_id)
        run_pid = next(e.dagster_event.pid for e in logs if e.dagster_event and e.dagster_event.event_type == RUN_START)
        step_pids = {e.dagster_event.step_key: e.dagster_event.pid for e in logs
                     if e.dagster_event and e.dagster_event.event_type == STEP_START}
        assert set(step_pids) == {STEP, "scorecards", "validation_results", "dbt_docs"}
        assert run_pid not in step_pids.values() and len(set(step_pids.values())) == len(step_pids)  # a process each
        # The step's dbt build recorded each model it rebuilt, in PostgreSQL's event log.
        assert instance.get_latest_materialization_event(dg.AssetKey("fct_index")) is not None
        assert instance.get_latest_materialization_event(dg.AssetKey("published_warehouse")) is not None
    with duckdb.connect(str(paths.published_db), read_only=True) as con:
        published_by = con.execute("select value ->> '$' from publish_manifest where key = 'run_id'").fetchone()
    assert published_by == (run.run_id,)  # the marts were rebuilt and published by this run
