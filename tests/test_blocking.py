"""Failures stop at their gate: nothing bad reaches the lake or the published file, nothing is lost."""

import hashlib
import json
import re

import dagster as dg
import duckdb
import pytest

from dagster_project import cli
from dagster_project.defs.update import QUARANTINED_TAG, RELEASE_SUITE
from dagster_project.lib.ingest_log import IngestLog, read_lines
from dagster_project.lib.publish import publish_marts
from dagster_project.lib.warehouse import read_manifest
from dagster_project.paths import BUNDLED_RELEASES_DIR
from tests.conftest import run_update


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def release_folder_with(tmp_path, year: int, edit) -> tuple:
    folder = tmp_path / "releases"
    folder.mkdir(parents=True)
    entries = []
    for y in (2023, 2024):
        content = (BUNDLED_RELEASES_DIR / f"spbe_results_{y}.csv").read_text(encoding="utf-8")
        if y == year:
            content = edit(content)
        (folder / f"results_{y}.csv").write_text(content, encoding="utf-8")
        entries.append({"year": y, "url": f"results_{y}.csv", "format": "csv",
                        "sha256": hashlib.sha256(content.encode()).hexdigest()})
    (folder / "manifest.json").write_text(json.dumps({"releases": entries}))
    return folder, entries


def publish_again(paths, run_id: str, tables: list[str]):
    """Publish ``tables`` of the build database as the last build did: at the same log position and code."""
    published = read_manifest(paths.published_manifest)
    return publish_marts(paths, run_id, tables, published["log_position"], published["build_fingerprint"])


def test_a_refused_release_and_an_earlier_release_landed_again_move_no_data_mart(
        copy_of_built, tmp_path, monkeypatch, capsys):
    """A refused release never reaches the lake or a data mart: the earlier release of its year stays current
    and every mart built from official results is unchanged. The refusal itself is published (by design, a
    quarantined release no longer blocks the build): fct_ingest_log shows the line and its plain reason.
    In the same build: a corrected 2024 release landed, then the bundled one landed again (a duplicate), which
    makes the bundled one current again: the correction shows nowhere, so again no data mart moves."""
    from dagster_project.lib.ingest import land_release
    from dagster_project.lib.sources import SourceConfig, list_releases

    paths = copy_of_built
    published_before = json.loads(paths.published_manifest.read_text())
    original = (BUNDLED_RELEASES_DIR / "spbe_results_2024.csv").read_text(encoding="utf-8")
    banyuwangi = "Pemerintah Kab. Banyuwangi,5.0,4.6,4.18,5.0,4.77,Memuaskan,Pemerintah Daerah di Jawa Timur,12,"
    assert original.count(banyuwangi + ",") == 1
    corrected_folder, _ = release_folder_with(tmp_path / "corrected", 2024,
                                              lambda t: t.replace(banyuwangi + ",", banyuwangi + "koreksi,"))
    corrected_cfg = SourceConfig(kind="local", location=str(corrected_folder))
    bundled_cfg = SourceConfig(kind="local", location=str(BUNDLED_RELEASES_DIR))
    corrected = land_release(corrected_cfg, list_releases(corrected_cfg)[1], paths)
    back = land_release(bundled_cfg, list_releases(bundled_cfg)[1], paths)
    assert (corrected.status, back.status) == ("loaded", "duplicate")
    lake_before = sorted(paths.lake.rglob("*.parquet"))
    folder, entries = release_folder_with(
        tmp_path / "refused", 2024, lambda text: text.replace("Kementerian Pertanian", "Kementerian Urusan Fiktif", 1))
    monkeypatch.setenv("SPBE_RELEASE_SOURCE", str(folder))

    assert cli.main(["build"]) == 1

    err = capsys.readouterr().err
    assert "release(s) 2024 were not accepted" in err and f"official_release:{RELEASE_SUITE}" in err
    assert "Kementerian Urusan Fiktif: institution_id empty" in err  # the check's plain reason, printed
    assert sorted(paths.lake.rglob("*.parquet")) == lake_before
    bad_sha = entries[1]["sha256"]
    assert (paths.quarantine / f"{bad_sha}.csv").read_bytes() == (folder / "results_2024.csv").read_bytes()
    report = json.loads((paths.quarantine / f"{bad_sha}.report.json").read_text())
    (unknown,) = [f for f in report["failed"] if f["column"] == "institution_id"]
    assert unknown["sample_rows"][0]["institution_name"] == "Kementerian Urusan Fiktif"
    assert unknown["description"].startswith("institution known to the registry")
    log = read_lines(paths.ingest_log)
    assert log[-1]["status"] == "quarantined" and log[-1]["sha256"] == bad_sha
    with dg.DagsterInstance.get() as instance:  # the CLI's run, on the instance of DAGSTER_HOME
        assert instance.get_run_by_id(log[-1]["run_id"]).tags[QUARANTINED_TAG] == "1"

    # Published again for the refusal and the two landings, but no data mart moved: only the audit trail.
    published_after = json.loads(paths.published_manifest.read_text())
    assert published_after["log_position"] == log[-1]["seq"]
    before, after = published_before["tables"], published_after["tables"]
    assert set(after) == set(before)
    assert {t for t in before if before[t] != after[t]} == {"fct_ingest_log"}
    with duckdb.connect(str(paths.published_db), read_only=True) as con:
        ((status, reason, is_current),) = con.execute(
            "select status, reason, is_current from fct_ingest_log where sha256 = ?", [bad_sha]).fetchall()
        current_2024 = con.execute("select sha256 from fct_ingest_log where dataset = 'official_results' "
                                   "and year = 2024 and is_current").fetchall()
        note = con.execute("select source_note from fct_index where institution_id = '35.10' and year = 2024 "
                           "and source = 'official'").fetchall()
        latest = dict(con.execute("select sha256, is_current from fct_ingest_log where year = 2024 "
                                  "and dataset = 'official_results' "
                                  "and logged_at = (select max(logged_at) from fct_ingest_log l "
                                  "where l.sha256 = fct_ingest_log.sha256)").fetchall())
    assert (status, is_current) == ("quarantined", False)
    assert reason.startswith("results_2024.csv: row 16, Kementerian Urusan Fiktif: institution_id empty; "
                             "institution known to the registry")
    bundled_sha = digest(BUNDLED_RELEASES_DIR / "spbe_results_2024.csv")
    assert set(current_2024) == {(bundled_sha,)} and back.sha256 == bundled_sha  # the bundled 2024 is current
    assert note == [(None,)]  # Banyuwangi's correction shows nowhere
    assert latest == {corrected.sha256: False, back.sha256: True, bad_sha: False}


