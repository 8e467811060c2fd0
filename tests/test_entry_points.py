"""Dagster's standard entry points work from the repository root with a plain PATH, the environment not
activated: `dagster dev` and `spbe ui` (which runs `dg dev` and the warm worker) load the code location under
the one name `spbe_monitor`, and Ctrl-C stops everything `spbe ui` started. `dagster dev`'s webserver, asked
through its GraphQL API, shows every asset with its group, kinds, description and checks, and one job with its
running sensors (tests/graphql.py). A run started from a plain PATH, dbt included: in test_ducklake.py,
test_landings_and_a_full_rebuild_at_once_publish_snapshots_identical_to_the_file_that_queries_travel_back."""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from dagster_project.cli import UI_STOP_SECONDS
from dagster_project.lib.processes import descendants, still_running
from dagster_project.paths import BUNDLED_DATA_DIR, REPO_ROOT
from tests.conftest import VENV_BIN
from tests.graphql import (
    assert_asset_nodes_and_their_checks,
    assert_one_job_and_its_sensors_are_running,
    free_port,
    graphql,
)

PLAIN_PATH = "/usr/bin:/bin"
LOCATIONS = '{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus locationOrLoadError { ' \
            '__typename ... on PythonError { message } } } } } }'


def plain_env(tmp_path, name: str) -> dict[str, str]:
    """No venv on PATH and nothing activated; a data dir and Dagster home of its own."""
    home = tmp_path / f"{name}-home"
    home.mkdir()
    # `dagster dev`: runs are queued and never started (its data dir has no warehouse: the sensors would start
    # a build). `spbe ui` writes the project's dagster.yaml, the warm launcher's.
    (home / "dagster.yaml").write_text("run_queue:\n  max_concurrent_runs: 0\n")
    return {"PATH": PLAIN_PATH, "HOME": str(tmp_path), "SPBE_DATA_DIR": str(tmp_path / f"{name}-data"),
            "DAGSTER_HOME": str(home), "DO_NOT_TRACK": "1", "DAGSTER_DISABLE_TELEMETRY": "1"}


def locations(url: str) -> list[dict] | None:
    data = answer(url, LOCATIONS)
    return data["workspaceOrError"]["locationEntries"] if data else None


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return f"{pid} (gone)"


def ignore_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as for a job a script starts in the background


RUNS = '{ runsOrError { ... on Runs { results { runId status tags { key value } } } } }'


def answer(url: str, query: str) -> dict | None:
    """The server's answer, or None while it is not up yet."""
    try:
        return graphql(url, query)
    except OSError:
        return None


def test_dagster_dev_and_spbe_ui_load_the_code_location_and_ctrl_c_stops_all_of_spbe_ui(tmp_path, built_warehouse):
    """`spbe ui` as a user meets it: on a published warehouse, a file dropped in the inbox is landed and
    published by a run the daemon's sensor starts and the warm worker runs; then Ctrl-C stops everything."""
    data = tmp_path / "spbe-data"
    shutil.copytree(built_warehouse[0].root, data)
    servers = {}
    for command in ("dagster", "spbe"):
        port, log = free_port(), tmp_path / f"{command}.log"
        args = ["dev", "-p", str(port)] if command == "dagster" else ["ui", "--port", str(port)]
        env = plain_env(tmp_path, command) | ({"SPBE_DATA_DIR": str(data)} if command == "spbe" else {})
        with open(log, "wb") as sink:
            proc = subprocess.Popen([str(VENV_BIN / command), *args], cwd=REPO_ROOT, env=env, stdout=sink,
                                    stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=ignore_sigint)
        servers[command] = (proc, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 240
        loaded = {}
        while len(loaded) < len(servers):
            for command, (proc, url, log) in servers.items():
                if command in loaded:
                    continue
                assert proc.poll() is None, f"{command} stopped: {log.read_text()[-3000:]}"
                entries = locations(url) if command not in loaded else None
                if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                    loaded[command] = entries
                    assert [(e["name"], e["locationOrLoadError"]["__typename"]) for e in entries] == \
                        [("spbe_monitor", "RepositoryLocation")], (command, entries)
                    assert "not found on PATH" not in log.read_text()
                    if command == "dagster":
                        # What its UI shows; then its part is done: stop it, so its sensors use no more CPU.
                        assert_asset_nodes_and_their_checks(url)
                        assert_one_job_and_its_sensors_are_running(url)
                        stop(proc)
            assert time.monotonic() < deadline, f"not loaded in time: {set(servers) - set(loaded)}"
            time.sleep(1)

        ui, url, log = servers["spbe"]
        while "warm in" not in log.read_text():  # a run launched before goes to Dagster's own launcher
            assert time.monotonic() < deadline and ui.poll() is None, log.read_text()[-3000:]
            time.sleep(1)
        position = json.loads((data / "warehouse" / "spbe.manifest.json").read_text())["log_position"]
        revision = json.loads(sorted((BUNDLED_DATA_DIR / "samples").glob("*.json"))[0].read_text())
        revision["rows"] = [{**row, "level": 3} for row in revision["rows"]]  # a new revision of a sample
        (data / "inbox" / "dropped.json").write_text(json.dumps(revision))
        run = None
        while run is None or run["status"] not in ("SUCCESS", "FAILURE", "CANCELED"):
            assert time.monotonic() < deadline + 240, f"no finished run: {run}\n{log.read_text()[-3000:]}"
            time.sleep(2)
            runs = (answer(url, RUNS) or {}).get("runsOrError", {}).get("results", [])
            run = next((r for r in runs if {"key": "spbe/trigger", "value": "inbox"} in r["tags"]), None)
        assert run["status"] == "SUCCESS", log.read_text()[-3000:]
        assert any(t["key"] == "spbe/runner" for t in run["tags"]), run  # run by the warm worker
        published = json.loads((data / "warehouse" / "spbe.manifest.json").read_text())
        assert published["log_position"] == position + 1 and published["run_id"] == run["runId"]

        started = descendants(ui.pid)
        assert len(started) >= 4, started  # dg dev, its webserver and daemon, the worker
        ui.send_signal(signal.SIGINT)  # Ctrl-C, which spbe ui handles even when started with it ignored
        assert ui.wait(timeout=UI_STOP_SECONDS + 30) == 0, log.read_text()[-3000:]
        left = still_running(started)
        assert not left, f"still running after spbe ui stopped: {[command_line(pid) for pid in left]}"
        assert "Dagster services shut down." in log.read_text()
    finally:
        for proc, _, _ in servers.values():
            stop(proc)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the whole process group, SIGKILL if it is still there after 30 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
