"""Every private Dagster API this project uses, in one place. A run launcher of our own and running a run in
a forked worker have no public API in Dagster 1.13: the launcher's types live in ``dagster._core.launcher``
and a run is executed by the command line ``dagster api execute_run``. Nothing else imports from
``dagster._``; tests/test_launcher.py fails when any of these moves or changes shape."""

from __future__ import annotations

from dagster._core.launcher import CheckRunHealthResult, LaunchRunContext, WorkerStatus

__all__ = ["CheckRunHealthResult", "LaunchRunContext", "WorkerStatus", "api_cli", "execute_run_command"]


def execute_run_command(run, instance) -> list[str]:
    """The arguments of ``dagster api execute_run`` for ``run``, as Dagster's own launcher builds them."""
    from dagster._grpc.types import ExecuteRunArgs

    args = ExecuteRunArgs(job_origin=run.job_code_origin, run_id=run.run_id, instance_ref=instance.get_ref(),
                          set_exit_code_on_failure=True)
    return list(args.get_command_args())


def api_cli():
    """The ``dagster api`` command group (a click group: ``api_cli().main(args=[...])``); heavy, so imported
    on first use (the warm worker imports it before it forks)."""
    from dagster._cli.api import api_cli as group

    return group
