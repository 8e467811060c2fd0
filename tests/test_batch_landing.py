"""Batch landing: one GX run for a whole batch must judge every file exactly as if it had come alone, keep
the lake free of double landings after a stop, and make nothing visible before it is durable."""

import json
import sys
from pathlib import Path

import duckdb
import pytest

from dagster_project.lib.archive import DurableBatch
from dagster_project.lib.ingest import SUBMISSIONS, Arrival, land, report_file
from dagster_project.lib.ingest_log import read_lines
from dagster_project.lib.samples import generate
from dagster_project.paths import DataPaths

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
from make_bad_inputs import cases  # noqa: E402


def land_submission(paths: DataPaths, path: Path, name: str):
    """One file landed alone: a batch of one."""
    return land(paths, SUBMISSIONS, [Arrival(path, name)]).results[0]


def _verdict(result) -> dict:
    rules = sorted((f["expectation"], f["column"] or "", f["unexpected_count"], json.dumps(f["sample_rows"]))
                   for f in result.report.get("failed", []))
    return {"status": result.status, "rows": result.rows, "year": result.year, "rules": rules,
            "institution_id": result.report.get("institution_id"), "stage": result.report.get("stage"),
            "is_late": result.report.get("is_late")}


def test_a_batch_judges_every_file_as_if_it_came_alone(tmp_path):
    folder = tmp_path / "arrivals"
    folder.mkdir()
    for name, (content, _, _) in cases().items():
        (folder / name).write_bytes(content)
    good = generate(["32.11", "73.17", "11"], years=(2024,), stages=("final", "interview"))
    for f in good:
        (folder / f.name).write_bytes(f.content)
    (folder / "same_bytes_again.json").write_bytes(good[0].content)  # a duplicate inside the batch
    names = sorted(p.name for p in folder.iterdir())

    together = land(DataPaths(tmp_path / "batch").ensure(), SUBMISSIONS, [Arrival(folder / n, n) for n in names])
    alone_paths = DataPaths(tmp_path / "alone").ensure()
    alone = {n: land_submission(alone_paths, folder / n, n) for n in names}

    assert together.failed == [] and [r.original_name for r in together.results] == names
    statuses = {r.status for r in together.results}
    assert statuses == {"loaded", "quarantined", "duplicate"}
    for r in together.results:
        assert _verdict(r) == _verdict(alone[r.original_name]), r.original_name
        assert r.reason == alone[r.original_name].reason, r.original_name


def test_a_file_landed_before_a_stop_is_not_landed_twice(data_dir, tmp_path):
    files = generate(["35.01", "35.02"], years=(2024,), stages=("final",))
    for f in files:
        (tmp_path / f.name).write_bytes(f.content)
    arrivals = [Arrival(tmp_path / f.name, f.name) for f in files]
    first = land(data_dir, SUBMISSIONS, arrivals)
    # A stop after the lake file was written and before the reports were: the next run sees no verdict.
    for r in first.results:
        report_file(data_dir, r.sha256, "json").unlink()
    again = land(data_dir, SUBMISSIONS, arrivals)

    assert [r.status for r in again.results] == ["loaded", "loaded"]
    with duckdb.connect() as con:
        rows = con.execute("select source_sha256, count(*) from read_parquet(?) group by all",
                           [str(data_dir.lake / "submissions/*/*.parquet")]).fetchall()
    assert sorted(n for _, n in rows) == [47, 47]  # each file's 47 rows once, not twice
    assert len(list(data_dir.lake.glob("submissions/*/*.parquet"))) == 1


def test_a_file_that_cannot_be_read_fails_alone(data_dir, tmp_path):
    good = generate(["35.01"], years=(2024,), stages=("final",))[0]
    (tmp_path / good.name).write_bytes(good.content)
    outcome = land(data_dir, SUBMISSIONS, [Arrival(tmp_path / "vanished.csv", "vanished.csv"),
                                          Arrival(tmp_path / good.name, good.name)])
    assert [a.original_name for a, _ in outcome.failed] == ["vanished.csv"]
    assert isinstance(outcome.failed[0][1], FileNotFoundError)
    assert [(r.original_name, r.status) for r in outcome.results] == [(good.name, "loaded")]


