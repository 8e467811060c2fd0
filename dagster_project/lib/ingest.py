"""Land one official release: fetch -> archive by hash -> parse -> validate -> lake or quarantine.

Content-addressed throughout, so landing the same bytes twice is a no-op that reports ``duplicate``;
a corrected release is a new sha256, hence a new lake file, and the older one stays.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import duckdb
import pandas as pd
import requests

from dagster_project.lib.archive import append_ingest_log, utc_now, write_atomically
from dagster_project.lib.quality import suite_path, validate_frame
from dagster_project.lib.registry import Registry, load_registry
from dagster_project.lib.releases import ReleaseFormatError, normalize_release, read_release_csv
from dagster_project.lib.sources import ReleaseEntry, SourceConfig, fetch_release
from dagster_project.paths import REFERENCE_DIR, DataPaths

DATASET = "official_results"
SUITE = "official_results"
ID_COLUMNS = ["row_number", "year", "institution_name", "kemendagri_code"]


@dataclass(frozen=True)
class LandingResult:
    year: int
    sha256: str
    status: str  # loaded | duplicate | quarantined
    rows: int
    reason: str
    report: dict
    not_modified: bool = False

    @property
    def accepted(self) -> bool:
        return self.report.get("passed", False)


def lake_file(paths: DataPaths, year: int, sha256: str) -> Path:
    return paths.lake_dataset(DATASET) / f"year={year}" / f"{sha256}.parquet"


def report_file(paths: DataPaths, sha256: str) -> Path:
    return paths.state / "reports" / f"{sha256}.json"


@cache
def validation_fingerprint() -> str:
    """What a verdict depends on: the suite, the reference tables and the parsing and validation code.

    A stored verdict is reused only while this is unchanged, so fixing the registry (say, adding an alias)
    and landing the same file again re-validates it.
    """
    h = hashlib.sha256()
    files = [suite_path(SUITE), *sorted(REFERENCE_DIR.glob("*.csv")),
             *(Path(__file__).parent / f for f in ("releases.py", "framework.py", "registry.py", "quality.py"))]
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def land_release(cfg: SourceConfig, entry: ReleaseEntry, paths: DataPaths,
                 session: requests.Session | None = None, registry: Registry | None = None) -> LandingResult:
    """Fetch and land one release; source errors propagate (nothing landed), data errors quarantine.

    Order makes a crash at any point safe to re-run: archive, lake or quarantine copy (each atomic),
    then the ingest-log line, then the report, which marks the landing as done.
    """
    paths.ensure()
    fetched = fetch_release(cfg, entry, paths.archive, paths.http_cache, session)
    received_at = utc_now()
    log = {"sha256": fetched.sha256, "original_name": entry.url, "source": cfg.kind, "dataset": DATASET,
           "year": entry.year, "received_at": received_at}
    previous = _load_report(paths, fetched.sha256)
    if previous is not None:
        status = "duplicate" if previous["passed"] else "quarantined"
        result = LandingResult(entry.year, fetched.sha256, status, previous.get("rows", 0),
                               f"same content as an earlier file ({previous['status']})", previous,
                               fetched.not_modified)
        append_ingest_log(paths.ingest_log, {**log, "status": status, "rows": result.rows, "reason": result.reason})
        return result

    frame, report_dict, reason = _parse_and_validate(fetched.path.read_bytes(), entry, registry)
    rows = 0 if frame is None else len(frame)
    if frame is not None and report_dict["passed"]:
        _write_lake(frame, lake_file(paths, entry.year, fetched.sha256), fetched.sha256, received_at, entry.url)
        status = "loaded"
    else:
        status = "quarantined"
        write_atomically(paths.quarantine / fetched.path.name, fetched.path.read_bytes())
    report_dict.update(status=status, rows=rows, reason=reason, year=entry.year, received_at=received_at,
                       validation_fingerprint=validation_fingerprint())
    report_bytes = json.dumps(report_dict, indent=2, default=str).encode()
    if status == "quarantined":
        write_atomically(paths.quarantine / f"{fetched.sha256}.report.json", report_bytes)
    append_ingest_log(paths.ingest_log, {**log, "status": status, "rows": rows, "reason": reason})
    write_atomically(report_file(paths, fetched.sha256), report_bytes)
    return LandingResult(entry.year, fetched.sha256, status, rows, reason, report_dict, fetched.not_modified)


def _parse_and_validate(content: bytes, entry: ReleaseEntry,
                        registry: Registry | None) -> tuple[pd.DataFrame | None, dict, str]:
    """The frame (None when unreadable), the validation report as a dict, and a one-line reason."""
    try:
        frame = normalize_release(read_release_csv(content, Path(entry.url).name), entry.year,
                                  registry or load_registry())
        report = validate_frame(frame, SUITE, ID_COLUMNS)
    except ReleaseFormatError as e:
        return None, _unreadable(e.rule, e.detail), str(e)
    except Exception as e:  # a file must never crash landing: quarantine it with what went wrong
        detail = f"{e.__class__.__name__}: {e}"
        return None, _unreadable("unexpected_parse_error", detail), f"{Path(entry.url).name}: {detail}"
    return frame, report.to_dict(), report.reason()


def _unreadable(rule: str, detail: str) -> dict:
    return {"suite": SUITE, "passed": False, "failed": [
        {"expectation": rule, "severity": "critical", "column": None, "unexpected_count": 0,
         "sample_rows": [], "description": detail}]}


def is_accepted(paths: DataPaths, sha256: str) -> bool:
    """Whether this content was landed and passed validation under the current rules."""
    report = _load_report(paths, sha256)
    return bool(report and report.get("passed"))


def _load_report(paths: DataPaths, sha256: str) -> dict | None:
    """The stored verdict for this content, if it was reached under the current validation rules."""
    path = report_file(paths, sha256)
    if not path.exists():
        return None
    report = json.loads(path.read_text(encoding="utf-8"))
    return report if report.get("validation_fingerprint") == validation_fingerprint() else None


def _write_lake(frame: pd.DataFrame, target: Path, sha256: str, received_at: str, url: str) -> None:
    """One Parquet file per accepted file, with lineage columns; written aside, then renamed into place."""
    out = frame.assign(source_sha256=sha256, received_at=pd.Timestamp(received_at), release_url=url)
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
