"""Exports for analysts who pass tables on: marts or a query, filtered, to CSV, Parquet or XLSX, each with
what every column means and where the data came from (the published manifest).

Spreadsheets run what looks like a formula. A text cell that starts with =, +, -, @, a tab or a carriage
return comes from a submission as often as not (explanations are free text), so in CSV it is written with a
leading apostrophe and in XLSX as a text cell marked quote-prefixed: shown as it is, never evaluated. Only
text is touched: a number stays a number, -2.5 included.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import duckdb

from dagster_project.lib.archive import utc_now
from dagster_project.lib.publish import MANIFEST_TABLE
from dagster_project.lib.sql_text import identifier

FORMATS = ("csv", "parquet", "xlsx")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
XLSX_MAX_ROWS = 1_048_576 - 1  # Excel's sheet limit, less the header row
NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")  # a table's or query's name; becomes a file name, so nothing else
PROVENANCE_KEYS = ("run_id", "published_at", "code_version", "log_position", "storage_compatibility_version")
BATCH = 10_000
ABOUT = "about"  # the sheet, or about.csv, that says what each column means and where the data came from


class ExportError(ValueError):
    """What the analyst asked cannot be exported as asked; the message says why and what to do."""


def neutralise(value: Any) -> Any:
    """A text value a spreadsheet would run as a formula, made inert with a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def is_formula_like(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(FORMULA_STARTS)


@dataclass(frozen=True)
class Filters:
    years: tuple[int, ...] = ()
    provinces: tuple[str, ...] = ()  # a Kemendagri code ("32") or a name ("Jawa Barat")
    categories: tuple[str, ...] = ()
    institutions: tuple[str, ...] = ()
    where: str | None = None  # the analyst's own predicate on the table's columns (read-only connection)

    def described(self) -> str:
        parts = [f"{name} in {', '.join(map(str, values))}" for name, values in
                 (("year", self.years), ("province", self.provinces), ("category", self.categories),
                  ("institution", self.institutions)) if values]
        return "; ".join(parts + ([f"where {self.where}"] if self.where else [])) or "none"


@dataclass(frozen=True)
class Selection:
    """One table of the export: its name (file or sheet), its SQL and parameters, its column notes."""
    name: str
    sql: str
    params: list[Any]
    description: str = ""
    column_notes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Written:
    path: Path
    tables: dict[str, int]  # name -> rows
    bytes: int
    seconds: float


def published_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [t for (t,) in con.execute("select table_name from duckdb_tables() where schema_name = 'main' "
                                      "order by table_name").fetchall()]


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    rows = con.execute("select column_name, coalesce(comment, '') from duckdb_columns() "
                       "where schema_name = 'main' and table_name = ? order by column_index", [table]).fetchall()
    return dict(rows)


def _in(column: str, values: Sequence[Any]) -> str:
    return f"{column} in ({', '.join('?' for _ in values)})"


def _provinces(con: duckdb.DuckDBPyConnection, wanted: Sequence[str]) -> list[str]:
    """Province codes for codes or names ("Jawa Barat", "Provinsi Jawa Barat", any case)."""
    codes = []
    for w in wanted:
        key = w.strip().lower().removeprefix("provinsi ").strip()
        found = con.execute("select distinct province_code from dim_institution where province_code = ? "
                            "or lower(province_name) = ?", [key, key]).fetchall()
        if not found:
            raise ExportError(f"no province {w!r}: give a Kemendagri code such as 32 or a name such as Jawa Barat")
        codes += [c for (c,) in found]
    return codes


def table_selection(con: duckdb.DuckDBPyConnection, table: str, filters: Filters) -> Selection:
    """A mart, filtered; institution names are added beside institution_id, for people reading a sheet."""
    tables = published_tables(con)
    if table not in tables:
        raise ExportError(f"no table {table!r} in the published warehouse; there are: {', '.join(tables)}")
    columns = _columns(con, table)
    description = con.execute("select coalesce(comment, '') from duckdb_tables() where table_name = ?",
                              [table]).fetchall()[0][0]
    has_institution = "institution_id" in columns and table != "dim_institution"
    select = "t.*" + (", d.name as institution_name" if has_institution and "institution_name" not in columns
                      and "name" not in columns else "")
    joins = " left join main.dim_institution d on d.institution_id = t.institution_id" if has_institution else ""
    where, params = [], []

    def need(column: str, filter_name: str) -> None:
        if column not in columns:
            raise ExportError(f"{table} cannot be filtered by {filter_name}: it has no {column} column")

    if filters.years:
        need("year", "year")
        where.append(_in("t.year", filters.years))
        params += list(filters.years)
    if filters.institutions:
        need("institution_id", "institution")
        where.append(_in("t.institution_id", filters.institutions))
        params += list(filters.institutions)
    for values, column, resolve in ((filters.provinces, "province_code", _provinces),
                                    (filters.categories, "category", lambda _, v: list(v))):
        if not values:
            continue
        wanted = resolve(con, values)
        if column in columns:
            where.append(_in(f"t.{column}", wanted))
        else:
            need("institution_id", column.removesuffix("_code"))
            where.append(f"t.institution_id in (select institution_id from main.dim_institution "  # noqa: S608
                         f"where {_in(column, wanted)})")  # column: one of two names of ours; values bound
        params += wanted
    if filters.where:
        where.append(f"({filters.where})")
    sql = f"select {select} from main.{identifier(table)} t{joins}"  # noqa: S608 (names checked above)
    if where:
        sql += " where " + " and ".join(where)
    notes = dict(columns)
    if ", d.name as institution_name" in select:
        notes["institution_name"] = "The institution's name (dim_institution.name), added by the export."
    return Selection(table, sql, params, description, notes)


def query_selection(sql: str, name: str) -> Selection:
    if not NAME.fullmatch(name) or name == ABOUT:
        raise ExportError(f"--name {name!r}: lower-case letters, digits and _, starting with a letter; not {ABOUT!r}")
    return Selection(name, sql, [], f"The analyst's query: {sql.strip()}")


def provenance(con: duckdb.DuckDBPyConnection, filters: Filters) -> list[tuple[str, str]]:
    """Where the data came from: the published manifest's run, code version and time, and the export's own."""
    manifest = {k: json.loads(v) for k, v in con.execute(
        f"select key, value::varchar from main.{MANIFEST_TABLE}").fetchall()}  # noqa: S608
    (source,), = con.execute("select path from duckdb_databases() where database_name = current_database()").fetchall()
    rows = [("source", f"SPBE Monitor warehouse {Path(source).name}")]  # spbe.duckdb, or a snapshot (--as-of)
    rows += [(k, str(manifest[k])) for k in PROVENANCE_KEYS if k in manifest]
    rows += [("filters", filters.described()), ("exported_at", utc_now()),
             ("formulas", "text cells starting with = + - @ tab or CR are written as text, never as formulas")]
    return rows


def _batches(con: duckdb.DuckDBPyConnection, sel: Selection) -> tuple[list[str], list[str], Iterator[list[tuple]]]:
    try:
        cursor = con.execute(sel.sql, sel.params)
    except duckdb.Error as e:
        raise ExportError(f"{sel.name}: {e}") from e
    names = [d[0] for d in cursor.description]
    types = [str(d[1]) for d in cursor.description]

    def rows() -> Iterator[list[tuple]]:
        while batch := cursor.fetchmany(BATCH):
            yield batch
    return names, types, rows()


def _text(value: Any) -> Any:
    """A value for a CSV cell: dates in ISO form, lists and structs as JSON, text neutralised."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | dict):
        return json.dumps(value, default=str, ensure_ascii=False)
    return neutralise(value)


def _write_csv_rows(out: TextIO, names: Sequence[str], batches: Iterable[list[tuple]]) -> int:
    writer = csv.writer(out)  # RFC 4180 (CRLF): a CR or LF inside a value is quoted
    writer.writerow([neutralise(n) for n in names])  # a PIVOT makes column names of values
    n = 0
    for batch in batches:
        writer.writerows([_text(v) for v in row] for row in batch)
        n += len(batch)
    return n


def write_relation_csv(relation: duckdb.DuckDBPyRelation, out: TextIO) -> int:
    """`spbe query --format csv`: the query's rows as CSV, neutralised like an export."""
    # fetchmany runs the relation once and goes on where it stopped: the query is not run again
    return _write_csv_rows(out, relation.columns, iter(lambda: relation.fetchmany(BATCH), []))


def _dictionary(con: duckdb.DuckDBPyConnection, selections: Sequence[Selection],
                shapes: dict[str, tuple[list[str], list[str]]]) -> list[tuple[str, str, str, str]]:
    rows = []
    for sel in selections:
        names, types = shapes[sel.name]
        rows.append((sel.name, "", "", sel.description))
        rows += [(sel.name, n, t, sel.column_notes.get(n, "")) for n, t in zip(names, types, strict=True)]
    return rows


def export(con: duckdb.DuckDBPyConnection, selections: Sequence[Selection], fmt: str, out: Path,
           about: list[tuple[str, str]], tmp: Path | None = None) -> Written:
    """Write the selections: XLSX, one file (a sheet per table, then "about"); CSV or Parquet, a folder with a
    file per table and about.csv. Written aside (at ``tmp``, by default a new name beside ``out``) and then
    put in place, so ``out`` never holds half an export. An export never replaces anything: an ``out`` that
    exists is refused."""
    if fmt not in FORMATS:
        raise ExportError(f"format {fmt!r}: one of {', '.join(FORMATS)}")
    check_new(out)
    started = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp or partial_path(out)
    try:
        counts = (_export_xlsx if fmt == "xlsx" else _export_files)(con, selections, fmt, tmp, about)
        _put_in_place(tmp, out)
    finally:
        _remove(tmp)
    size = out.stat().st_size if out.is_file() else sum(p.stat().st_size for p in out.iterdir())
    return Written(out, counts, size, time.perf_counter() - started)


def check_new(out: Path) -> None:
    if out.exists() or out.is_symlink():
        raise ExportError(f"{out} exists: an export never replaces a file or folder; choose another --out")


def partial_path(out: Path) -> Path:
    """A new name beside ``out`` to write an export at before it is put in place (two exports at once to
    the same ``out`` each have their own)."""
    return out.with_name(f".{out.name}.{uuid.uuid4().hex[:12]}.partial")


def _put_in_place(tmp: Path, out: Path) -> None:
    """``tmp`` renamed to ``out`` unless something took that name meanwhile: a file by a link (which never
    replaces), a folder by a rename (which replaces only an empty folder)."""
    try:
        if tmp.is_dir():
            if out.exists():
                raise FileExistsError(out)
            tmp.rename(out)
        else:
            _link_or_rename(tmp, out)
    except FileExistsError as e:
        raise ExportError(f"{out} appeared while the export was written; nothing was replaced") from e


def _link_or_rename(tmp: Path, out: Path) -> None:
    try:
        os.link(tmp, out)
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links (some network and FAT mounts): check, then rename
        if out.exists():
            raise FileExistsError(out) from None
        tmp.rename(out)


def _remove(path: Path) -> None:
    """An export's own temporary file or folder (only ever a ``partial_path``)."""
    if path.is_dir():
        for p in path.iterdir():
            p.unlink()
        path.rmdir()
    else:
        path.unlink(missing_ok=True)


def _export_files(con, selections, fmt, folder: Path, about) -> dict[str, int]:
    folder.mkdir()
    counts, shapes = {}, {}
    for sel in selections:
        target = folder / f"{sel.name}.{fmt}"
        if fmt == "csv":
            names, types, batches = _batches(con, sel)
            with open(target, "w", encoding="utf-8", newline="") as f:
                counts[sel.name] = _write_csv_rows(f, names, batches)
        else:  # Parquet keeps types: nothing in it is run by a spreadsheet
            try:
                relation = con.sql(sel.sql, params=sel.params)
                names, types = relation.columns, [str(t) for t in relation.types]
                relation.write_parquet(str(target))
            except duckdb.Error as e:
                raise ExportError(f"{sel.name}: {e}") from e
            counts[sel.name] = con.execute("select count(*) from read_parquet(?)", [str(target)]).fetchall()[0][0]
        shapes[sel.name] = (names, types)
    with open(folder / f"{ABOUT}.csv", "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerows([(k, neutralise(v)) for k, v in about])
        writer.writerow([])
        writer.writerow(["table", "column", "type", "meaning"])
        writer.writerows([[neutralise(v) for v in row] for row in _dictionary(con, selections, shapes)])
    return counts


def _export_xlsx(con, selections, _fmt, path: Path, about) -> dict[str, int]:
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path), {
        "constant_memory": True,  # rows are streamed to disk: a mart of 100,000 rows needs no 100,000-row sheet
        "strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False,
    })
    try:
        bold = book.add_format({"bold": True})
        inert = book.add_format({"quote_prefix": True})
        when = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        day = book.add_format({"num_format": "yyyy-mm-dd"})
        counts, shapes = {}, {}
        for sel in selections:
            names, types, batches = _batches(con, sel)
            shapes[sel.name] = (names, types)
            sheet = book.add_worksheet(sel.name[:31])
            sheet.write_row(0, 0, names, bold)
            sheet.freeze_panes(1, 0)
            r = 0
            for batch in batches:
                if r + len(batch) > XLSX_MAX_ROWS:
                    raise ExportError(f"{sel.name}: more than {XLSX_MAX_ROWS:,} rows, the most a sheet holds; "
                                      "filter it (--year, --province, ...) or export CSV or Parquet")
                for row in batch:
                    r += 1
                    for c, v in enumerate(row):
                        _write_cell(sheet, r, c, v, inert, when, day)
            counts[sel.name] = r
        sheet = book.add_worksheet(ABOUT)
        for r, (k, v) in enumerate(about):
            sheet.write_string(r, 0, k, bold)
            sheet.write_string(r, 1, v, inert if is_formula_like(v) else None)
        start = len(about) + 1
        sheet.write_row(start, 0, ["table", "column", "type", "meaning"], bold)
        for r, row in enumerate(_dictionary(con, selections, shapes), start=start + 1):
            for c, v in enumerate(row):
                sheet.write_string(r, c, v, inert if is_formula_like(v) else None)
    finally:
        book.close()
    return counts


def _write_cell(sheet, r: int, c: int, v: Any, inert, when, day) -> None:
    if v is None:
        return
    if isinstance(v, bool):
        sheet.write_boolean(r, c, v)
    elif isinstance(v, float) and not math.isfinite(v):  # Excel has no NaN or infinity: text, never a formula
        sheet.write_string(r, c, str(v))
    elif isinstance(v, int | float):
        sheet.write_number(r, c, v)
    elif isinstance(v, Decimal):
        sheet.write_number(r, c, float(v))
    elif isinstance(v, datetime):  # Excel has no time zones: UTC, as stored
        sheet.write_datetime(r, c, v.astimezone(UTC).replace(tzinfo=None) if v.tzinfo else v, when)
    elif isinstance(v, date):
        sheet.write_datetime(r, c, v, day)
    elif isinstance(v, str):
        sheet.write_string(r, c, v, inert if is_formula_like(v) else None)
    else:
        sheet.write_string(r, c, json.dumps(v, default=str, ensure_ascii=False))
