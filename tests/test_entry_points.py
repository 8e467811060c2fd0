"""Dagster's standard entry points work from the repository root with a plain PATH, the environment not
activated: `dagster dev` and `dg dev` load the code location under the one name `spbe_monitor`. A run started
from a plain PATH, dbt included: test_two_commands_at_once_each_report_their_own_files in test_event_path.py."""

import json
import os
import signal
import subprocess
import time
import urllib.request

from dagster_project.paths import REPO_ROOT
from tests.conftest import VENV_BIN
from tests.test_webserver import free_port

PLAIN_PATH = "/usr/bin:/bin"
LOCATIONS = '{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus locationOrLoadError { ' \
            '__typename ... on PythonError { message } } } } } }'


def plain_env(tmp_path, name: str) -> dict[str, str]:
    """No venv on PATH and nothing activated; a data dir and Dagster home of its own."""
    home = tmp_path / f"{name}-home"
    home.mkdir()
    # Runs are queued and never started: a data dir with no warehouse would have the sensors start a build.
    (home / "dagster.yaml").write_text("run_queue:\n  max_concurrent_runs: 0\n")
    return {"PATH": PLAIN_PATH, "HOME": str(tmp_path), "SPBE_DATA_DIR": str(tmp_path / f"{name}-data"),
            "DAGSTER_HOME": str(home), "DO_NOT_TRACK": "1", "DAGSTER_DISABLE_TELEMETRY": "1"}


def locations(url: str) -> list[dict] | None:
    request = urllib.request.Request(f"{url}/graphql", data=json.dumps({"query": LOCATIONS}).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return json.load(reply)["data"]["workspaceOrError"]["locationEntries"]
    except OSError:
        return None


def test_dagster_dev_and_dg_dev_load_the_code_location_without_an_activated_environment(tmp_path):
    servers = {}
    for command in ("dagster", "dg"):
        port, log = free_port(), tmp_path / f"{command}.log"
        with open(log, "wb") as sink:
            proc = subprocess.Popen([str(VENV_BIN / command), "dev", "-p", str(port)], cwd=REPO_ROOT,
                                    env=plain_env(tmp_path, command), stdout=sink, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        servers[command] = (proc, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 240
        loaded = {}
        while len(loaded) < len(servers):
            for command, (proc, url, log) in servers.items():
                assert proc.poll() is None, f"{command} dev stopped: {log.read_text()[-3000:]}"
                entries = locations(url) if command not in loaded else None
                if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                    loaded[command] = entries
            assert time.monotonic() < deadline, f"not loaded in time: {set(servers) - set(loaded)}"
            time.sleep(1)
        for command, entries in loaded.items():
            assert [(e["name"], e["locationOrLoadError"]["__typename"]) for e in entries] == \
                [("spbe_monitor", "RepositoryLocation")], (command, entries)
            assert "not found on PATH" not in servers[command][2].read_text()
    finally:
        for proc, _, _ in servers.values():
            os.killpg(proc.pid, signal.SIGTERM)
        for proc, _, _ in servers.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
