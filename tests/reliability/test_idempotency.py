"""Promise: running the whole pipeline again on the same inputs changes no mart row, and neither does
landing every archived file again.

A second run with nothing new lands nothing and builds nothing: the published file is not even replaced.
Every archived file landed again is logged `duplicate` and changes no data, so no build follows either. The
39 files of the bad-input corpus that are refused land next (tests/fixtures/bad_inputs/), and a full rebuild
that reads all those lines reproduces every data mart. Only the arrival marts change: fct_ingest_log, the
audit trail (a re-sent or refused file is an arrival worth recording), and fct_window_completeness, which
reports a refused file as `quarantined` for the institution it names; no other status appears there anew.
"""

import json
import shutil

import dagster as dg

from dagster_project.defs.update import PUBLISHED_KEY
from dagster_project.lib.archive import file_sha256
from dagster_project.lib.ingest import land_release
from dagster_project.lib.ingest_log import read_lines
from dagster_project.lib.sources import SourceConfig, list_releases
from dagster_project.lib.warehouse import plan_build
from dagster_project.paths import DataPaths
from tests.conftest import land_files, run_pipeline, run_update
from tests.events import published_rows
from tests.fixtures.make_bad_inputs import cases as bad_input_cases

ARRIVAL_MARTS = {"fct_ingest_log", "fct_window_completeness"}
WINDOW = "select year, stage, institution_id, status from fct_window_completeness"


def _changed_marts(paths: DataPaths, before: dict) -> dict:
    after = json.loads(paths.published_manifest.read_text())["tables"]
    assert set(after) == set(before)
    return {t: (before[t], after[t]) for t in before if before[t] != after[t] and t not in ARRIVAL_MARTS}


def _published(result) -> bool:
    return any(e.asset_key == PUBLISHED_KEY for e in result.get_asset_materialization_events())


def test_a_second_full_run_every_archived_file_again_and_refused_files_move_no_data_mart(
        built_warehouse, tmp_path, monkeypatch):
    paths = DataPaths(tmp_path / "data")
    shutil.copytree(built_warehouse[0].root, paths.root)
    monkeypatch.setenv("SPBE_DATA_DIR", str(paths.root))
    before = json.loads(paths.published_manifest.read_text())["tables"]
    manifest_before = paths.published_manifest.read_bytes()
    published_before = file_sha256(paths.published_db)
    lake_before = sorted(p.name for p in paths.lake.rglob("*.parquet"))
    log_before = read_lines(paths.ingest_log)

    # 1. The whole pipeline again, from the same sources: nothing is new, so nothing lands, nothing is
    # built and nothing is published (the published file and its manifest stay byte-identical).
    plan = plan_build(paths)
    assert plan.mode == "none", plan.reason  # (the code or reference tables changed since the fixture's build?)
    with dg.DagsterInstance.ephemeral() as instance:
        again = run_pipeline(instance)
    assert again.success and not _published(again)
    assert paths.published_manifest.read_bytes() == manifest_before
    assert file_sha256(paths.published_db) == published_before
    assert sorted(p.name for p in paths.lake.rglob("*.parquet")) == lake_before  # nothing landed twice
    assert read_lines(paths.ingest_log) == log_before

    # 2. Every file in the archive landed again: releases through a folder source, submissions via the inbox.
    archived = {line["sha256"]: line for line in log_before if line["status"] == "loaded"}
    releases = tmp_path / "archived_releases"
    releases.mkdir()
    tiers = {"official_results": "official", "secondary_results": "secondary"}
    entries = [{"year": line["year"], "url": f"{sha}.csv", "format": "csv", "sha256": sha,
                "tier": tiers[line["dataset"]]} for sha, line in archived.items() if line["dataset"] in tiers]
    for entry in entries:
        shutil.copyfile(paths.archive / entry["url"], releases / entry["url"])
    (releases / "manifest.json").write_text(json.dumps({"releases": entries}))
    cfg = SourceConfig(kind="local", location=str(releases))
    log_mark = len(log_before)
    statuses = [land_release(cfg, entry, paths).status for entry in list_releases(cfg)]
    submissions = [paths.archive / f"{sha}.json" for sha, line in archived.items() if line["dataset"] not in tiers]
    window_before = set(published_rows(paths, WINDOW))
    with dg.DagsterInstance.ephemeral() as instance:
        landed = land_files(instance, submissions, build=True)
        assert landed.success and not _published(landed)  # duplicates change no data: no build follows
        assert file_sha256(paths.published_db) == published_before
        duplicates = len(read_lines(paths.ingest_log)) - log_mark

        # 3. The refused files of the bad-input corpus (landed only), then a full rebuild that reads every line
        # of the log, the duplicates and the refused files included.
        refused = tmp_path / "refused"
        refused.mkdir()
        for name, (content, status, _) in bad_input_cases().items():
            if status == "quarantined":
                (refused / name).write_bytes(content)
        assert land_files(instance, sorted(refused.iterdir())).success
        rebuilt = run_update(instance, full_build=True)
    assert rebuilt.success and _published(rebuilt)
    new_lines = read_lines(paths.ingest_log)[log_mark:]
    statuses += [line["status"] for line in new_lines[len(statuses):duplicates]]
    assert len(entries) == 2 + 3 and len(submissions) == 11  # official and secondary releases
    assert statuses == ["duplicate"] * (2 + 3 + 11)
    refused_lines = new_lines[duplicates:]
    assert len(refused_lines) >= 39 and {line["status"] for line in refused_lines} == {"quarantined"}
    assert not any(line["changes_data"] for line in new_lines[:duplicates])
    assert sorted(p.name for p in paths.lake.rglob("*.parquet")) == lake_before
    published = json.loads(paths.published_manifest.read_text())
    assert published["run_id"] == rebuilt.run_id
    assert _changed_marts(paths, before) == {}
    assert published["tables"]["fct_ingest_log"]["rows"] == before["fct_ingest_log"]["rows"] + len(new_lines)
    assert {status for *_, status in set(published_rows(paths, WINDOW)) - window_before} <= {"quarantined"}
