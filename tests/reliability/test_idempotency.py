"""Promise: running the whole pipeline again on the same inputs changes no mart row.

The one table that does change is fct_ingest_log: it is the audit trail, and a re-run is an arrival worth
recording (as `duplicate`).
"""

import json
import shutil

import dagster as dg

from dagster_project.lib.archive import read_ingest_log
from dagster_project.paths import DataPaths
from tests.conftest import run_pipeline

AUDIT_TABLES = {"fct_ingest_log"}


def test_a_second_full_run_leaves_every_mart_identical(built_warehouse, tmp_path, monkeypatch):
    paths = DataPaths(tmp_path / "data")
    shutil.copytree(built_warehouse[0].root, paths.root)
    monkeypatch.setenv("SPBE_DATA_DIR", str(paths.root))
    before = json.loads(paths.published_manifest.read_text())["tables"]
    lake_before = sorted(p.name for p in paths.lake.rglob("*.parquet"))
    log_before = len(read_ingest_log(paths.ingest_log))

    with dg.DagsterInstance.ephemeral() as instance:
        ingest, build = run_pipeline(instance)
    assert all(r.success for r in ingest) and build.success

    after = json.loads(paths.published_manifest.read_text())["tables"]
    assert set(after) == set(before)
    changed = {t for t in before if before[t] != after[t]} - AUDIT_TABLES
    assert changed == set(), {t: (before[t], after[t]) for t in changed}
    assert sorted(p.name for p in paths.lake.rglob("*.parquet")) == lake_before  # nothing landed twice
    new_lines = read_ingest_log(paths.ingest_log)[log_before:]
    assert {line["status"] for line in new_lines} == {"duplicate"} and len(new_lines) == 2 + 11
