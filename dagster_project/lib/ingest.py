"""Landing: archive by hash -> parse -> validate -> lake or quarantine, for every dataset.

Two datasets arrive as files: official releases (one results table per year, from the release source) and
regional submissions (one institution x year x stage, from the inbox). Both land the same way. Landing is
content-addressed, so the same bytes twice is a no-op reported as ``duplicate``. A correction is a new
sha256, hence a new lake file, and older ones stay.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import duckdb
import pandas as pd
import requests

from dagster_project.lib.archive import append_ingest_log, archive_file, copy_atomically, utc_now, write_atomically
from dagster_project.lib.quality import suite_path, validate_frame
from dagster_project.lib.registry import Registry, load_registry
from dagster_project.lib.releases import ReleaseFormatError, normalize_release, read_release_csv
from dagster_project.lib.sources import ReleaseEntry, SourceConfig, fetch_release
from dagster_project.lib.submissions import (
    MAX_FILE_BYTES,
    SubmissionFormatError,
    file_type_of,
    normalize_submission,
    read_submission,
)
from dagster_project.paths import REFERENCE_DIR, DataPaths


@dataclass(frozen=True)
class Dataset:
    name: str  # lake folder, ingest-log dataset and GX suite name
    id_columns: tuple[str, ...]  # shown next to each failing value
    code: tuple[str, ...]  # lib modules a verdict depends on, besides the suite and the reference tables


RELEASES = Dataset("official_results", ("row_number", "year", "institution_name", "kemendagri_code"),
                   ("releases.py", "framework.py", "registry.py", "quality.py", "values.py"))
SUBMISSIONS = Dataset("submissions", ("row_number", "institution_code", "stage", "indicator"),
                      ("submissions.py", "framework.py", "registry.py", "quality.py", "values.py"))
# The release names kept for their callers.
DATASET, SUITE, ID_COLUMNS = RELEASES.name, RELEASES.name, list(RELEASES.id_columns)


@dataclass(frozen=True)
class LandingResult:
    dataset: str
    year: int | None
    sha256: str
    status: str  # loaded | duplicate | quarantined
    rows: int
    reason: str
    report: dict
    not_modified: bool = False
    original_name: str = ""

    @property
    def accepted(self) -> bool:
        return self.report.get("passed", False)


def lake_file(paths: DataPaths, year: int, sha256: str, dataset: str = DATASET) -> Path:
    return paths.lake_dataset(dataset) / f"year={year}" / f"{sha256}.parquet"


def report_file(paths: DataPaths, sha256: str, kind: str = "") -> Path:
    """Where the verdict on this content is kept. Submissions add their file type: the same bytes sent as
    .txt (refused) and then as .csv are two different questions."""
    return paths.state / "reports" / (f"{sha256}.{kind}.json" if kind else f"{sha256}.json")


@cache
def validation_fingerprint(dataset: Dataset = RELEASES) -> str:
    """What a verdict depends on: the suite, the reference tables and the parsing and validation code.

    A stored verdict is reused only while this is unchanged, so fixing the registry (say, adding an alias)
    and landing the same file again re-validates it.
    """
    h = hashlib.sha256()
    files = [suite_path(dataset.name), *sorted(REFERENCE_DIR.glob("*.csv")),
             *(Path(__file__).parent / f for f in dataset.code)]
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


# A parser turns bytes into (frame or None, report dict, one-line reason).
Parser = Callable[[bytes], tuple[pd.DataFrame | None, dict, str]]


def land_release(cfg: SourceConfig, entry: ReleaseEntry, paths: DataPaths,
                 session: requests.Session | None = None, registry: Registry | None = None) -> LandingResult:
    """Fetch and land one release; source errors propagate (nothing landed), data errors quarantine."""
    paths.ensure()
    fetched = fetch_release(cfg, entry, paths.archive, paths.http_cache, session)

    def parse(content: bytes):
        return _validated(RELEASES, lambda: normalize_release(
            read_release_csv(content, Path(entry.url).name), entry.year, registry or load_registry()),
            Path(entry.url).name, (ReleaseFormatError,))

    result = _land(paths, RELEASES, fetched.path, fetched.sha256, entry.url, cfg.kind, parse,
                   year_of=lambda frame: entry.year)
    return dataclasses.replace(result, not_modified=fetched.not_modified)


def land_submission(paths: DataPaths, source_file: Path, original_name: str, source: str = "inbox",
                    registry: Registry | None = None) -> LandingResult:
    """Archive one submission file as received (streamed, whatever its size), then parse, validate, land."""
    paths.ensure()
    # The archive keeps the bytes under their hash; the extension is one of three, never the sender's name.
    ext = file_type_of(original_name) or "bin"
    sha, archived = archive_file(paths.archive, source_file, ext)
    # The name is only ever shown: make it printable UTF-8 whatever bytes it came with.
    original_name = original_name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    received = datetime.now(UTC)

    def parse(data: bytes):
        return _validated(SUBMISSIONS, lambda: normalize_submission(
            read_submission(data, original_name).rows, registry or load_registry(), received),
            original_name, (SubmissionFormatError,))

    if archived.stat().st_size > MAX_FILE_BYTES:  # refused unread: never pull a huge file into memory
        oversize = SubmissionFormatError(original_name, "file_size", f"{archived.stat().st_size} bytes, over "
                                         f"{MAX_FILE_BYTES}")
        return _land(paths, SUBMISSIONS, archived, sha, original_name, source,
                     lambda _: (None, _unreadable(SUBMISSIONS, oversize.rule, oversize.detail), str(oversize)),
                     lambda frame: None, read=False, kind=ext)

    def year_of(frame: pd.DataFrame) -> int | None:
        years = frame["year"].dropna().unique()
        return int(years[0]) if len(years) == 1 else None

    return _land(paths, SUBMISSIONS, archived, sha, original_name, source, parse, year_of, kind=ext)


def _validated(dataset: Dataset, build: Callable[[], pd.DataFrame], file_name: str,
               format_errors: tuple[type[ValueError], ...]) -> tuple[pd.DataFrame | None, dict, str]:
    try:
        frame = build()
        report = validate_frame(frame, dataset.name, list(dataset.id_columns))
    except format_errors as e:
        return None, _unreadable(dataset, e.rule, e.detail), str(e)
    except Exception as e:  # a file must never crash landing: quarantine it with what went wrong
        detail = f"{e.__class__.__name__}: {e}"
        return None, _unreadable(dataset, "unexpected_parse_error", detail), f"{file_name}: {detail}"
    return frame, report.to_dict(), report.reason()


def _land(paths: DataPaths, dataset: Dataset, archived: Path, sha256: str, original_name: str, source: str,
          parse: Parser, year_of: Callable[[pd.DataFrame], int | None], read: bool = True,
          kind: str = "") -> LandingResult:
    """Order makes a crash at any point safe to re-run: archive (done by the caller), lake or quarantine
    copy (each atomic), then the ingest-log line, then the report, which marks the landing as done."""
    received_at = utc_now()
    log = {"sha256": sha256, "original_name": original_name, "source": source, "dataset": dataset.name,
           "received_at": received_at}
    previous = _load_report(paths, sha256, dataset, kind)
    if previous is not None:
        status = "duplicate" if previous["passed"] else "quarantined"
        reason = f"same content as an earlier file ({previous['status']})"
        append_ingest_log(paths.ingest_log, {**log, **_keys(previous), "status": status,
                                             "rows": previous.get("rows", 0), "reason": reason})
        return LandingResult(dataset.name, previous.get("year"), sha256, status, previous.get("rows", 0), reason,
                             previous, original_name=original_name)

    frame, report, reason = parse(archived.read_bytes() if read else b"")
    year = year_of(frame) if frame is not None else None
    rows = 0 if frame is None else len(frame)
    if frame is not None and report["passed"] and year is not None:
        _write_lake(frame, lake_file(paths, year, sha256, dataset.name), sha256, received_at, original_name)
        status = "loaded"
    else:
        status = "quarantined"
        copy_atomically(archived, paths.quarantine / archived.name)
    report.update(status=status, rows=rows, reason=reason, year=year, received_at=received_at,
                  original_name=original_name, validation_fingerprint=validation_fingerprint(dataset),
                  **(_file_keys(frame) if frame is not None else {}))
    report_bytes = json.dumps(report, indent=2, default=str).encode()
    if status == "quarantined":
        write_atomically(paths.quarantine / f"{sha256}.report.json", report_bytes)
    append_ingest_log(paths.ingest_log, {**log, **_keys(report), "status": status, "rows": rows, "reason": reason})
    write_atomically(report_file(paths, sha256, kind), report_bytes)
    return LandingResult(dataset.name, year, sha256, status, rows, reason, report, original_name=original_name)


def _file_keys(frame: pd.DataFrame) -> dict:
    """What a submission file is about, when it says so unambiguously (releases have no such columns)."""
    out = {}
    for key in ("institution_id", "stage"):
        if key in frame.columns:
            values = frame[key].dropna().unique()
            out[key] = str(values[0]) if len(values) == 1 else None
    if "is_late" in frame.columns:
        out["is_late"] = bool(frame["is_late"].any())
    return out


def _keys(report: dict) -> dict:
    return {k: report.get(k) for k in ("year", "institution_id", "stage", "is_late")}


def _unreadable(dataset: Dataset, rule: str, detail: str) -> dict:
    return {"suite": dataset.name, "passed": False, "failed": [
        {"expectation": rule, "severity": "critical", "column": None, "unexpected_count": 0,
         "sample_rows": [], "description": detail}]}


def is_accepted(paths: DataPaths, sha256: str, dataset: Dataset = RELEASES, kind: str = "") -> bool:
    """Whether this content was landed and passed validation under the current rules."""
    report = _load_report(paths, sha256, dataset, kind)
    return bool(report and report.get("passed"))


def _load_report(paths: DataPaths, sha256: str, dataset: Dataset, kind: str = "") -> dict | None:
    """The stored verdict for this content, if it was reached under the current validation rules."""
    path = report_file(paths, sha256, kind)
    if not path.exists():
        return None
    report = json.loads(path.read_text(encoding="utf-8"))
    return report if report.get("validation_fingerprint") == validation_fingerprint(dataset) else None


def _write_lake(frame: pd.DataFrame, target: Path, sha256: str, received_at: str, original_name: str) -> None:
    """One Parquet file per accepted file, with lineage columns; written aside, then renamed into place."""
    out = frame.assign(source_sha256=sha256, received_at=pd.Timestamp(received_at), original_name=original_name)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.partial")
    try:
        con = duckdb.connect()  # in-memory: not a writer of any warehouse file
        try:
            con.from_df(out).write_parquet(str(tmp))
        finally:
            con.close()
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
