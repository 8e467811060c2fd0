"""Runs whose process died (SIGKILL, OOM, a pulled plug) are marked failed.

A run killed mid-step stays "started" in Dagster's storage: the UI shows it running for ever and its assets
look "in progress". (What it held on disk needs no help: the kernel releases the build lock with its
holder, lib/warehouse.py.) Runs started by `spbe` carry their process as a tag; when that process is
certainly gone, the run is failed. Runs launched by the daemon are covered by Dagster's own run monitoring
(dagster.yaml).
"""

import dagster as dg

from dagster_project.lib.processes import owner_is_gone, owner_of

RUNNER_TAG = "spbe/runner"  # host:pid:start of the process that executes the run in process


def runner_tags() -> dict[str, str]:
    return {RUNNER_TAG: owner_of()}


def fail_abandoned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Fail every unfinished run whose executing process is gone; returns their run ids."""
    abandoned = []
    statuses = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=statuses)):
        run = record.dagster_run
        owner = run.tags.get(RUNNER_TAG)
        if owner and owner_is_gone(owner):
            instance.report_run_failed(run, f"The process running this run ({owner}) died before it ended.")
            abandoned.append(run.run_id)
    return abandoned


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Fails runs whose `spbe` process died (killed, crashed), so that they stop looking in "
                "progress; the next build rebuilds what they were building.",
)
def abandoned_runs_sensor(context: dg.SensorEvaluationContext):
    failed = fail_abandoned_runs(context.instance)
    return dg.SkipReason(f"marked failed: {', '.join(failed)}" if failed else "no abandoned runs")
