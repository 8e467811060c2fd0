"""Running ``update_warehouse`` in this process: what a warm worker's child does for ``spbe ingest`` and
``spbe build``, and what those commands do themselves when no worker is running."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

# Runs started here print no Dagster log: the CLI says what failed in a line each, and the Dagster UI (same
# DAGSTER_HOME) has the full event log with stack traces.
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def run_update(config: dict[str, Any], tags: dict[str, str] | None = None,
               assets: list[str] | None = None) -> dict[str, Any]:
    """Execute update_warehouse with ``config`` (the fields of UpdateConfig) on the instance of DAGSTER_HOME,
    after failing the runs of processes that died; a plain summary of the run for the CLI. ``assets``: only
    those assets of the job (the reports, say)."""
    import dagster as dg

    from dagster_project.definitions import defs
    from dagster_project.defs.recovery import fail_abandoned_runs, runner_tags
    from dagster_project.defs.update import JOB, run_config

    ensure_instance()
    with dg.DagsterInstance.get() as instance:
        abandoned = fail_abandoned_runs(instance)
        job = defs().resolve_job_def(JOB)
        selection = [dg.AssetKey(a) for a in assets] if assets else None
        result = job.execute_in_process(
            run_config={**(run_config(**config) if not assets else {}), **QUIET}, instance=instance,
            raise_on_error=False, tags={**runner_tags(), **(tags or {})}, asset_selection=selection)
        published = [e.step_materialization_data.materialization.metadata for e in
                     result.get_asset_materialization_events()
                     if e.asset_key == dg.AssetKey("published_warehouse")]
        return {
            "run_id": result.run_id,
            "success": result.success,
            "abandoned": abandoned,
            "published": bool(published),
            "log_position": published[0]["log_position"].value if published else None,
            "failed_steps": failed_steps(result),
            "failed_checks": [f"{e.asset_key.to_user_string()}:{e.check_name} - {e.description or 'failed'}"
                              for e in result.get_asset_check_evaluations()
                              if not e.passed and e.severity.value == "ERROR"],
        }


def failed_steps(result) -> list[str]:
    """Per failed step, the message of the error's root cause (the OSError, the dbt summary), no stack trace."""
    lines = []
    for event in result.all_events:
        if event.is_step_failure:
            error = event.event_specific_data.error
            while error.cause is not None:
                error = error.cause
            message = error.message.strip().removeprefix("dagster._core.definitions.events.Failure: ")
            lines.append(f"step {event.step_key}: {message[:2000]}")
    return lines


def ensure_instance() -> None:
    """Create the Dagster instance's storage of DAGSTER_HOME once, under a lock: two commands started at once on
    a new home would both create its SQLite tables, and one fails ("table ... already exists")."""
    import dagster as dg

    home = Path(os.environ["DAGSTER_HOME"])
    marker = home / ".storage-ready"
    if marker.exists():
        return
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".storage.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.exists():
            with dg.DagsterInstance.get() as instance:
                instance.get_run_records(limit=1)  # runs, event log and schedule storage are made on first use
                instance.get_latest_materialization_event(dg.AssetKey("published_warehouse"))
                instance.all_instigator_state()
            marker.touch()
