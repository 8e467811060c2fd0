"""The bench harness on a tiny tier, so that it cannot rot. No timing is asserted here: the figures live in
docs/performance.md. What is asserted is that each stage ran (through update_warehouse: a landing-only run,
a full build, then partial builds for the window and the corrected file) and that the plain DuckDB script,
the lower bound the pipeline is compared with, computes the same index as the dbt marts."""

import json

import duckdb
import pytest

from dagster_project.bench import Tier, format_summary, raw_index, run_once, summarise, tier_files, work_unit_files

SMOKE = Tier("smoke", 3, (2023, 2024), stages=("self_assessment", "final"))


def test_tier_files_relabel_years_and_keep_one_file_per_institution_year_stage():
    files = tier_files(Tier("years", 2, (2019, 2022, 2024), stages=("final",)))
    assert len(files) == 2 * 3 and len({name for name, _ in files}) == 6
    assert sorted({name.split("_")[1] for name, _ in files}) == ["2019", "2022", "2024"]
    assert all(b'"year": 2019' in content for name, content in files if "_2019_" in name)
    old_framework = [json.loads(content)["rows"] for name, content in files if "_2019_" in name]
    assert all(len(rows) == 35 and max(r["indicator"] for r in rows) == 35 for rows in old_framework)


def test_work_unit_files_spread_over_regions_with_their_own_levels():
    files = work_unit_files(1200)
    assert len({name for name, _ in files}) == 1200
    regions = {name.split("_")[0] for name, _ in files}
    assert len(regions) > 500 and all(r[:1].isdigit() for r in regions)  # regional governments only
    one = json.loads(files[0][1])
    assert {r["work_unit"] for r in one["rows"]} == {"OPD-001"} and len(one["rows"]) == 47


def test_the_harness_runs_every_stage_and_the_raw_script_agrees_with_the_marts(tmp_path, monkeypatch):
    monkeypatch.setenv("SPBE_DATA_DIR", str(tmp_path / "data"))
    files, window = tier_files(SMOKE), work_unit_files(6)
    result = run_once(files, tmp_path, window)

    assert result["files"] == 3 * 2 * 2 and result["rows"] == result["files"] * 47
    assert result["window_files"] == 6 and result["window_rows"] == 6 * 47
    for key in ("releases_s", "ingest_s", "reference_checks_s", "dbt_build_s", "publish_s", "end_to_end_s",
                "incremental_one_file_s", "incremental_dbt_build_s", "incremental_publish_s", "raw_duckdb_s",
                "window_ingest_s", "window_dbt_build_s", "window_end_to_end_s", "dbt_elapsed_s", "dbt_index_models_s",
                "incremental_dbt_index_models_s"):
        assert result[key] > 0, key
    # The history is built in full; the window and the corrected file only rebuild what they affect.
    assert (result["build_mode"], result["window_build_mode"], result["incremental_build_mode"]) == \
        ("full", "partial", "partial")
    assert result["raw_duckdb_rows"] == result["files"] + 6
    assert result["dbt_index_models_s"] < result["dbt_elapsed_s"] < result["dbt_build_s"]
    assert result["ingest_s"] + result["dbt_build_s"] + result["publish_s"] < result["end_to_end_s"]
    with duckdb.connect(str(tmp_path / "data" / "warehouse" / "spbe.duckdb"), read_only=True) as con:
        marts = con.execute("select institution_id, year, stage, index_value from fct_index "
                            "where source = 'computed' order by all").fetchall()
        units = con.execute("select institution_id, work_unit, index_value, rank_in_institution "
                            "from fct_work_unit_index order by all").fetchall()
    raw = raw_index(tmp_path / "data" / "lake")
    institutions = sorted((r[0], r[2], r[3], r[4]) for r in raw if r[1] is None)
    assert [(i, y, s) for i, y, s, _ in marts] == [(i, y, s) for i, y, s, _ in institutions]
    assert [v for *_, v in marts] == pytest.approx([v for *_, v in institutions], abs=1e-9)
    raw_units = sorted((r[0], r[1], r[4], r[-1]) for r in raw if r[1] is not None)
    assert [(i, u, k) for i, u, _, k in units] == [(i, u, k) for i, u, _, k in raw_units] and len(units) == 6
    assert [v for _, _, v, _ in units] == pytest.approx([v for _, _, v, _ in raw_units], abs=1e-9)
    assert "ingest_s" in format_summary({"tier": "smoke", "repeat": 1, "definitions_load_s": 1.0,
                                         "runs": [result], "summary": summarise([result])})
