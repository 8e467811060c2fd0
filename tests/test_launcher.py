"""WarmRunLauncher's health check, which Dagster's run monitoring acts on every few seconds: only a run whose
worker process is gone is reported failed."""

import subprocess
import sys

import dagster as dg

from dagster_project.defs.recovery import RUNNER_TAG
from dagster_project.launcher import WarmRunLauncher
from dagster_project.lib.processes import owner_of


def health(tags: dict[str, str]):
    return WarmRunLauncher().check_run_worker_health(dg.DagsterRun(job_name="update_warehouse", tags=tags)).status


def test_a_run_started_by_dagsters_own_launcher_is_not_failed_by_monitoring():
    """Seen in `spbe ui`: a sensor's run launched before the worker was warm went to Dagster's launcher, and
    monitoring marked it failed 5 s later while it went on building and publishing."""
    assert health({}).name == "RUNNING"


def test_a_run_of_a_live_worker_child_runs_and_one_of_a_dead_one_failed():
    assert health({RUNNER_TAG: owner_of()}).name == "RUNNING"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert health({RUNNER_TAG: owner_of(dead.pid)}).name == "FAILED"


@dg.job
def a_job():
    pass


def test_the_private_dagster_apis_we_rely_on_are_in_one_module_and_still_there():
    """A Dagster upgrade that moves or reshapes them fails here, not in a run."""
    from pathlib import Path

    from dagster_project import dagster_private
    from dagster_project.paths import REPO_ROOT

    users = [p.relative_to(REPO_ROOT) for p in (REPO_ROOT / "dagster_project").rglob("*.py")
             if "dagster._" in p.read_text(encoding="utf-8").replace('"dagster._core.definitions.events.', "")]
    assert users == [Path("dagster_project/dagster_private.py")]
    origin = dg.reconstructable(a_job).get_python_origin()
    run = dg.DagsterRun(job_name="a_job", run_id="0" * 8 + "-0000-0000-0000-" + "0" * 12, job_code_origin=origin)
    with dg.instance_for_test() as instance:
        args = dagster_private.execute_run_command(run, instance)
    assert args[:3] == ["dagster", "api", "execute_run"] and "0" * 8 in " ".join(args)
    assert "execute_run" in dagster_private.api_cli().commands
    assert {"RUNNING", "FAILED", "UNKNOWN"} <= {s.name for s in dagster_private.WorkerStatus}
    assert dagster_private.CheckRunHealthResult(dagster_private.WorkerStatus.RUNNING).status.name == "RUNNING"
    assert all(hasattr(dg.DefaultRunLauncher, m) for m in ("launch_run", "check_run_worker_health", "terminate"))


def test_descendants_are_found_however_deep_and_are_gone_once_killed():
    """What `spbe ui` waits for on Ctrl-C: every process it started, a grandchild in a session of its own
    included; a pid the system later gives to another process is not one of them."""
    import os
    import signal
    import time

    from dagster_project.lib.processes import descendants, still_running

    parent = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time; subprocess.Popen([sys.executable, "
                               "'-c', 'import time; time.sleep(60)'], start_new_session=True); time.sleep(60)"])
    deadline = time.monotonic() + 30
    while not (below := descendants(parent.pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    started = {parent.pid: descendants(os.getpid())[parent.pid], **below}
    (grandchild,) = below
    assert still_running(started) == {parent.pid, grandchild}
    assert still_running({grandchild: "a start time it never had"}) == set()
    for pid in started:
        os.kill(pid, signal.SIGKILL)
    parent.wait()
    while still_running(started) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert still_running(started) == set()
