"""A data directory that moves (copied, or moved with mv), and build databases that read what they should
not: the views read the data directory through relative paths, and anything else is rebuilt (a view that reads
a file by absolute path: tests/test_event_path.py, with the full build it causes)."""

import os
import shutil
from pathlib import Path

import dagster as dg

from dagster_project import cli
from dagster_project.lib.warehouse import plan_build, read_manifest
from dagster_project.paths import BUNDLED_DATA_DIR, DataPaths
from tests.events import published_rows, run_requested, submission, tick

# ---- a data directory that moves (copied, or moved with mv) ----------------------------------------------------

def test_a_copied_then_moved_data_directory_publishes_what_lands_in_its_own_inbox(built_warehouse, tmp_path,
                                                                                  monkeypatch, capsys):
    """Issue "a data directory that can move": the views of the build database read the data directory
    through a relative path, so a copied or moved directory reads its own files. The copy gets a file (the
    bundled CSV template, filled in) through the sensor's own run request, as the daemon runs it: one run
    lands it, rebuilds what it affects and publishes; the same directory, then moved with `mv`, gets one
    through `spbe ingest`."""
    copied = DataPaths(tmp_path / "copied")
    shutil.copytree(built_warehouse[0].root, copied.root, symlinks=True)
    monkeypatch.setenv("SPBE_DATA_DIR", str(copied.root))
    template = (BUNDLED_DATA_DIR / "templates" / "spbe_submission_template.csv").read_text(encoding="utf-8")
    filled = template.replace(",,self_assessment,", "73.17,2024,final,").replace(",,,,\n", ",3,,,\n")
    (copied.inbox / "luwu_final_2024.csv").write_text(filled, encoding="utf-8")
    with dg.DagsterInstance.ephemeral() as instance:
        (request,) = tick(instance).run_requests
        result = run_requested(instance, request)
        assert result.success
        built = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {"submission_files", "fct_ingest_log", "fct_index", "published_warehouse", "scorecards"} <= built
    assert "fct_rankings" not in built  # official results did not change: their marts were not rebuilt
    assert published_rows(copied, "select status, is_current from fct_ingest_log where original_name = "
                                  "'luwu_final_2024.csv'") == [("loaded", True)]
    assert published_rows(copied, "select source, index_value, predikat, difference_vs_official from fct_index "
                                  "where institution_id = '73.17' and year = 2024 order by source") == [
        ("computed", 3.0, "Baik", 0.4), ("official", 2.6, "Cukup", None)]

    moved = DataPaths(tmp_path / "elsewhere" / "data")
    moved.root.parent.mkdir()
    shutil.move(copied.root, moved.root)
    monkeypatch.setenv("SPBE_DATA_DIR", str(moved.root))
    source = tmp_path / "luwu_5.json"
    source.write_bytes(submission("73.17", level=5))
    monkeypatch.setenv("PATH", os.environ["PATH"])  # restored after: the command puts the venv first
    assert cli.main(["ingest", str(source)]) == 0  # `spbe ingest`, in this process
    assert "luwu_5.json: loaded" in capsys.readouterr().out
    assert published_rows(moved, "select original_name, is_current from fct_ingest_log where original_name like "
                                 "'luwu_%' order by seq") == [("luwu_final_2024.csv", False), ("luwu_5.json", True)]
    assert published_rows(moved, "select index_value from fct_index where source = 'computed' and "
                                 "institution_id = '73.17' and stage = 'final'") == [(5.0,)]
    assert read_manifest(moved.published_manifest)["data_dir"] == str(moved.root)
    assert cli.main(["doctor"]) == 0
    assert "all agree" in capsys.readouterr().out


def test_a_build_database_left_by_other_code_is_rebuilt_whole(copy_of_built):
    """A full build that failed half way under other code (then changed back) left models of that code: the
    next build is full, whatever the published manifest says."""
    from dagster_project.lib.warehouse import code_fingerprint, mark_build

    mark_build(copy_of_built, code_fingerprint())
    assert plan_build(copy_of_built).mode == "none"
    mark_build(copy_of_built, "the fingerprint of other code")
    assert plan_build(copy_of_built).mode == "full"


def test_a_build_database_of_a_newer_duckdb_is_set_aside_and_the_build_is_full(copy_of_built):
    """Data directories built while the project used DuckDB 2.0: DuckDB 1.5 cannot open their build database.
    The plan says why the build is full, and the file is moved aside (kept) so that dbt builds a new one."""
    import gzip

    from dagster_project.lib.warehouse import set_aside_newer_format

    paths = copy_of_built
    newer = gzip.decompress((Path(__file__).parent / "fixtures" / "written_by_duckdb_2_0_1.duckdb.gz").read_bytes())
    paths.build_db.write_bytes(newer)  # a real file of DuckDB 2.0.1 (one table), made with `duckdb.connect`
    plan = plan_build(paths)
    assert plan.mode == "full" and "written by a newer DuckDB" in plan.reason and "version number" in plan.reason
    aside = set_aside_newer_format(paths)
    assert aside is not None and aside.read_bytes() == newer and not paths.build_db.exists()
    assert plan_build(paths).reason == "the build database is missing"
    assert set_aside_newer_format(paths) is None  # nothing more to move
