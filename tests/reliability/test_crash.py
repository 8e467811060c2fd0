"""Promise: a run killed with SIGKILL (an OOM kill, a pulled plug) during the dbt build or during publish
leaves the published warehouse intact and queryable, loses no received file, and the next run completes.

Each run is the real `spbe` command in its own process group, killed whole (dbt's process included) at
the moment the phase is seen: a `dbt build` process in the group, or publish's partial file on disk.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from dagster_project.lib.archive import file_sha256, read_ingest_log
from dagster_project.paths import DataPaths
from tests.reliability.conftest import SPBE


def _group_commands(pgid: int) -> list[str]:
    """Command lines of the live processes in a process group."""
    out = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            group = int(stat.rsplit(")", 1)[1].split()[2])
            if group == pgid:
                out.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except (OSError, IndexError, ValueError):
            continue  # the process ended while we looked
    return out


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([str(SPBE), *args], env=env, start_new_session=True, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _kill_when(proc: subprocess.Popen, seen, what: str, timeout: float = 240) -> None:
    """SIGKILL the whole process group as soon as ``seen()`` is true; fail if the run ends first."""
    deadline = time.monotonic() + timeout
    while not seen():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before {what}:\n{proc.stdout.read()}")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError(f"no {what} within {timeout} s")
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _assert_intact(paths: DataPaths, sha: str, manifest: dict) -> None:
    assert file_sha256(paths.published_db) == sha
    with duckdb.connect(str(paths.published_db), read_only=True) as con:
        for table, expected in manifest["tables"].items():
            assert con.execute(f'select count(*) from "{table}"').fetchone()[0] == expected["rows"], table  # noqa: S608


def test_a_run_killed_during_dbt_and_then_during_publish_loses_nothing(cli_case):
    paths, env, received, new_sha = cli_case.paths, cli_case.env, cli_case.received, cli_case.sha256
    published_sha = file_sha256(paths.published_db)
    manifest = json.loads(paths.published_manifest.read_text())

    # 1. Killed during `dbt build`, after the new file has landed.
    run = _start(["ingest", str(received)], env)
    _kill_when(run, lambda: any(" build" in c and "dbt" in c for c in _group_commands(run.pid)), "dbt build")
    _assert_intact(paths, published_sha, manifest)
    landed = [line for line in read_ingest_log(paths.ingest_log) if line["sha256"] == new_sha]
    assert [line["status"] for line in landed] == ["loaded"]
    assert (paths.archive / f"{new_sha}.json").read_bytes() == cli_case.content

    # 2. The next run is killed during publish, while its partial file is being written.
    partials = lambda: list(paths.published_db.parent.glob(f".{paths.published_db.name}.*.partial"))  # noqa: E731
    run = _start(["build"], env)
    _kill_when(run, lambda: bool(partials()), "publish")
    _assert_intact(paths, published_sha, manifest)

    # 3. The run after that completes, publishes the new file's data, and clears what the kills left.
    done = subprocess.run([str(SPBE), "build"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "left unfinished by a process that died: marked failed" in done.stderr  # the killed run's slot is freed
    assert file_sha256(paths.published_db) != published_sha
    assert partials() == [] and not list(paths.inbox.rglob("*.json"))
    with duckdb.connect(str(paths.published_db), read_only=True) as con:
        rows = con.execute("select count(*) from fct_submission_revisions where institution_id = '32.11' "
                           "and year = 2023 and stage = 'final' and is_current").fetchone()[0]
    assert rows == 1


def test_the_sensor_fails_runs_of_dead_processes_and_frees_their_slot():
    import dagster as dg

    from dagster_project.defs.recovery import RUNNER_TAG, abandoned_runs_sensor
    from dagster_project.lib.processes import owner_of

    @dg.job
    def some_job():
        pass

    finished = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
    dead_owner = owner_of(finished.pid)
    finished.wait()
    with dg.DagsterInstance.ephemeral() as instance:
        storage = instance.event_log_storage
        storage.set_concurrency_slots("duckdb", 1)
        runs = {owner: instance.create_run_for_job(some_job, tags={RUNNER_TAG: owner},
                                                   status=dg.DagsterRunStatus.STARTED)
                for owner in (dead_owner, owner_of())}
        storage.claim_concurrency_slot("duckdb", runs[dead_owner].run_id, "warehouse_dbt")
        assert storage.get_concurrency_info("duckdb").active_slot_count == 1

        result = abandoned_runs_sensor(dg.build_sensor_context(instance=instance))
        assert runs[dead_owner].run_id in result.skip_message
        status = {o: instance.get_run_by_id(r.run_id).status for o, r in runs.items()}
        assert status == {dead_owner: dg.DagsterRunStatus.FAILURE, owner_of(): dg.DagsterRunStatus.STARTED}
        assert storage.get_concurrency_info("duckdb").active_slot_count == 0
