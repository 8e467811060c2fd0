"""Runs whose process died (SIGKILL, OOM, a pulled plug) are marked failed, freeing what they held.

A run killed mid-step stays "started" in Dagster's storage: it keeps the `duckdb` pool slot, so the next
run waits for it forever, and its assets look "in progress" to the automation conditions. Runs started by
`spbe` carry their process as a tag; when that process is certainly gone, the run is failed and its slots
are freed. Runs launched by the daemon are covered by Dagster's own run monitoring (dagster.yaml).
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
            instance.report_run_failed(run, f"The process running this run ({owner}) died before it ended; "
                                            "marked failed so that its pool slot is freed.")
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
            abandoned.append(run.run_id)
    return abandoned


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Fails runs whose `spbe` process died (killed, crashed), so that they free the duckdb pool "
                "slot and stop looking in progress; the assets they were building are then rebuilt.",
)
def abandoned_runs_sensor(context: dg.SensorEvaluationContext):
    failed = fail_abandoned_runs(context.instance)
    return dg.SkipReason(f"marked failed: {', '.join(failed)}" if failed else "no abandoned runs")
