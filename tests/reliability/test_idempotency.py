"""Promise: running the whole pipeline again on the same inputs changes no mart row, and neither does
landing every archived file again.

The one table that does change is fct_ingest_log: it is the audit trail, and a re-run is an arrival worth
recording (as `duplicate`).
"""

import json
import shutil

import dagster as dg

from dagster_project.definitions import defs
from dagster_project.defs.automation import BUILD_JOB
from dagster_project.lib.archive import read_ingest_log
from dagster_project.lib.ingest import land_release
from dagster_project.lib.sources import SourceConfig, list_releases
from dagster_project.paths import DataPaths
from tests.conftest import land_files, run_pipeline

AUDIT_TABLES = {"fct_ingest_log"}


def _changed_marts(paths: DataPaths, before: dict) -> dict:
    after = json.loads(paths.published_manifest.read_text())["tables"]
    assert set(after) == set(before)
    return {t: (before[t], after[t]) for t in before if before[t] != after[t] and t not in AUDIT_TABLES}


def test_a_second_full_run_and_every_archived_file_again_leave_every_mart_identical(
        built_warehouse, tmp_path, monkeypatch):
    paths = DataPaths(tmp_path / "data")
    shutil.copytree(built_warehouse[0].root, paths.root)
    monkeypatch.setenv("SPBE_DATA_DIR", str(paths.root))
    before = json.loads(paths.published_manifest.read_text())["tables"]
    lake_before = sorted(p.name for p in paths.lake.rglob("*.parquet"))
    log_before = read_ingest_log(paths.ingest_log)

    # 1. The whole pipeline again, from the same sources.
    with dg.DagsterInstance.ephemeral() as instance:
        ingest, build = run_pipeline(instance)
    assert all(r.success for r in ingest) and build.success
    assert _changed_marts(paths, before) == {}
    assert sorted(p.name for p in paths.lake.rglob("*.parquet")) == lake_before  # nothing landed twice
    new_lines = read_ingest_log(paths.ingest_log)[len(log_before):]
    assert {line["status"] for line in new_lines} == {"duplicate"} and len(new_lines) == 2 + 11

    # 2. Every file in the archive landed again: releases through a folder source, submissions via the inbox.
    archived = {line["sha256"]: line for line in log_before if line["status"] == "loaded"}
    releases = tmp_path / "archived_releases"
    releases.mkdir()
    entries = [{"year": line["year"], "url": f"{sha}.csv", "format": "csv", "sha256": sha}
               for sha, line in archived.items() if line["dataset"] == "official_results"]
    for entry in entries:
        shutil.copyfile(paths.archive / entry["url"], releases / entry["url"])
    (releases / "manifest.json").write_text(json.dumps({"releases": entries}))
    cfg = SourceConfig(kind="local", location=str(releases))
    statuses = [land_release(cfg, entry, paths).status for entry in list_releases(cfg)]
    submissions = [paths.archive / f"{sha}.json" for sha, line in archived.items()
                   if line["dataset"] != "official_results"]
    log_mark = len(read_ingest_log(paths.ingest_log))
    with dg.DagsterInstance.ephemeral() as instance:
        assert land_files(instance, submissions).success
        assert defs().resolve_job_def(BUILD_JOB).execute_in_process(instance=instance).success
    statuses += [line["status"] for line in read_ingest_log(paths.ingest_log)[log_mark:]]
    assert len(entries) == 2 and len(submissions) == 11
    assert statuses == ["duplicate"] * (2 + 11)
    assert sorted(p.name for p in paths.lake.rglob("*.parquet")) == lake_before
    assert _changed_marts(paths, before) == {}
