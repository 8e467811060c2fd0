"""Landing official releases: archive, validate, lake or quarantine, and what a second landing does."""

import dataclasses
import json

import pytest

from dagster_project.lib import datasets, ingest
from dagster_project.lib.ingest import land_release, report_file
from dagster_project.lib.ingest_log import read_lines
from dagster_project.lib.registry import load_registry
from dagster_project.lib.sources import ReleaseEntry, SourceConfig
from dagster_project.paths import BUNDLED_RELEASES_DIR

REAL_2024 = (BUNDLED_RELEASES_DIR / "spbe_results_2024.csv").read_text(encoding="utf-8")


def release(tmp_path, text: str, year: int = 2024) -> tuple[SourceConfig, ReleaseEntry]:
    folder = tmp_path / "source"
    folder.mkdir(exist_ok=True)
    (folder / f"r{year}.csv").write_text(text, encoding="utf-8")
    return SourceConfig(kind="local", location=str(folder)), ReleaseEntry(year=year, url=f"r{year}.csv")


def test_a_valid_release_lands_once_and_then_is_a_duplicate(tmp_path, data_dir):
    cfg, entry = release(tmp_path, REAL_2024)
    first = land_release(cfg, entry, data_dir)
    assert (first.status, first.rows) == ("loaded", 615)
    assert len(list((data_dir.lake / "official_results" / "year=2024").glob("*.parquet"))) == 1
    assert (data_dir.archive / f"{first.sha256}.csv").read_text(encoding="utf-8") == REAL_2024
    second = land_release(cfg, entry, data_dir)
    assert second.status == "duplicate" and second.sha256 == first.sha256
    assert [e["status"] for e in read_lines(data_dir.ingest_log)] == ["loaded", "duplicate"]
    assert len(list(data_dir.lake.rglob("*.parquet"))) == 1


def test_an_unknown_institution_is_quarantined_with_its_row(tmp_path, data_dir):
    cfg, entry = release(tmp_path, REAL_2024.replace("Kementerian Pertanian", "Kementerian Fiktif", 1))
    result = land_release(cfg, entry, data_dir)
    assert result.status == "quarantined" and not result.accepted
    assert list(data_dir.lake.rglob("*.parquet")) == []
    # The reason says it as a person would: the file, the row, the value and the rule it broke.
    assert result.reason.startswith("r2024.csv: row 16, Kementerian Fiktif: institution_id empty; "
                                    "institution known to the registry")
    report = json.loads((data_dir.quarantine / f"{result.sha256}.report.json").read_text())
    (rule,) = [f for f in report["failed"] if f["severity"] == "critical"]
    assert rule["column"] == "institution_id" and rule["sample_rows"][0]["institution_name"] == "Kementerian Fiktif"


def test_a_quarantined_release_is_checked_again_once_the_rules_change(tmp_path, data_dir, monkeypatch):
    cfg, entry = release(tmp_path, REAL_2024.replace("Kementerian Pertanian", "Kementerian Fiktif", 1))
    assert land_release(cfg, entry, data_dir).status == "quarantined"
    assert land_release(cfg, entry, data_dir).status == "quarantined"  # same rules, same verdict
    # Someone adds the alias to institution_aliases.csv: the rules' fingerprint changes.
    registry = load_registry()
    fixed = type(registry)(registry.ids, registry.kemendagri_codes,
                           {**registry.alias_to_id, "kementerian fiktif": "kementerian-pertanian"})
    monkeypatch.setattr(ingest, "validation_fingerprint", lambda dataset=None: "rules after the fix")
    result = land_release(cfg, entry, data_dir, registry=fixed)
    assert result.status == "loaded"
    assert json.loads(report_file(data_dir, result.sha256).read_text())["passed"]  # the verdict now stored


@pytest.mark.parametrize("year_text", ["2024.5", "1e30", "dua ribu"])
def test_a_year_that_is_not_a_whole_number_is_quarantined_not_crashed(tmp_path, data_dir, year_text):
    lines = REAL_2024.splitlines(keepends=True)
    lines[5] = lines[5].replace("2024,", f"{year_text},", 1)
    cfg, entry = release(tmp_path, "".join(lines))
    result = land_release(cfg, entry, data_dir)
    assert result.status == "quarantined"
    failed = {f["column"] for f in result.report["failed"] if f["severity"] == "critical"}
    assert "unparseable_values" in failed


def test_an_unexpected_parsing_error_quarantines_with_the_error(tmp_path, data_dir, monkeypatch):
    def explode(*args, **kwargs):
        raise MemoryError("simulated")
    monkeypatch.setitem(datasets.TIER_DATASETS, "official", dataclasses.replace(datasets.RELEASES, normalize=explode))
    cfg, entry = release(tmp_path, REAL_2024)
    result = land_release(cfg, entry, data_dir)
    assert result.status == "quarantined"
    assert result.report["failed"][0]["expectation"] == "unexpected_parse_error"
    assert result.reason == "r2024.csv: MemoryError: simulated (rule unexpected_parse_error)"
    assert read_lines(data_dir.ingest_log)[-1]["status"] == "quarantined"


def test_a_release_with_a_header_and_no_rows_is_quarantined_for_its_row_count(tmp_path, data_dir):
    cfg, entry = release(tmp_path, REAL_2024.splitlines(keepends=True)[0])
    result = land_release(cfg, entry, data_dir)
    assert (result.status, result.rows) == ("quarantined", 0)
    assert [f["expectation"] for f in result.report["failed"]] == ["expect_table_row_count_to_be_between"]
    assert read_lines(data_dir.ingest_log)[-1]["status"] == "quarantined"


def test_unreadable_file_is_quarantined_with_the_rule(tmp_path, data_dir):
    cfg, entry = release(tmp_path, "tahun_evaluasi;nama_instansi\n2024;x\n")
    result = land_release(cfg, entry, data_dir)
    assert result.status == "quarantined" and result.report["failed"][0]["expectation"] == "required_columns"
    assert (data_dir.quarantine / f"{result.sha256}.csv").exists()
