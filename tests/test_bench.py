"""The bench harness on a tiny tier, so that it cannot rot. No timing is asserted here: the figures live in
docs/performance.md. What is asserted is that each stage ran and that the plain DuckDB script, the lower
bound the pipeline is compared with, computes the same index as the dbt marts."""

import duckdb
import pytest

from dagster_project.bench import Tier, format_summary, raw_index, run_once, summarise, tier_files

SMOKE = Tier("smoke", 3, (2023, 2024), stages=("self_assessment", "final"))


def test_tier_files_relabel_years_and_keep_one_file_per_institution_year_stage():
    files = tier_files(Tier("years", 2, (2021, 2022, 2024), stages=("final",)))
    assert len(files) == 2 * 3 and len({name for name, _ in files}) == 6
    assert sorted({name.split("_")[1] for name, _ in files}) == ["2021", "2022", "2024"]
    assert all(b'"year": 2021' in content for name, content in files if "_2021_" in name)


def test_the_harness_runs_every_stage_and_the_raw_script_agrees_with_the_marts(tmp_path, monkeypatch):
    monkeypatch.setenv("SPBE_DATA_DIR", str(tmp_path / "data"))
    files = tier_files(SMOKE)
    result = run_once(files, tmp_path)

    assert result["files"] == 3 * 2 * 2 and result["rows"] == result["files"] * 47
    for key in ("ingest_s", "dbt_build_s", "publish_s", "end_to_end_s", "incremental_one_file_s", "raw_duckdb_s"):
        assert result[key] > 0, key
    assert result["raw_duckdb_rows"] == result["files"]
    with duckdb.connect(str(tmp_path / "data" / "warehouse" / "spbe.duckdb"), read_only=True) as con:
        marts = con.execute("select institution_id, year, stage, index_value from fct_index "
                            "where source = 'computed' order by all").fetchall()
    raw = sorted((r[0], r[1], r[2], r[3]) for r in raw_index(tmp_path / "data" / "lake"))
    assert [(i, y, s) for i, y, s, _ in marts] == [(i, y, s) for i, y, s, _ in raw]
    assert [v for *_, v in marts] == pytest.approx([v for *_, v in raw], abs=1e-9)
    assert "ingest_s" in format_summary({"tier": "smoke", "repeat": 1, "definitions_load_s": 1.0,
                                         "runs": [result], "summary": summarise([result])})
