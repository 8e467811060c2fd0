"""Asking a Dagster webserver through the GraphQL API the UI itself uses, and what every webserver of the
project must show (asked of `dagster dev` in tests/test_entry_points.py)."""

import json
import socket
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graphql(url: str, query: str) -> dict:
    req = urllib.request.Request(f"{url}/graphql", data=json.dumps({"query": query}).encode(),
                                 headers={"Content-Type": "application/json"})
    answer = json.loads(urllib.request.urlopen(req, timeout=60).read())
    assert "errors" not in answer, answer
    return answer["data"]


def assert_asset_nodes_and_their_checks(url: str) -> None:
    """Every asset has a group, kinds and a description; the checks of releases, reference tables and marts,
    and which of them block."""
    data = graphql(url, """{ assetNodes { assetKey { path } groupName kinds description jobNames
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


def assert_one_job_and_its_sensors_are_running(url: str) -> None:
    """One job, update_warehouse, which the three event sensors target; every sensor running."""
    selector = 'repositorySelector: {repositoryName: "__repository__", repositoryLocationName: "spbe_monitor"}'
    data = graphql(url, f"""{{ sensorsOrError({selector}) {{ ... on Sensors {{ results {{
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
