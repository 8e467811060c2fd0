"""Landing: archive by hash -> parse -> validate -> lake or quarantine -> one line in the ingest log.

Two datasets arrive as files: official releases (one results table per year, from the release source) and
regional submissions (one institution x year x stage, from the inbox). Both land the same way. Landing is
content-addressed, so the same bytes twice is a no-op reported as ``duplicate``. A correction is a new
sha256, hence a new lake file, and older ones stay. A file counts once its line is in the ingest log
(lib/ingest_log.py), which also decides whether it becomes current.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
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

from dagster_project.lib.archive import (
    DurableBatch,
    archive_path,
    file_sha256,
    link_atomically,
    utc_now,
    write_atomically,
)
from dagster_project.lib.inbox import Claim
from dagster_project.lib.ingest_log import ACCEPTED, IngestLog, read_lines
from dagster_project.lib.quality import plain_reason, suite_path, validate_frame, validate_groups
from dagster_project.lib.registry import Registry, load_registry
from dagster_project.lib.releases import ReleaseFormatError, normalize_release, read_release_csv
from dagster_project.lib.sources import ReleaseEntry, SourceConfig, fetch_release
from dagster_project.lib.storage_caps import Storage, StorageFull, storage
from dagster_project.lib.submissions import (
    FILE_INDEX,
    MAX_FILE_BYTES,
    SubmissionFormatError,
    file_type_of,
    normalize_submissions,
    read_submission,
)
from dagster_project.paths import DBT_PROJECT_DIR, REFERENCE_DIR, DataPaths


@dataclass(frozen=True)
class Dataset:
    name: str  # lake folder, ingest-log dataset and GX suite name
    id_columns: tuple[str, ...]  # shown next to each failing value
    code: tuple[str, ...]  # lib modules a verdict depends on, besides the suite and the reference tables


RELEASES = Dataset("official_results", ("row_number", "year", "institution_name", "kemendagri_code"),
                   ("releases.py", "framework.py", "registry.py", "quality.py", "values.py"))
SUBMISSIONS = Dataset("submissions", ("row_number", "institution_code", "stage", "indicator"),
                      ("submissions.py", "framework.py", "registry.py", "quality.py", "values.py"))
# Work units' (OPD) own self-assessments: the same contract and suite, their own lake folder and log dataset,
# so that they never count as their institution's submission.
WORK_UNITS = "work_unit_submissions"


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
    changes_data: bool = False  # the ingest log's verdict: a build would publish something new

    @property
    def accepted(self) -> bool:
        return self.report.get("passed", False)


def lake_file(paths: DataPaths, year: int, sha256: str, dataset: str = RELEASES.name) -> Path:
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
    files = [suite_path(dataset.name), DBT_PROJECT_DIR / "dbt_project.yml", *sorted(REFERENCE_DIR.glob("*.csv")),
             *(Path(__file__).parent / f for f in dataset.code)]
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


# A parser turns bytes into (frame or None, report dict, one-line reason).
Parser = Callable[[bytes], tuple[pd.DataFrame | None, dict, str]]


def land_release(cfg: SourceConfig, entry: ReleaseEntry, paths: DataPaths, run_id: str = "",
                 session: requests.Session | None = None, registry: Registry | None = None) -> LandingResult:
    """Fetch and land one release; source errors propagate (nothing landed), data errors quarantine. A new
    release that does not fit under the archive cap is removed again and ``StorageFull`` raised: like a source
    error, nothing of it landed, and the release sensor asks again later."""
    paths.ensure()

    def parse(content: bytes):
        return _validated(RELEASES, lambda: normalize_release(
            read_release_csv(content, Path(entry.url).name), entry.year, registry or load_registry()),
            Path(entry.url).name, (ReleaseFormatError,))

    with _storage(paths, run_id) as store:
        fetched = fetch_release(cfg, entry, paths.archive, paths.http_cache, session)
        if store.caps.bounded and fetched.path.name not in store.kept:  # new bytes: they must fit
            size = fetched.path.stat().st_size
            why = None if store.fits(size) else store.make_room(size, {fetched.path.name})
            if why:
                fetched.path.unlink()
                raise StorageFull(f"{Path(entry.url).name}: not landed, {why}")
            store.add(fetched.path.name, size)
        result = _land(paths, fetched.path, fetched.sha256, entry, cfg.kind, parse, run_id)
        store.judge(result.sha256, result.status in ACCEPTED, {"original_name": entry.url, "reason": result.reason,
                                                              "received_at": result.report.get("received_at")})
        store.enforce()
    return dataclasses.replace(result, not_modified=fetched.not_modified)


def _storage(paths: DataPaths, run_id: str):
    """One landing's turn on the archive, its caps counted from the files and the ingest log's verdicts."""
    return storage(paths.archive, paths.quarantine, lambda: _verdicts(read_lines(paths.ingest_log)), run_id)


def _verdicts(lines):
    """(sha256, accepted, line) for each log line that judged a content."""
    for line in lines:
        if line.get("sha256") and line.get("status") in (*ACCEPTED, "quarantined"):
            yield line["sha256"], line["status"] in ACCEPTED, line


def release_is_current(paths: DataPaths, entry: ReleaseEntry) -> bool:
    """Whether the current release of the entry's year is this entry (same version from the source): such
    an entry needs no landing. An entry with a sha256 is compared by content, others by their version."""
    log = IngestLog.of(paths.ingest_log)
    current = log.current_line((RELEASES.name, entry.year, None, None, None))
    if current is None:
        return False
    return current.get("sha256") == entry.sha256 if entry.sha256 else current.get("source_version") == entry.fingerprint


@dataclass
class BatchOutcome:
    results: list[LandingResult]  # one per file, in arrival order; then a `rejected` one per file not taken
    failed: list[tuple[Claim, Exception]]  # files not archived (unreadable, or StorageFull): nothing of them landed


@dataclass
class _Arrived:
    arrival: Claim
    name: str  # printable
    ext: str
    sha256: str
    path: Path  # in the archive
    frame_index: int | None = None  # its rows in the batch frame
    dataset: str = SUBMISSIONS.name  # or WORK_UNITS
    verdict: tuple[dict, str] | None = None  # (report, reason) once judged
    previous: dict | None = None  # the stored verdict on the same content
    same_as: int | None = None  # an earlier file of this batch with the same content


def land_submissions(paths: DataPaths, arrivals: list[Claim], source: str = "inbox", run_id: str = "",
                     registry: Registry | None = None) -> BatchOutcome:
    """Land a batch of submission files: archive every file as received (streamed, whatever its size), then
    parse each, validate all of them in one GX run, and write one lake file per year for the accepted ones.

    Each file gets its own verdict, as if it had come alone; one bad file never holds back the others.
    Order makes a crash at any point safe to re-run: archive, then lake files and quarantine links, then the
    ingest-log lines (the commit), then the reports, which mark the landing as done. If a step after the
    archive fails for the whole batch (a full disk), the error propagates and nothing of the batch is
    reported landed. A file that does not fit under the archive cap even with refused files evicted is not
    taken: it gets a ``rejected`` line saying why and comes back in ``failed`` (``StorageFull``), to wait in
    the inbox; the files beside it that fit land.
    """
    paths.ensure()
    registry = registry or load_registry()
    with _storage(paths, run_id) as store:
        return _land_batch(paths, arrivals, source, run_id, registry, store)


def _land_batch(paths: DataPaths, arrivals: list[Claim], source: str, run_id: str, registry: Registry,
                store: Storage) -> BatchOutcome:
    received = datetime.now(UTC)
    received_at = received.isoformat(timespec="microseconds")
    arrived, failed, full = _archive_all(paths, arrivals, store)
    first_of: dict[tuple[str, str], int] = {}
    tables: list[dict[str, list[str]]] = []
    for i, f in enumerate(arrived):
        if (f.sha256, f.ext) in first_of:
            f.same_as = first_of[f.sha256, f.ext]
            continue
        first_of[f.sha256, f.ext] = i
        f.previous = _load_report(paths, f.sha256, SUBMISSIONS, f.ext)
        if f.previous is not None:
            continue
        try:
            size = f.path.stat().st_size
            if size > MAX_FILE_BYTES:  # refused unread: never pull a huge file into memory
                raise SubmissionFormatError(f.name, "file_size", f"{size} bytes, over {MAX_FILE_BYTES}")
            tables.append(read_submission(f.path.read_bytes(), f.name).table)
            f.frame_index = len(tables) - 1
        except SubmissionFormatError as e:
            f.verdict = _unreadable(SUBMISSIONS, e.rule, e.detail), str(e)
        except Exception as e:  # a file must never crash landing: quarantine it with what went wrong
            detail = f"{e.__class__.__name__}: {e}"
            f.verdict = _unreadable(SUBMISSIONS, "unexpected_parse_error", detail), f"{f.name}: {detail}"
    frame, facts = _judge(arrived, tables, registry, received)

    results: list[LandingResult | None] = [None] * len(arrived)
    # Log lines in arrival order: the latest landing of an institution's file decides its current revision.
    log: list[tuple[dict, bool] | None] = [None] * len(arrived)
    base = {"source": source, "run_id": run_id, "received_at": received_at}
    # Two runs may land the same content at once: the lake's check "already there?" and the commit of the new
    # Parquet files happen under one lock, so a file's rows are never in the lake twice.
    with _lake_lock(paths), DurableBatch() as batch:
        for i, f in enumerate(arrived):
            if f.previous is not None or f.same_as is not None:
                continue  # decided once the first file of this content is
            report, reason = f.verdict
            fact = facts.get(f.frame_index, {})
            f.dataset = WORK_UNITS if fact.get("keys", {}).get("work_unit") else SUBMISSIONS.name
            year, rows = fact.get("year"), fact.get("rows", 0)
            status = "loaded" if report["passed"] and year is not None else "quarantined"
            if status == "quarantined" or report.get("failed"):
                reason = plain_reason(report, f.name)
            report.update(status=status, rows=rows, reason=reason, year=year, received_at=received_at,
                          original_name=f.name, validation_fingerprint=validation_fingerprint(SUBMISSIONS),
                          **fact.get("keys", {}))
            if status == "quarantined":  # kept once: the quarantine names the archived bytes
                batch.link(f.path, paths.quarantine / f.path.name)
                batch.write(paths.quarantine / f"{f.sha256}.report.json", _report_bytes(report))
            log[i] = {**base, "sha256": f.sha256, "original_name": f.name, "dataset": f.dataset,
                      **_keys(report), "status": status, "rows": rows, "reason": reason}, True
            results[i] = LandingResult(f.dataset, year, f.sha256, status, rows, reason, report,
                                       original_name=f.name)
        accepted = {f.frame_index: f for f, r in zip(arrived, results, strict=True) if r and r.status == "loaded"}
        _write_lake_batch(paths, batch, frame, accepted, received_at)
    for i, f in enumerate(arrived):  # later copies of a content, and contents judged before
        if results[i] is not None:
            continue
        earlier = results[f.same_as].report if f.same_as is not None and results[f.same_as] else (
            arrived[f.same_as].previous if f.same_as is not None else f.previous)
        status = "duplicate" if earlier["passed"] else "quarantined"
        reason = f"same content as an earlier file ({earlier['status']}): {earlier.get('reason', '')}".rstrip(": ")
        rows = earlier.get("rows", 0)
        f.dataset = WORK_UNITS if earlier.get("work_unit") else SUBMISSIONS.name
        log[i] = {**base, "sha256": f.sha256, "original_name": f.name, "dataset": f.dataset, **_keys(earlier),
                  "status": status, "rows": rows, "reason": reason}, False
        results[i] = LandingResult(f.dataset, earlier.get("year"), f.sha256, status, rows, reason, earlier,
                                   original_name=f.name)
    not_taken = [{**base, "dataset": SUBMISSIONS.name, "original_name": name, "status": "rejected", "rows": 0,
                  "reason": f"{name}: not taken, {why}; it waits in the inbox"} for _, name, why in full]
    # The inbox sensor offers a waiting file again every few minutes: a refusal for the cap is logged once
    # while it lasts, so that a file too large for the cap does not rebuild and publish on every try.
    said = _last_reasons(paths, {line["original_name"] for line in not_taken}) if not_taken else {}
    repeated = [line for line in not_taken
                if (said.get(line["original_name"]) or "").startswith(f"{line['original_name']}: not taken, ")]
    new_refusals = [(line, True) for line in not_taken if line not in repeated]
    lines = IngestLog.of(paths.ingest_log).append([*(line for line in log if line is not None), *new_refusals])
    for verdict in _verdicts(lines):
        store.judge(*verdict)
    written = iter(lines)
    results = [dataclasses.replace(r, changes_data=next(written)["changes_data"]) if r else r for r in results]
    unarchived = [LandingResult(SUBMISSIONS.name, None, "", "rejected", 0, line["reason"], {},
                                original_name=line["original_name"], changes_data=line.get("changes_data", False))
                  for line in [*written, *repeated]]
    with DurableBatch() as batch:
        for f, r in zip(arrived, results, strict=True):
            if f.previous is None and f.same_as is None:
                batch.write(report_file(paths, f.sha256, f.ext), _report_bytes(r.report))
            elif r.status == "quarantined" and not (batch.holds(paths.quarantine / f.path.name)
                                                    or (paths.quarantine / f.path.name).exists()):
                batch.link(f.path, paths.quarantine / f.path.name)  # refused before, and its bytes were evicted
    store.enforce()
    return BatchOutcome([r for r in results if r is not None] + unarchived,
                        failed + [(claim, StorageFull(why)) for claim, _, why in full])


def _last_reasons(paths: DataPaths, names: set[str]) -> dict[str, str]:
    """The reason of the latest log line of each of these original names."""
    return {line["original_name"]: line.get("reason") for line in read_lines(paths.ingest_log)
            if line.get("original_name") in names}


def _archive_all(paths: DataPaths, arrivals: list[Claim], store: Storage) -> tuple[
        list[_Arrived], list[tuple[Claim, Exception]], list[tuple[Claim, str, str]]]:
    """Every file kept under its hash, made durable together, before anything parses it. A file that does not
    fit under the archive cap, even with refused files evicted, is not taken: (claim, name, why) in the third
    list, and the files after it go on."""
    arrived, failed, full = [], [], []
    relied_on: set[str] = set()  # archive names of this batch: never evicted to make room for another file
    with DurableBatch() as batch:
        for a in arrivals:
            # The archive keeps the bytes under their hash; the extension is one of three, never the sender's name.
            ext = file_type_of(a.original_name) or "bin"
            # The name is only ever shown: make it printable UTF-8 whatever bytes it came with.
            name = a.original_name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            try:
                size = os.stat(a.path).st_size
                if not store.fits(size):
                    # Bytes already kept need no room: hashed in place, never copied while they may not fit.
                    kept = archive_path(paths.archive, file_sha256(a.path), ext)
                    why = None if kept.exists() or batch.holds(kept) else store.make_room(size, relied_on)
                    if why:
                        full.append((a, name, why))
                        continue
                before = batch.pending_count
                sha, path = batch.archive(paths.archive, a.path, ext)
            except OSError as e:  # this file only (unreadable, vanished): the others go on
                failed.append((a, e))
                continue
            if batch.pending_count > before:
                store.add(path.name, size)
            relied_on.add(path.name)
            arrived.append(_Arrived(a, name, ext, sha, path))
    return arrived, failed, full


def _judge(arrived: list[_Arrived], tables: list[dict[str, list[str]]], registry: Registry,
           received: datetime) -> tuple[pd.DataFrame | None, dict[int, dict]]:
    """Type and validate the parsed files together; sets each file's verdict and returns the batch frame
    and, per frame index, what each file is about (rows, year, institution, stage, late)."""
    pending = [f for f in arrived if f.frame_index is not None]
    if not pending:
        return None, {}
    try:
        frame = normalize_submissions(tables, registry, received)
        reports = validate_groups(frame, SUBMISSIONS.name, list(SUBMISSIONS.id_columns), FILE_INDEX)
    except Exception:  # a file broke the batch: judge each alone, so that only it is quarantined
        frames = {}
        for f in pending:
            one, report, reason = _validated(SUBMISSIONS, lambda f=f: normalize_submissions(
                [tables[f.frame_index]], registry, received).drop(columns=FILE_INDEX), f.name, (SubmissionFormatError,))
            f.verdict = report, reason
            if one is not None:
                frames[f.frame_index] = one.assign(**{FILE_INDEX: f.frame_index})
        frame = pd.concat(frames.values(), ignore_index=True) if frames else None
        return frame, _file_facts(frame) if frame is not None else {}
    for f in pending:
        report = reports[f.frame_index]
        f.verdict = report.to_dict(), report.reason()
    return frame, _file_facts(frame)


def _file_facts(frame: pd.DataFrame) -> dict[int, dict]:
    """Per file: rows, its one year (None if several or none), and what it is about when it says so
    unambiguously."""
    g = frame.groupby(FILE_INDEX)
    stats = g.agg(rows=("row_number", "size"), years=("year", "nunique"), year=("year", "first"),
                  ids=("institution_id", "nunique"), institution_id=("institution_id", "first"),
                  stages=("stage", "nunique"), stage=("stage", "first"), is_late=("is_late", "any"),
                  units=("work_unit", "nunique"), work_unit=("work_unit", "first"), coverage=("coverage", "min"))
    out = {}
    for k, r in zip(stats.index, stats.itertuples(index=False), strict=True):
        out[int(k)] = {"rows": int(r.rows), "year": int(r.year) if r.years == 1 else None, "keys": {
            "institution_id": str(r.institution_id) if r.ids == 1 else None,
            "stage": str(r.stage) if r.stages == 1 else None, "is_late": bool(r.is_late),
            "work_unit": str(r.work_unit) if r.units == 1 else None,
            "coverage": float(r.coverage) if pd.notna(r.coverage) else None}}
    return out


def _write_lake_batch(paths: DataPaths, batch: DurableBatch, frame: pd.DataFrame | None,
                      accepted: dict[int, _Arrived], received_at: str) -> None:
    """One Parquet file per dataset and year for the files a batch accepted, with lineage columns, named by
    the hash of the contents it holds: lake/<dataset>/year=<YYYY>/<hash>.parquet. A file already in the lake
    (landed by a run that stopped before writing its report) is not written twice."""
    if frame is None or not accepted:
        return
    rows = frame[frame[FILE_INDEX].isin(list(accepted))]
    out = rows.assign(
        source_sha256=rows[FILE_INDEX].map({k: f.sha256 for k, f in accepted.items()}).astype("str"),
        received_at=pd.Timestamp(received_at),
        original_name=rows[FILE_INDEX].map({k: f.name for k, f in accepted.items()}).astype("str"),
        dataset=rows[FILE_INDEX].map({k: f.dataset for k, f in accepted.items()}),
    ).drop(columns=FILE_INDEX)
    with duckdb.connect() as con:  # in-memory: not a writer of any warehouse file
        for (dataset, year), part in out.groupby(["dataset", "year"]):
            part = part.drop(columns="dataset")
            folder = paths.lake_dataset(dataset) / f"year={int(year)}"
            part = part[~part["source_sha256"].isin(_contents_in(con, folder))]
            if part.empty:
                continue
            members = "\n".join(sorted(part["source_sha256"].unique()))
            target = folder / f"{hashlib.sha256(members.encode()).hexdigest()}.parquet"
            con.from_df(part).write_parquet(str(batch.reserve(target)))


@contextlib.contextmanager
def _lake_lock(paths: DataPaths):
    paths.lake.mkdir(parents=True, exist_ok=True)
    with open(paths.lake / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released by the kernel if this process dies
        yield


def _contents_in(con: duckdb.DuckDBPyConnection, folder: Path) -> set[str]:
    if not any(folder.glob("*.parquet")):
        return set()
    rows = con.execute("select distinct source_sha256 from read_parquet(?)", [str(folder / "*.parquet")]).fetchall()
    return {r[0] for r in rows}


def _report_bytes(report: dict) -> bytes:
    # Compact: an indent switches json to its pure-Python encoder, several times slower over 25,000 reports.
    return json.dumps(report, default=str).encode()


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


def _land(paths: DataPaths, archived: Path, sha256: str, entry: ReleaseEntry, source: str, parse: Parser,
          run_id: str) -> LandingResult:
    """Land one release file. Order makes a crash at any point safe to re-run: archive (done by the caller),
    lake file or quarantine link (each atomic), then the ingest-log line (the commit), then the report."""
    received_at = utc_now()
    log = {"sha256": sha256, "original_name": entry.url, "source": source, "source_version": entry.fingerprint,
           "dataset": RELEASES.name, "received_at": received_at, "run_id": run_id}
    previous = _load_report(paths, sha256, RELEASES)
    if previous is not None:
        status = "duplicate" if previous["passed"] else "quarantined"
        reason = f"same content as an earlier file ({previous['status']})"
        (line,) = IngestLog.of(paths.ingest_log).append([({**log, **_keys(previous), "status": status,
                                                        "rows": previous.get("rows", 0), "reason": reason}, False)])
        return LandingResult(RELEASES.name, previous.get("year"), sha256, status, previous.get("rows", 0), reason,
                             previous, original_name=entry.url, changes_data=line["changes_data"])

    frame, report, reason = parse(archived.read_bytes())
    year = entry.year if frame is not None else None
    rows = 0 if frame is None else len(frame)
    if frame is not None and report["passed"]:
        _write_lake(frame, lake_file(paths, year, sha256), sha256, received_at, entry.url)
        status = "loaded"
    else:
        status = "quarantined"
        link_atomically(archived, paths.quarantine / archived.name)  # kept once: a second name, not a copy
    if report.get("failed"):
        reason = plain_reason(report, Path(entry.url).name)
    report.update(status=status, rows=rows, reason=reason, year=year, received_at=received_at,
                  original_name=entry.url, validation_fingerprint=validation_fingerprint(RELEASES))
    report_bytes = _report_bytes(report)
    if status == "quarantined":
        write_atomically(paths.quarantine / f"{sha256}.report.json", report_bytes)
    (line,) = IngestLog.of(paths.ingest_log).append(
        [({**log, **_keys(report), "status": status, "rows": rows, "reason": reason}, True)])
    write_atomically(report_file(paths, sha256), report_bytes)
    return LandingResult(RELEASES.name, year, sha256, status, rows, reason, report, original_name=entry.url,
                         changes_data=line["changes_data"])


def log_set_aside(paths: DataPaths, entries: list[tuple[str, str, Path]], run_id: str = "") -> list[LandingResult]:
    """``rejected`` lines for inbox entries set aside unopened (a folder, a FIFO, a link, ...)."""
    received_at = utc_now()
    lines = [({"dataset": SUBMISSIONS.name, "original_name": name, "source": "inbox", "run_id": run_id,
               "received_at": received_at, "status": "rejected", "rows": 0,
               "reason": f"{name}: {why}; set aside unopened in {where}"}, True) for name, why, where in entries]
    written = IngestLog.of(paths.ingest_log).append(lines)
    return [LandingResult(SUBMISSIONS.name, None, "", "rejected", 0, line["reason"], {}, original_name=name,
                          changes_data=line["changes_data"])
            for (name, _, _), line in zip(entries, written, strict=True)]


def _keys(report: dict) -> dict:
    """What a file is about, as its verdict says (releases name only their year)."""
    return {k: report.get(k) for k in ("year", "institution_id", "stage", "work_unit", "coverage", "is_late")}


def _unreadable(dataset: Dataset, rule: str, detail: str) -> dict:
    return {"suite": dataset.name, "passed": False, "failed": [
        {"expectation": rule, "severity": "critical", "column": None, "unexpected_count": 0,
         "sample_rows": [], "description": detail}]}


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
