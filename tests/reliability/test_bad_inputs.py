"""The bad-input corpus (tests/fixtures/make_bad_inputs.py): every file lands in one batch through the inbox
(update_warehouse with the inbox files, as the inbox sensor runs it), each gets its expected outcome and names
its rule, nothing crashes, and the good file beside them lands. That the refused ones move no data mart once
rebuilt is shown by the full rebuild of test_idempotency.py, which reads them with the re-sent files."""

import json
import sys
from pathlib import Path

import dagster as dg
import duckdb

from dagster_project.lib.ingest import report_file
from dagster_project.lib.ingest_log import read_lines
from dagster_project.lib.samples import generate
from dagster_project.lib.submissions import file_type_of
from tests.conftest import land_files

FIXTURES = Path(__file__).parent.parent / "fixtures"
sys.path.insert(0, str(FIXTURES))
from make_bad_inputs import OUT, cases  # noqa: E402


def test_the_committed_corpus_is_what_the_script_makes():
    expected = json.loads((OUT / "expected.json").read_text())
    generated = cases()
    assert set(expected) == set(generated) and len(expected) >= 40
    for name, (content, status, rule) in generated.items():
        assert expected[name] == {"status": status, "rule": rule}, name
        if name.endswith(".xlsx") or name == "oversize.csv":  # xlsx carry a timestamp; oversize is not in git
            continue
        assert (OUT / name).read_bytes() == content, name


def test_every_bad_input_gets_its_outcome_and_the_good_file_lands(data_dir, tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name, (content, _, _) in cases().items():
        (folder / name).write_bytes(content)
    control = generate(["32.11"], years=(2024,), stages=("final",))[0]
    (folder / "control_good.json").write_bytes(control.content)
    files = sorted(folder.iterdir())

    with dg.DagsterInstance.ephemeral() as instance:
        result = land_files(instance, files)
    assert result.success  # quarantines are outcomes, not crashes

    lines = {line["original_name"]: line for line in read_lines(data_dir.ingest_log)}
    assert set(lines) == {f.name for f in files}
    assert lines["control_good.json"]["status"] == "loaded"
    for name, (_, status, rule) in cases().items():
        line = lines[name]
        assert line["status"] == status, (name, line["reason"])
        kind = file_type_of(name) or "bin"
        report = json.loads(report_file(data_dir, line["sha256"], kind).read_text())
        named = {f["expectation"] for f in report["failed"]} | {f["column"] for f in report["failed"]}
        if rule:
            assert rule in named, (name, report["reason"])
        if status == "quarantined":
            assert (data_dir.quarantine / f"{line['sha256']}.report.json").exists(), name
    with duckdb.connect() as con:
        (landed,) = con.execute("select count(distinct source_sha256) from read_parquet(?)",
                                [str(data_dir.lake / "submissions/*/*.parquet")]).fetchone()
    assert landed == 1 + sum(s == "loaded" for _, s, _ in cases().values())
    assert [p for p in data_dir.inbox.rglob("*") if p.is_file()] == []
