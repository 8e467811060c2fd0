"""Dagster as a service on PostgreSQL (deploy/dagster-postgres.yaml) against a real server started here, the
processes of deploy/compose.yaml: a code server, and `dagster-daemon` and `dagster-webserver` sharing the
instance; a file dropped in the inbox is seen by the
daemon's sensor, whose run (a process per step, the multiprocess executor) lands it, builds and publishes to
a DuckLake catalog in the same server; the webserver shows that run. `make test` installs Debian's
postgresql when the machine has none; where it cannot, this module is skipped, saying so."""

import contextlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import dagster as dg

from dagster_project.defs.update import JOB, STEP
from dagster_project.lib import ducklake
from dagster_project.paths import REPO_ROOT
from tests.conftest import VENV_BIN
from tests.events import submission
from tests.graphql import free_port, graphql
from tests.test_entry_points import stop

RUN_START, STEP_START = dg.DagsterEventType.RUN_START, dg.DagsterEventType.STEP_START
RUNS = '{ runsOrError { ... on Runs { results { runId status tags { key value } } } } }'


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as sink:  # a file, not a pipe: an unread pipe would fill and stall the process
        return subprocess.Popen(args, cwd=REPO_ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                start_new_session=True)


def test_the_daemon_on_postgres_runs_the_sensors_run_which_publishes_to_ducklake(postgres_server, copy_of_built,
                                                                                tmp_path, monkeypatch):
    paths = copy_of_built
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(REPO_ROOT / "deploy" / "dagster-postgres.yaml", home / "dagster.yaml")
    server = postgres_server
    server.create_database("dagster")
    catalog = "postgres:" + server.create_database("lake")
    for name, value in {"DAGSTER_HOME": str(home), "SPBE_EXECUTOR": "multiprocess",
                        "SPBE_PG_URL": f"postgresql+psycopg2://spbe@/dagster?host={server.socket_dir}",
                        ducklake.BACKEND_ENV: "ducklake", ducklake.CATALOG_ENV: catalog}.items():
        monkeypatch.setenv(name, value)
    env = dict(os.environ)
    (paths.inbox / "luwu.json").write_bytes(submission("73.17", level=2))  # a new revision: a partial build

    # The processes of deploy/compose.yaml, with its arguments: a code server, and the daemon and webserver
    # reading deploy/workspace.yaml (here with this machine's host and port).
    port, code_port = free_port(), free_port()
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text((REPO_ROOT / "deploy" / "workspace.yaml").read_text()
                         .replace("host: code-server", "host: 127.0.0.1").replace("port: 4000", f"port: {code_port}"))
    code = _start([str(VENV_BIN / "dagster"), "code-server", "start", "-h", "127.0.0.1", "-p", str(code_port), "-m",
                   "dagster_project.definitions"], env, tmp_path / "code-server.log")
    daemon = _start([str(VENV_BIN / "dagster-daemon"), "run", "-w", str(workspace)], env, tmp_path / "daemon.log")
    web = _start([str(VENV_BIN / "dagster-webserver"), "-w", str(workspace), "-h", "127.0.0.1", "-p", str(port)], env,
                 tmp_path / "webserver.log")
    try:
        deadline, run = time.monotonic() + 420, None
        with dg.DagsterInstance.from_config(str(home)) as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            while run is None or not run.is_finished:
                assert daemon.poll() is None, (tmp_path / "daemon.log").read_text()[-3000:]
                assert time.monotonic() < deadline, f"no finished run: {(tmp_path / 'daemon.log').read_text()[-3000:]}"
                time.sleep(2)
                run = next(iter(instance.get_runs(dg.RunsFilter(tags={"spbe/trigger": "inbox"}))), None)
            assert (run.job_name, run.status) == (JOB, dg.DagsterRunStatus.SUCCESS), \
                (tmp_path / "daemon.log").read_text()[-3000:]
            logs = instance.all_logs(run.run_id)
            run_pid = next(e.dagster_event.pid for e in logs
                           if e.dagster_event and e.dagster_event.event_type == RUN_START)
            step_pids = {e.dagster_event.step_key: e.dagster_event.pid for e in logs
                         if e.dagster_event and e.dagster_event.event_type == STEP_START}
            assert set(step_pids) == {STEP, "scorecards", "validation_results", "dbt_docs"}
            assert run_pid not in step_pids.values() and len(set(step_pids.values())) == len(step_pids)  # one each
            # The step's dbt build recorded each model it rebuilt, in PostgreSQL's event log.
            assert instance.get_latest_materialization_event(dg.AssetKey("fct_index")) is not None

        web_runs = None
        while not web_runs:  # the webserver reads the same instance: it shows the daemon's run
            assert web.poll() is None and time.monotonic() < deadline, (tmp_path / "webserver.log").read_text()[-3000:]
            with contextlib.suppress(OSError):
                web_runs = graphql(f"http://127.0.0.1:{port}", RUNS)["runsOrError"]["results"]
            time.sleep(1)
        assert [(r["runId"], r["status"]) for r in web_runs] == [(run.run_id, "SUCCESS")]
    finally:
        for proc in (daemon, web, code):
            stop(proc)

    manifest = json.loads(paths.published_manifest.read_text())
    assert manifest["run_id"] == run.run_id  # rebuilt and published by the daemon's run
    with ducklake.connect(ducklake.setting(paths)) as con:
        snapshot = con.execute("select max(snapshot_id) from spbe.snapshots()").fetchone()[0]
        published_by = con.execute("select value ->> '$' from publish_manifest where key = 'run_id'").fetchone()
        landed = con.execute("select status from fct_ingest_log where original_name = 'luwu.json'").fetchall()
    assert snapshot == manifest["ducklake"]["snapshot_id"] and published_by == (run.run_id,)
    assert landed == [("loaded",)]