def test_a_failed_release_check_shows_the_rule_and_rows_in_dagster(copy_of_built, tmp_path, monkeypatch):
    folder, _ = release_folder_with(
        tmp_path, 2024, lambda text: text.replace("Kementerian Pertanian", "Kementerian Urusan Fiktif", 1))
    monkeypatch.setenv("SPBE_RELEASE_SOURCE", str(folder))
    with dg.DagsterInstance.ephemeral() as instance:
        # What the release sensor asks for a new 2024 release (landing only: the check is the point here).
        result = run_update(instance, raise_on_error=False, release_years=[2024], build=False)
        (check,) = [e for e in result.get_asset_check_evaluations() if e.check_name == RELEASE_SUITE]
        assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
        assert "institution_id" in check.description
        (rule,) = [r for r in check.metadata["failing_rows"].value if r["column"] == "institution_id"]
        assert rule["unexpected_count"] == 1
        assert rule["sample_rows"][0]["institution_name"] == "Kementerian Urusan Fiktif"
        assert "institution_id" in check.metadata["summary"].value
        # The same evaluation is stored for the UI's asset check page.
        (stored,) = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(dg.AssetKey("official_release"), RELEASE_SUITE), limit=1)
        assert stored.status.value == "FAILED"
        assert instance.get_run_by_id(result.run_id).tags[QUARANTINED_TAG] == "1"


