"""dagster-webserver on a free port, asked through the GraphQL API the UI itself uses."""

import json
import os
import socket
import subprocess
import time
import urllib.request

import pytest

from dagster_project.paths import REPO_ROOT
from tests.conftest import VENV_BIN


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def webserver(built_warehouse, tmp_path_factory):
    port = free_port()
    env = {**os.environ, "SPBE_DATA_DIR": str(built_warehouse[0].root)}
    log = tmp_path_factory.mktemp("webserver") / "webserver.log"
    with open(log, "wb") as sink:  # a file, not a pipe: an unread pipe would fill and stall the server
        proc = subprocess.Popen(
            [str(VENV_BIN / "dagster-webserver"), "-w", str(REPO_ROOT / "workspace.yaml"), "-h", "127.0.0.1",
             "-p", str(port)], cwd=REPO_ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while not _answers(f"{url}/server_info"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dagster-webserver did not start: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2)
        return True
    except OSError:
        return False


def graphql(url: str, query: str) -> dict:
    req = urllib.request.Request(f"{url}/graphql", data=json.dumps({"query": query}).encode(),
                                 headers={"Content-Type": "application/json"})
    answer = json.loads(urllib.request.urlopen(req, timeout=60).read())
    assert "errors" not in answer, answer
    return answer["data"]


def test_code_location_loads(webserver):
    data = graphql(webserver, """{ workspaceOrError { ... on Workspace { locationEntries {
        name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }""")
    (entry,) = data["workspaceOrError"]["locationEntries"]
    assert entry["name"] == "spbe_monitor" and entry["loadStatus"] == "LOADED"
    assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", entry


def test_asset_nodes_and_their_checks(webserver):
    data = graphql(webserver, """{ assetNodes { assetKey { path } groupName kinds description jobNames
        assetChecksOrError { ... on AssetChecks { checks { name blocking } } } } }""")
    nodes = {"/".join(n["assetKey"]["path"]): n for n in data["assetNodes"]}
    assert {"official_release", "submission_files", "ingest_log", "reference_tables", "reference/institutions",
            "staging/stg_lake__submissions", "fct_rankings", "published_warehouse", "scorecards"} <= set(nodes)
    assert all(n["groupName"] and n["kinds"] and n["description"] for n in nodes.values())
    # A refused release is quarantined and never lands, so its suite holds nothing back (the previous release
    # stays current); broken reference tables stop the build.
    release_checks = {c["name"]: c["blocking"] for c in nodes["official_release"]["assetChecksOrError"]["checks"]}
    assert release_checks == {"official_results_suite": False, "official_results_warnings": False}
    reference_checks = {c["name"]: c["blocking"] for c in nodes["reference_tables"]["assetChecksOrError"]["checks"]}
    assert "reference_structure" in reference_checks and all(reference_checks.values())
    mart_checks = {c["name"] for c in nodes["fct_rankings"]["assetChecksOrError"]["checks"]}
    assert "unique_combination_fct_rankings_institution_id__year__scope__scope_value" in mart_checks
    # The event job names what every event may change; the dbt models are built inside its step.
    assert "update_warehouse" in nodes["published_warehouse"]["jobNames"]
    assert "update_warehouse" in nodes["scorecards"]["jobNames"]
    assert "update_warehouse" not in nodes["fct_rankings"]["jobNames"]


def test_one_job_and_its_sensors_are_running(webserver):
    selector = 'repositorySelector: {repositoryName: "__repository__", repositoryLocationName: "spbe_monitor"}'
    data = graphql(webserver, f"""{{ sensorsOrError({selector}) {{ ... on Sensors {{ results {{
        name sensorState {{ status }} targets {{ pipelineName }} }} }} }}
        repositoryOrError({selector}) {{
        ... on Repository {{ jobs {{ name }} }} }} }}""")
    sensors = {s["name"]: s for s in data["sensorsOrError"]["results"]}
    assert {name: s["sensorState"]["status"] for name, s in sensors.items()} == {
        "inbox_sensor": "RUNNING", "release_source_sensor": "RUNNING", "reference_sensor": "RUNNING",
        "abandoned_runs_sensor": "RUNNING"}
    for name in ("inbox_sensor", "release_source_sensor", "reference_sensor"):
        assert [t["pipelineName"] for t in sensors[name]["targets"]] == ["update_warehouse"], name
    jobs = {j["name"] for j in data["repositoryOrError"]["jobs"]}
    assert jobs - {"__ASSET_JOB"} == {"update_warehouse"}
