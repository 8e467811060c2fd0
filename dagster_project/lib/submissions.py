"""Regional submissions: the README's contract, read from CSV, XLSX or JSON into one frame.

One file = one institution x one evaluation year x one stage, one row per indicator; or the same for one
of the institution's work units (OPD), named in ``work_unit``. Every reader is
bounded (bytes, rows, cell length, JSON depth, unzipped XLSX size), never evaluates a spreadsheet formula
(a cell holding ``=HYPERLINK(...)`` stays that text), and fails with the rule that was broken. Values are
kept as text until ``normalize_submissions`` types a whole batch of files at once and adds the columns the
GX suite checks (``normalize_submission`` does it for one file).
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from functools import cache
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from dagster_project.lib.framework import framework_for_year, indicators
from dagster_project.lib.registry import Registry
from dagster_project.lib.values import whole_numbers
from dagster_project.paths import REFERENCE_DIR

JAKARTA = ZoneInfo("Asia/Jakarta")
FILE_INDEX = "file_index"  # which file of a batch a row came from
STAGES = ("self_assessment", "document_review", "interview", "site_visit", "final")
# work_unit (optional) marks a work unit's (OPD's) own self-assessment inside its institution.
CONTRACT_COLUMNS = ("institution_code", "year", "stage", "indicator", "level", "explanation", "evidence",
                    "submitted_at", "work_unit")
REQUIRED_COLUMNS = ("institution_code", "year", "stage", "indicator", "level")
# Indonesian headers accepted as aliases (the README's contract table).
COLUMN_ALIASES = {"kode_instansi": "institution_code", "tahun": "year", "tahap": "stage",
                  "indikator": "indicator", "tingkat": "level", "penjelasan": "explanation",
                  "bukti_dukung": "evidence", "dikirim_pada": "submitted_at", "kode_opd": "work_unit",
                  "unit_kerja": "work_unit"}
STAGE_ALIASES = {"penilaian_mandiri": "self_assessment", "mandiri": "self_assessment",
                 "penilaian_dokumen": "document_review", "dokumen": "document_review",
                 "interviu": "interview", "wawancara": "interview", "visitasi": "site_visit",
                 "akhir": "final", "reviu": "final"}
SUPPORTED_TYPES = ("csv", "xlsx", "json")

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_UNZIPPED_BYTES = 50 * 1024 * 1024  # an XLSX is a zip: refuse bombs before parsing
MAX_ROWS = 2_000
MAX_COLUMNS = 100  # the contract has 8; a very wide sheet is refused before any row is padded
MAX_CELL_CHARS = 20_000
MAX_JSON_DEPTH = 20


class SubmissionFormatError(ValueError):
    """The file cannot be read as a submission; names the file and the broken rule."""

    def __init__(self, file_name: str, rule: str, detail: str):
        super().__init__(f"{file_name}: rule '{rule}' failed: {detail}")
        self.file_name, self.rule, self.detail = file_name, rule, detail


@dataclass(frozen=True)
class ParsedFile:
    table: dict[str, list[str]]  # text cells under contract column names, every contract column present
    meta: dict[str, Any]  # JSON "meta", ignored columns, sheet name

    @property
    def rows(self) -> pd.DataFrame:
        return pd.DataFrame(self.table, dtype="str")


def file_type_of(file_name: str) -> str | None:
    suffix = Path(file_name).suffix.lower().lstrip(".")
    return suffix if suffix in SUPPORTED_TYPES else None


# ---------------------------------------------------------------- reading


def read_submission(content: bytes, file_name: str) -> ParsedFile:
    kind = file_type_of(file_name)
    if kind is None:
        raise SubmissionFormatError(file_name, "file_type", f"expected one of {SUPPORTED_TYPES}")
    if len(content) > MAX_FILE_BYTES:
        raise SubmissionFormatError(file_name, "file_size", f"{len(content)} bytes, over {MAX_FILE_BYTES}")
    if not content.strip() or not content.removeprefix(b"\xef\xbb\xbf").strip():
        raise SubmissionFormatError(file_name, "not_empty", "the file is empty")
    reader = {"csv": _read_csv, "xlsx": _read_xlsx, "json": _read_json}[kind]
    header, records, meta = reader(content, file_name)
    if len(header) > MAX_COLUMNS:
        raise SubmissionFormatError(file_name, "column_count", f"{len(header)} columns, over {MAX_COLUMNS}")
    columns = _contract_header(header, file_name)
    if not records:
        raise SubmissionFormatError(file_name, "has_rows", "a header but no indicator rows")
    if len(records) > MAX_ROWS:
        raise SubmissionFormatError(file_name, "row_count", f"{len(records)} rows, over {MAX_ROWS}")
    width = len(header)
    padded = []
    for i, r in enumerate(records):
        r = list(r)
        if len(r) > width:
            if any(v not in (None, "") for v in r[width:]):
                raise SubmissionFormatError(file_name, "row_width", f"row {i + 1} has values beyond the last column")
            r = r[:width]
        padded.append(r + [""] * (width - len(r)))  # a short row: its missing cells are empty
    by_column = list(zip(*padded, strict=True))  # transposed in C, not cell by cell
    kept = {c: j for j, c in enumerate(columns) if c in CONTRACT_COLUMNS}
    # An optional column that is absent is empty text, like an empty cell.
    table = {c: [""] * len(records) for c in CONTRACT_COLUMNS}
    for c, j in kept.items():
        table[c] = _column_text(by_column[j], c, file_name)
    ignored = [h for h, c in zip(header, columns, strict=True) if c not in CONTRACT_COLUMNS]
    return ParsedFile(table, {**meta, "ignored_columns": ignored} if ignored else meta)


def _column_text(values: tuple, column: str, file_name: str) -> list[str]:
    """A column's cells as stripped text. Plain short text, nearly every cell, is checked whole-column in C;
    anything else goes cell by cell through ``_cell``, which names the row of a bad one."""
    if (set(map(type, values)) <= {str} and max(map(len, values), default=0) <= MAX_CELL_CHARS
            and "\x00" not in "".join(values)):
        return list(map(str.strip, values))
    return [_cell(_code_text(v) if column == "institution_code" else v, file_name, i + 1)
            for i, v in enumerate(values)]


def _code_text(value: Any) -> Any:
    """A Kemendagri code typed into a spreadsheet cell becomes a number (35.10 -> 35.1): give it back its
    two decimals. Codes are PP or PP.RR, so a float always meant PP.RR."""
    return f"{value:.2f}" if isinstance(value, float) and not value.is_integer() else value


def _contract_header(header: list[Any], file_name: str) -> list[str]:
    names = [COLUMN_ALIASES.get(n, n) for n in
             (str(h or "").strip().lstrip("\ufeff").lower().replace(" ", "_") for h in header)]
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise SubmissionFormatError(file_name, "required_columns", f"missing columns {missing}")
    doubled = sorted({n for n in names if n in CONTRACT_COLUMNS and names.count(n) > 1})
    if doubled:
        raise SubmissionFormatError(file_name, "unique_columns", f"columns given twice: {doubled}")
    return [n if n in CONTRACT_COLUMNS else f"_ignored_{i}" for i, n in enumerate(names)]


def _cell(value: Any, file_name: str, row: int) -> str:
    if type(value) is str and len(value) <= MAX_CELL_CHARS and "\x00" not in value:  # the common case, fast
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))  # an XLSX number 3.0 is the level 3
    elif isinstance(value, datetime | date | time):
        text = value.isoformat()
    elif isinstance(value, dict | list):
        raise SubmissionFormatError(file_name, "flat_rows", f"row {row}: a cell holds a nested value")
    else:
        text = str(value)
    if "\x00" in text:
        raise SubmissionFormatError(file_name, "no_nul_bytes", f"row {row}: a cell contains a NUL byte")
    if len(text) > MAX_CELL_CHARS:
        raise SubmissionFormatError(file_name, "cell_length", f"row {row}: a cell of {len(text)} characters")
    return text.strip()


def _read_csv(content: bytes, file_name: str) -> tuple[list, list, dict]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SubmissionFormatError(file_name, "utf8_encoding", f"byte {e.start} is not UTF-8") from e
    if "\x00" in text:
        raise SubmissionFormatError(file_name, "no_nul_bytes", "the file contains NUL bytes")
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter, strict=True))
    except csv.Error as e:
        raise SubmissionFormatError(file_name, "csv_readable", str(e)) from e
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise SubmissionFormatError(file_name, "not_empty", "no header and no rows")
    return rows[0], rows[1:], {}


def _read_xlsx(content: bytes, file_name: str) -> tuple[list, list, dict]:
    import openpyxl  # only XLSX needs it

    buffer = io.BytesIO(content)
    if not zipfile.is_zipfile(buffer):
        raise SubmissionFormatError(file_name, "xlsx_is_zip", "not an XLSX workbook (not a zip archive)")
    try:
        with zipfile.ZipFile(buffer) as archive:
            unzipped = sum(i.file_size for i in archive.infolist())
    except zipfile.BadZipFile as e:
        raise SubmissionFormatError(file_name, "xlsx_is_zip", str(e)) from e
    if unzipped > MAX_UNZIPPED_BYTES:
        raise SubmissionFormatError(file_name, "xlsx_unzipped_size", f"{unzipped} bytes unzipped, over "
                                    f"{MAX_UNZIPPED_BYTES} (a zip bomb?)")
    try:
        # read_only streams rows; data_only=False keeps formulas as their text, nothing is evaluated.
        book = openpyxl.load_workbook(buffer, read_only=True, data_only=False)
    except Exception as e:  # openpyxl raises many types for broken workbooks
        raise SubmissionFormatError(file_name, "xlsx_readable", f"{e.__class__.__name__}: {e}") from e
    try:
        sheet = book.worksheets[0]
        rows = []
        # Empty rows count too, and columns beyond the limit are never read: a lone cell at XFD1048576 is
        # refused quickly instead of being walked row by row across 16,384 columns.
        for seen, row in enumerate(sheet.iter_rows(values_only=True, max_col=MAX_COLUMNS + 1), start=1):
            if seen > 2 * MAX_ROWS:
                raise SubmissionFormatError(file_name, "row_count", f"more than {2 * MAX_ROWS} rows (empty included)")
            if len(row) > MAX_COLUMNS and row[MAX_COLUMNS] not in (None, ""):
                raise SubmissionFormatError(file_name, "column_count", f"more than {MAX_COLUMNS} columns")
            if any(v not in (None, "") for v in row):
                rows.append(list(row[:MAX_COLUMNS]))
    except SubmissionFormatError:
        raise
    except Exception as e:
        raise SubmissionFormatError(file_name, "xlsx_readable", f"{e.__class__.__name__}: {e}") from e
    finally:
        book.close()
    if not rows:
        raise SubmissionFormatError(file_name, "has_rows", "the first sheet is empty")
    header = rows[0]
    while header and header[-1] in (None, ""):  # read_only rows come padded to the columns read
        header = header[:-1]
    return header, rows[1:], {"sheet": sheet.title}


def _read_json(content: bytes, file_name: str) -> tuple[list, list, dict]:
    try:
        doc = json.loads(content.decode("utf-8-sig"), parse_float=str, parse_int=str, parse_constant=str,
                         object_pairs_hook=_unique_keys)
    except UnicodeDecodeError as e:
        raise SubmissionFormatError(file_name, "utf8_encoding", f"byte {e.start} is not UTF-8") from e
    except RecursionError as e:
        raise SubmissionFormatError(file_name, "json_depth", "nested too deeply") from e
    except json.JSONDecodeError as e:
        raise SubmissionFormatError(file_name, "json_readable", str(e)) from e
    except _DuplicateKey as e:
        raise SubmissionFormatError(file_name, "json_unique_keys", f"key {e} given twice in one object") from e
    # Rows are checked cell by cell (a nested cell breaks flat_rows), so only what is around them is walked
    # here: walking every cell of every row again cost a third of reading a batch.
    outside_rows = {k: v for k, v in doc.items() if k != "rows"} if isinstance(doc, dict) else doc
    if isinstance(doc, list) and all(isinstance(r, dict) for r in doc):
        outside_rows = None
    if outside_rows is not None and _depth(outside_rows) > MAX_JSON_DEPTH:
        raise SubmissionFormatError(file_name, "json_depth", f"nested deeper than {MAX_JSON_DEPTH}")
    meta: dict = {}
    if isinstance(doc, dict) and "rows" in doc:
        meta = doc.get("meta") if isinstance(doc.get("meta"), dict) else {}
        doc = doc["rows"]
    if not isinstance(doc, list) or not all(isinstance(r, dict) for r in doc):
        raise SubmissionFormatError(file_name, "json_shape", "expected a list of rows, or {meta, rows}")
    header: dict[str, None] = {}  # insertion-ordered set: linear, whatever the number of keys
    for r in doc:
        header.update(dict.fromkeys(r))
        if len(header) > MAX_COLUMNS:
            raise SubmissionFormatError(file_name, "column_count", f"more than {MAX_COLUMNS} distinct keys")
    keys = list(header)
    if len(keys) > 1 and all(len(r) == len(keys) for r in doc):  # every row has every key: pick them in C
        pick = itemgetter(*keys)
        records = [pick(r) for r in doc]
    else:
        records = [[r.get(k) for k in keys] for r in doc]
    return keys, records, {"meta": meta} if meta else {}


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    out = dict(pairs)  # in C; only a shorter dict means a key came twice
    if len(out) != len(pairs):
        seen: set[str] = set()
        raise _DuplicateKey(repr(next(k for k, _ in pairs if k in seen or seen.add(k))))
    return out


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_JSON_DEPTH:
        return level
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
    if children is None:
        return level
    # Only containers go deeper: a million scalar cells cost one isinstance each, not a call each.
    return max([_depth(v, level + 1) for v in children if isinstance(v, dict | list)], default=level + 1)


# ---------------------------------------------------------------- typing and derived columns


@dataclass(frozen=True)
class Window:
    opens: date
    closes: date


@cache
def submission_windows(reference_dir: Path | None = None) -> dict[tuple[int, str], Window]:
    with open((reference_dir or REFERENCE_DIR) / "submission_windows.csv", newline="", encoding="utf-8") as f:
        return {(int(r["year"]), r["stage"]): Window(date.fromisoformat(r["opens"]), date.fromisoformat(r["closes"]))
                for r in csv.DictReader(f)}


def is_late(year: int | None, stage: str | None, submitted: datetime | None) -> bool:
    """Submitted after the day its window closed (Asia/Jakarta); no window known means not late."""
    window = submission_windows().get((year, stage)) if year is not None and stage else None
    if window is None or submitted is None:
        return False
    return submitted.astimezone(JAKARTA).date() > window.closes


def _by_value(series: pd.Series, compute: Callable[[Any], Any]) -> np.ndarray:
    """``compute`` applied once per distinct value, spread back to every row: a batch of 25,000 files has a
    million rows but only a few thousand distinct codes, years and timestamps."""
    codes, uniques = pd.factorize(series, use_na_sentinel=False)
    return np.array([compute(v) for v in uniques] + [None], dtype=object)[codes]


def _instant(text: str) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
        return (value if value.tzinfo else value.replace(tzinfo=JAKARTA)).astimezone(ZoneInfo("UTC"))
    except (ValueError, OverflowError):  # not ISO 8601, or a date no clock can hold (0001-01-01 in +07:00)
        return pd.NaT


def _timestamps(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """ISO 8601 instants in UTC (Asia/Jakarta when the text has no offset), and a mask of unreadable cells."""
    result = pd.Series(pd.to_datetime(list(_by_value(series, _instant)), utc=True), index=series.index)
    return result, series.ne("") & result.isna()


def normalize_submission(raw: pd.DataFrame, registry: Registry, received_at: datetime,
                         today: date | None = None) -> pd.DataFrame:
    """One file's text cells, typed: see ``normalize_submissions``."""
    table = {c: raw[c].tolist() for c in CONTRACT_COLUMNS}
    return normalize_submissions([table], registry, received_at, today).drop(columns=FILE_INDEX)