def test_failing_dbt_test_blocks_publish(copy_of_built):
    paths = copy_of_built
    before = digest(paths.published_db)
    # A newer 2024 lake file with every row twice, landed as if validation had been bypassed.
    (current,) = paths.lake.glob("official_results/year=2024/*.parquet")
    bad_sha = "f" * 64
    con = duckdb.connect()
    con.read_parquet(str(current)).union(con.read_parquet(str(current))).project(
        f"* replace ('{bad_sha}' as source_sha256, now() as received_at)").write_parquet(
        str(current.with_name(f"{bad_sha}.parquet")))
    con.close()
    IngestLog(paths.ingest_log).append([({"sha256": bad_sha, "dataset": "official_results", "year": 2024,
                                          "status": "loaded", "rows": 1230, "reason": "bypassed validation",
                                          "original_name": "x.csv", "source": "local",
                                          "received_at": "2026-01-01"}, True)])

    with dg.DagsterInstance.ephemeral() as instance:
        result = run_update(instance, raise_on_error=False)  # no event: build what the log holds, then publish
    assert not result.success
    assert digest(paths.published_db) == before
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "published_warehouse" not in materialized and "fct_index" not in materialized
    # The failed step names the dbt node and dbt's own message.
    step_failure = next(e for e in result.all_events if e.is_step_failure).event_specific_data.error
    assert "dbt build failed" in step_failure.message
    (rule,) = re.findall(r"test (unique_combination_int_official_results_current\w*): fail", step_failure.message)
    # The UI shows which rule failed on which rows: the duplicated institutions, twice each.
    failed = {e.check_name: e for e in result.get_asset_check_evaluations() if not e.passed}
    assert rule in failed, f"no failed check evaluation for {rule} in the run (failed checks: {sorted(failed)})"
    rows = failed[rule].metadata["failing_rows"].value
    assert len(rows) == 10 and {r["n_rows"] for r in rows} == {"2"} and all(r["institution_id"] for r in rows)
    assert failed[rule].metadata["failures"].value == 1230 // 2


def test_publish_swaps_atomically_under_an_open_reader(copy_of_built):
    paths = copy_of_built
    reader = duckdb.connect(str(paths.published_db), read_only=True)
    ((old_run,),) = reader.execute("select value from publish_manifest where key = 'run_id'").fetchall()
    with duckdb.connect(str(paths.build_db)) as build:  # the next build has fewer rows
        build.execute("delete from main.fct_index where year = 2023")
    publish_again(paths, "second-run", ["fct_index"])
    # The old reader still answers from the file it opened; a new reader sees the new version whole.
    assert reader.execute("select count(*) from fct_index where source = 'official'").fetchall() == [(1236,)]
    assert reader.execute("select value from publish_manifest where key = 'run_id'").fetchall() == [(old_run,)]
    reader.close()
    with duckdb.connect(str(paths.published_db), read_only=True) as fresh:
        run_id = fresh.execute("select value from publish_manifest where key = 'run_id'").fetchall()
        assert fresh.execute("select count(*) from fct_index where source = 'official'").fetchall() == [(615,)]
    assert run_id == [('"second-run"',)]
    assert not list(paths.warehouse.glob(".*partial*"))


def test_only_the_named_marts_are_published(copy_of_built):
    paths = copy_of_built
    with duckdb.connect(str(paths.build_db)) as build:  # a mart since removed from the dbt project
        build.execute("create table main.fct_retired as select 1 as x")
    publish_again(paths, "run", ["dim_institution"])
    with duckdb.connect(str(paths.published_db), read_only=True) as con:
        tables = {r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()}
    assert tables == {"dim_institution", "publish_manifest"}


@pytest.mark.parametrize("build_db", ["missing.duckdb", "build.duckdb"])
def test_failed_publish_leaves_the_published_file_byte_identical(copy_of_built, build_db):
    paths = copy_of_built
    before = digest(paths.published_db)
    hidden_before = sorted(p.name for p in paths.warehouse.iterdir() if p.name.startswith("."))
    # Either the build file is missing, or the copy fails after two marts were already written.
    if build_db == "missing.duckdb":
        paths.build_db.unlink()
    with pytest.raises(duckdb.Error):
        publish_again(paths, "doomed", ["dim_institution", "fct_index", "no_such_mart"])
    assert digest(paths.published_db) == before
    # No partial file left: only the publish lock (and the build lock) beside the published file.
    hidden = sorted(p.name for p in paths.warehouse.iterdir() if p.name.startswith("."))
    assert hidden == hidden_before and ".spbe.duckdb.lock" in hidden
    assert not [n for n in hidden if "partial" in n]
