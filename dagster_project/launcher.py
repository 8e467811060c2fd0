"""``WarmRunLauncher``: Dagster's default launcher, except that a run goes to the warm worker when one is
running for this data directory (dagster_project/worker.py), which starts it at once in a fork of a process
that has everything imported. Without a worker, runs start as Dagster always starts them.

Configured in dagster.yaml (``run_launcher``). It runs inside the daemon and the webserver, so it imports
nothing of the project beyond the worker's client and stays as light as Dagster's own launcher.
"""

from __future__ import annotations

import os
import signal

from dagster import DefaultRunLauncher

from dagster_project.dagster_private import CheckRunHealthResult, LaunchRunContext, WorkerStatus, execute_run_command
from dagster_project.defs.recovery import RUNNER_TAG
from dagster_project.lib.processes import owner_is_gone, owner_of


class WarmRunLauncher(DefaultRunLauncher):
    def launch_run(self, context: LaunchRunContext) -> None:
        from dagster_project import worker

        run = context.dagster_run
        if run.job_code_origin is not None:
            args = execute_run_command(run, self._instance)
            sock = worker.request({"op": "execute_run", "args": args}, timeout=10)
            if sock is not None:
                with sock:
                    reply = worker.read_reply(sock) or {}
                if "pid" in reply:
                    self._instance.add_run_tags(run.run_id, {RUNNER_TAG: owner_of(reply["pid"])})
                    self._instance.report_engine_event(
                        f"Started in the warm worker, process {reply['pid']}", run, cls=self.__class__)
                    return
        super().launch_run(context)

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run) -> CheckRunHealthResult:
        owner = run.tags.get(RUNNER_TAG)
        if owner is None:
            # Started by Dagster's own launcher (no worker yet, as in the first seconds of `spbe ui`, or none at
            # all): its process is the code server's child, which Dagster does not check either. Anything but
            # RUNNING here makes run monitoring fail a run that is still working.
            return CheckRunHealthResult(WorkerStatus.RUNNING, "started by Dagster's launcher: not checked")
        if owner_is_gone(owner):
            return CheckRunHealthResult(WorkerStatus.FAILED, f"the process running it ({owner}) is gone")
        return CheckRunHealthResult(WorkerStatus.RUNNING)

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        owner = run.tags.get(RUNNER_TAG) if run else None
        if run is None or run.is_finished or owner is None:
            return super().terminate(run_id)
        self._instance.report_run_canceling(run)
        if owner_is_gone(owner):
            return False
        host, pid, _ = owner.split(":")
        os.kill(int(pid), signal.SIGINT)  # Dagster stops the run at the next point it checks for interrupts
        return True