def normalize_submissions(tables: list[dict[str, list[str]]], registry: Registry, received_at: datetime,
                          today: date | None = None) -> pd.DataFrame:
    """Type the contract columns of a batch of files (``ParsedFile.table`` each) and add what the suite
    checks, in one frame whose ``file_index`` column says which of ``tables`` each row came from. Published
    text is never rewritten.

    Row rules are computed once per distinct value and file rules (one key, coverage) per file, so a
    batch costs about the same per row whatever its number of files.
    """
    today = today or received_at.astimezone(JAKARTA).date()
    # One frame built once from all the cells: a frame per file and a concat cost more than the rest.
    df = pd.DataFrame({c: list(chain.from_iterable(t[c] for t in tables)) for c in CONTRACT_COLUMNS}, dtype="str")
    df[FILE_INDEX] = np.repeat(np.arange(len(tables)), [len(t[CONTRACT_COLUMNS[0]]) for t in tables])
    df.insert(0, "row_number", df.groupby(FILE_INDEX).cumcount() + 1)  # data row, header excluded
    unparseable: dict[str, pd.Series] = {}
    for col in ("year", "indicator", "level"):
        df[col], unparseable[col] = whole_numbers(df[col], 1e9)
    df["submitted_at"], unparseable["submitted_at"] = _timestamps(df["submitted_at"])
    names = pd.Series("", index=df.index, dtype="str")
    for col, mask in unparseable.items():
        names = names + np.where(mask.to_numpy(dtype=bool), f"{col}, ", "")
    names = names.str.removesuffix(", ")
    df["unparseable_values"] = names.where(names.ne(""), None)

    df["stage"] = df["stage"].str.lower().str.replace(" ", "_").replace(STAGE_ALIASES)
    df["work_unit"] = df["work_unit"].where(df["work_unit"].ne(""), None)
    df["institution_id"] = _by_value(df["institution_code"], registry.resolve_code)
    df["framework"] = _by_value(df["year"], lambda y: framework_for_year(int(y))
                                if pd.notna(y) and 2000 <= y <= 2100 else None)
    numbers = {f: {i.number for i in indicators(f)} for f in df["framework"].dropna().unique()}

    def known(key: Any) -> bool:  # "<framework>|<indicator>"
        framework, _, number = key.partition("|") if isinstance(key, str) else ("", "", "")
        return number.isdigit() and int(number) in numbers.get(framework, ())

    df["indicator_known"] = _by_value(df["framework"].astype("str") + "|" + df["indicator"].astype("str"),
                                      known).astype(bool)
    df["year_in_future"] = df["year"].gt(today.year).fillna(False).astype(bool)
    # File-level facts, repeated on each row so that row-level expectations can check them.
    keys = df[[FILE_INDEX, "institution_code", "year", "stage", "work_unit"]].astype("str").drop_duplicates()
    df["file_key_count"] = df[FILE_INDEX].map(keys.groupby(keys[FILE_INDEX].astype(int)).size()).astype(int)
    required = df.groupby(FILE_INDEX)["framework"].first().map(lambda f: len(indicators(f)) if f else 0)
    present = df[df["indicator_known"]].groupby(FILE_INDEX)["indicator"].nunique().reindex(required.index, fill_value=0)
    coverage = (present / required.where(required > 0)).round(4).fillna(0.0)
    df["coverage"] = df[FILE_INDEX].map(coverage).astype(float)
    submitted = df["submitted_at"]
    arrival = pd.Series(pd.Timestamp(received_at).tz_convert("UTC"), index=df.index).astype(submitted.dtype)
    local_day = _by_value(submitted.fillna(arrival), lambda t: t.tz_convert(JAKARTA).date().isoformat())
    closes = {f"{y}|{s}": w.closes.isoformat() for (y, s), w in submission_windows().items()}
    closing_day = _by_value(df["year"].astype("str") + "|" + df["stage"].astype("str"), closes.get)
    df["is_late"] = [c is not None and d > c for d, c in zip(local_day, closing_day, strict=True)]
    return df
