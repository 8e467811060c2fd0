"""Land one official release: fetch -> archive by hash -> parse -> validate -> lake or quarantine.

Content-addressed throughout, so landing the same bytes twice is a no-op that reports ``duplicate``;
a corrected release is a new sha256, hence a new lake file, and the older one stays.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import requests

from dagster_project.lib.archive import append_ingest_log, utc_now, write_atomically
from dagster_project.lib.quality import ValidationReport, validate_frame
from dagster_project.lib.registry import Registry, load_registry
from dagster_project.lib.releases import ReleaseFormatError, normalize_release, read_release_csv
from dagster_project.lib.sources import ReleaseEntry, SourceConfig, fetch_release
from dagster_project.paths import DataPaths

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


def land_release(cfg: SourceConfig, entry: ReleaseEntry, paths: DataPaths,
                 session: requests.Session | None = None, registry: Registry | None = None) -> LandingResult:
    """Fetch and land one release; source errors propagate (nothing landed), data errors quarantine."""
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

    content = fetched.path.read_bytes()
    try:
        frame = normalize_release(read_release_csv(content, Path(entry.url).name), entry.year,
                                  registry or load_registry())
        report = validate_frame(frame, SUITE, ID_COLUMNS)
    except ReleaseFormatError as e:
        frame, report = None, ValidationReport(suite=SUITE, evaluated=0)
        report_dict = {"suite": SUITE, "passed": False, "failed": [
            {"expectation": e.rule, "severity": "critical", "column": None, "unexpected_count": 0,
             "sample_rows": [], "description": e.detail}]}
        reason = str(e)
    else:
        report_dict, reason = report.to_dict(), report.reason()

    rows = 0 if frame is None else len(frame)
    if frame is not None and report.passed:
        _write_lake(frame, lake_file(paths, entry.year, fetched.sha256), fetched.sha256, received_at, entry.url)
        status = "loaded"
    else:
        quarantined = paths.quarantine / fetched.path.name
        if not quarantined.exists():
            shutil.copyfile(fetched.path, quarantined)
        status = "quarantined"
    report_dict.update(status=status, rows=rows, reason=reason, year=entry.year, received_at=received_at)
    write_atomically(report_file(paths, fetched.sha256), json.dumps(report_dict, indent=2, default=str).encode())
    if status == "quarantined":
        write_atomically(paths.quarantine / f"{fetched.sha256}.report.json",
                         json.dumps(report_dict, indent=2, default=str).encode())
    append_ingest_log(paths.ingest_log, {**log, "status": status, "rows": rows, "reason": reason})
    return LandingResult(entry.year, fetched.sha256, status, rows, reason, report_dict, fetched.not_modified)


def is_accepted(paths: DataPaths, sha256: str) -> bool:
    """Whether this content was landed before and passed validation."""
    report = _load_report(paths, sha256)
    return bool(report and report.get("passed"))


def _load_report(paths: DataPaths, sha256: str) -> dict | None:
    path = report_file(paths, sha256)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _write_lake(frame: pd.DataFrame, target: Path, sha256: str, received_at: str, url: str) -> None:
    """One Parquet file per accepted file, with lineage columns; written aside, then renamed into place."""
    out = frame.assign(source_sha256=sha256, received_at=pd.Timestamp(received_at), release_url=url)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.partial")
    con = duckdb.connect()  # in-memory: not a writer of any warehouse file
    try:
        con.from_df(out).write_parquet(str(tmp))
    finally:
        con.close()
    tmp.replace(target)