def test_a_durable_batch_shows_nothing_before_commit_and_nothing_after_an_error(tmp_path):
    (tmp_path / "source.csv").write_bytes(b"a,b\n1,2\n")
    with DurableBatch() as batch:
        batch.write(tmp_path / "out" / "one.json", b"{}")
        sha, kept = batch.archive(tmp_path / "archive", tmp_path / "source.csv", "csv")
        assert not (tmp_path / "out" / "one.json").exists() and not kept.exists()
    assert (tmp_path / "out" / "one.json").read_bytes() == b"{}" and kept.read_bytes() == b"a,b\n1,2\n"
    assert kept.name == f"{sha}.csv" and oct(kept.stat().st_mode & 0o777) == "0o644"

    with pytest.raises(RuntimeError), DurableBatch() as batch:
        batch.write(tmp_path / "out" / "two.json", b"{}")
        raise RuntimeError("the batch failed")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["one.json"]  # no partial file left


def test_work_unit_files_land_apart_and_a_bad_unit_code_is_refused(data_dir, tmp_path):
    (base,) = generate(["35.01"], years=(2024,), stages=("self_assessment",))
    doc = json.loads(base.content)
    for name, unit in (("unit.json", "DISKOMINFO"), ("bad_unit.json", "../etc"), ("own.json", "")):
        (tmp_path / name).write_text(json.dumps({**doc, "rows": [{**r, "work_unit": unit} for r in doc["rows"]]}))
    names = ("unit.json", "bad_unit.json", "own.json")
    outcome = land(data_dir, SUBMISSIONS, [Arrival(tmp_path / n, n) for n in names])

    unit, bad, own = outcome.results
    assert (unit.dataset, unit.status, unit.report["work_unit"]) == ("work_unit_submissions", "loaded", "DISKOMINFO")
    assert (bad.dataset, bad.status) == ("work_unit_submissions", "quarantined")
    assert ("expect_column_values_to_match_regex", "work_unit") in {
        (f["expectation"], f["column"]) for f in bad.report["failed"]}
    # The reason names the file, the rows, the value and the rule in plain words.
    assert bad.reason.startswith("bad_unit.json: row 1, indicator 1: work_unit ../etc; ")
    assert "a work unit (OPD) code is 1-40 letters" in bad.reason
    assert (own.dataset, own.status, own.report["work_unit"]) == ("submissions", "loaded", None)  # empty: not a unit
    assert len(list(data_dir.lake.glob("work_unit_submissions/year=2024/*.parquet"))) == 1
    assert len(list(data_dir.lake.glob("submissions/year=2024/*.parquet"))) == 1


def test_the_ingest_log_keeps_arrival_order_so_the_last_file_sent_is_current(data_dir, tmp_path):
    first, = generate(["35.01"], years=(2024,), stages=("final",))
    revised = json.loads(first.content)
    revised["rows"][0]["level"] = 1 + revised["rows"][0]["level"] % 5
    (tmp_path / "v1.json").write_bytes(first.content)
    (tmp_path / "v2.json").write_text(json.dumps(revised))
    land_submission(data_dir, tmp_path / "v1.json", "v1.json")
    # The old file again (decided from its stored verdict) and then the correction, in one batch.
    land(data_dir, SUBMISSIONS, [Arrival(tmp_path / "v1.json", "v1_again.json"),
                                Arrival(tmp_path / "v2.json", "v2.json")])
    lines = [(line["original_name"], line["status"]) for line in read_lines(data_dir.ingest_log)]
    assert lines == [("v1.json", "loaded"), ("v1_again.json", "duplicate"), ("v2.json", "loaded")]
