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
