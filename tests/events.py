"""What the event-path tests share: a submission file, a sensor tick, the published rows, a requested run,
and `spbe` started as a separate process."""

import json
import os
import subprocess
import time

import dagster as dg
import duckdb

from dagster_project.defs.resources import DataDirResource
from dagster_project.defs.sensors import inbox_sensor
from dagster_project.lib.samples import generate
from dagster_project.paths import DataPaths
from tests.conftest import VENV_BIN

SPBE = str(VENV_BIN / "spbe")


def submission(institution: str = "73.17", level: int | None = None, drop_rows: int = 0) -> bytes:
    """A valid final-stage file for 2024 (levels as generated, or all set to ``level``); ``drop_rows`` leaves
    indicators out (an incomplete file: it still loads, with its coverage)."""
    doc = json.loads(generate([institution], years=(2024,), stages=("final",))[0].content)
    if level is not None:
        for row in doc["rows"]:
            row["level"] = level
    doc["rows"] = doc["rows"][: len(doc["rows"]) - drop_rows]
    return json.dumps(doc).encode()


def tick(instance, sensor=inbox_sensor, cursor=None, **resources):
    return sensor(dg.build_sensor_context(instance=instance, cursor=cursor,
                                          resources={"data_dir": DataDirResource(), **resources}))


def published_rows(paths: DataPaths, sql: str, params=()) -> list[tuple]:
    with duckdb.connect(str(paths.published_db), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def run_requested(instance, request):
    from dagster_project.definitions import defs
    from dagster_project.defs.update import JOB

    return defs().resolve_job_def(JOB).execute_in_process(instance=instance, run_config=request.run_config,
                                                         tags=request.tags)


def spbe(*args, env=None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([SPBE, *args], env=env or os.environ.copy(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, **kwargs)


def wait_for_build_lock(paths: DataPaths, process: subprocess.Popen, timeout: float = 300) -> dict:
    """Until ``process`` holds the build lock; its holder record."""
    lock = paths.warehouse / ".build.lock"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"the command ended (exit {process.returncode}) before it built:\n{out}\n{err}")
        try:
            holder = json.loads(lock.read_text() or "null")
        except (OSError, ValueError):
            holder = None
        if holder:
            return holder
        time.sleep(0.1)
    raise AssertionError("no build took the lock")
