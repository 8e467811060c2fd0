"""Landing: archive by hash -> parse -> validate -> lake or quarantine -> one line in the ingest log.

Every dataset that arrives as files lands through ``land``, a batch at a time: a batch of inbox submissions,
or an official release (a batch of one, fetched from the release source by ``land_release``). What differs
per dataset (reading, typing, what a file is about) is in lib/datasets.py. Landing is content-addressed, so
the same bytes twice is a no-op reported as ``duplicate``. A correction is a new sha256, hence a new lake
file, and older ones stay. A file counts once its line is in the ingest log (lib/ingest_log.py), which also
decides whether it becomes current.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import duckdb
import pandas as pd
import requests

from dagster_project.lib.archive import DurableBatch, archive_path, file_sha256, utc_now
from dagster_project.lib.datasets import (
    RELEASES,
    SUBMISSIONS,
    TIER_DATASETS,
    WORK_UNITS,
    Arrival,
    Dataset,
    lake_dataset,
)
from dagster_project.lib.ingest_log import ACCEPTED, IngestLog, read_lines
from dagster_project.lib.quality import plain_reason, suite_path, validate_groups
from dagster_project.lib.registry import Registry, load_registry
from dagster_project.lib.sources import ReleaseEntry, SourceConfig, fetch_release
from dagster_project.lib.storage_caps import Storage, StorageFull, storage
from dagster_project.lib.submissions import FILE_INDEX, file_type_of
from dagster_project.paths import DBT_PROJECT_DIR, REFERENCE_DIR, DataPaths

__all__ = ["RELEASES", "SUBMISSIONS", "WORK_UNITS", "Arrival", "BatchOutcome", "LandingResult", "land",
           "land_release", "log_set_aside", "release_is_current", "report_file", "validation_fingerprint"]


@dataclass(frozen=True)
class LandingResult:
    dataset: str
    year: int | None
    sha256: str
    status: str  # loaded | duplicate | quarantined | rejected (not taken)
    rows: int
    reason: str
    report: dict
    original_name: str = ""
    changes_data: bool = False  # the ingest log's verdict: a build would publish something new

    @property
    def accepted(self) -> bool:
        return self.report.get("passed", False)




@dataclass
class BatchOutcome:
    results: list[LandingResult]  # one per file, in arrival order; then a `rejected` one per file not taken
    failed: list[tuple[Arrival, Exception]]  # files not archived (unreadable, or StorageFull): nothing of them landed


def report_file(paths: DataPaths, sha256: str, kind: str = "") -> Path:
    """Where the verdict on this content is kept (``kind``: the file type, for datasets judged per type)."""
    return paths.state / "reports" / (f"{sha256}.{kind}.json" if kind else f"{sha256}.json")


@cache
def validation_fingerprint(dataset: Dataset) -> str:
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


def land_release(cfg: SourceConfig, entry: ReleaseEntry, paths: DataPaths, run_id: str = "",
                 session: requests.Session | None = None, registry: Registry | None = None) -> LandingResult:
    """Fetch one release and land it, as a batch of one. Source errors propagate (nothing landed); a release
    that does not fit under the archive cap is not taken (a ``rejected`` result), and the release sensor asks
    for it again later."""
    paths.ensure()
    with tempfile.TemporaryDirectory(dir=paths.archive, prefix=".download.") as downloads:
        fetched = fetch_release(cfg, entry, paths.archive, paths.http_cache, Path(downloads), session)
        arrival = Arrival(fetched.path, entry.url, year=entry.year, ext=entry.format,
                          log=(("source_version", entry.fingerprint),))
        outcome = land(paths, TIER_DATASETS[entry.tier], [arrival], cfg.kind, run_id, registry)
    if not outcome.results:
        raise outcome.failed[0][1]
    return outcome.results[0]


def _storage(paths: DataPaths, run_id: str):
    """One landing's turn on the archive, its caps counted from the files and the ingest log's verdicts."""
    return storage(paths.archive, paths.quarantine, lambda: _verdicts(read_lines(paths.ingest_log)), run_id)


def _verdicts(lines):
    """(sha256, accepted, line) for each log line that judged a content."""
    for line in lines:
        if line.get("sha256") and line.get("status") in (*ACCEPTED, "quarantined"):
            yield line["sha256"], line["status"] in ACCEPTED, line


def release_is_current(paths: DataPaths, entry: ReleaseEntry) -> bool:
    """Whether the current release of the entry's tier and year is this entry (same version from the source):
    such an entry needs no landing. An entry with a sha256 is compared by content, others by their version."""
    log = IngestLog.of(paths.ingest_log)
    current = log.current_line((TIER_DATASETS[entry.tier].name, entry.year, None, None, None))
    if current is None:
        return False
    return current.get("sha256") == entry.sha256 if entry.sha256 else current.get("source_version") == entry.fingerprint


@dataclass
class _Arrived:
    arrival: Arrival
    name: str  # printable
    ext: str
    sha256: str
    path: Path  # in the archive
    frame_index: int | None = None  # its rows in the batch frame
    dataset: str = ""  # its lake folder and log dataset, once judged
    verdict: tuple[dict, str] | None = None  # (report, reason) once judged
    previous: dict | None = None  # the stored verdict on the same content
    same_as: int | None = None  # an earlier file of this batch with the same content


def land(paths: DataPaths, dataset: Dataset, arrivals: Sequence[Arrival], source: str = "inbox", run_id: str = "",
         registry: Registry | None = None) -> BatchOutcome:
    """Land a batch of files of one dataset: archive every file as received (streamed, whatever its size), then
    read each, validate all of them in one GX run, and write one lake file per year for the accepted ones.

    Each file gets its own verdict, as if it had come alone; one bad file never holds back the others.
    Order makes a crash at any point safe to re-run: archive, then lake files and quarantine links, then the
    ingest-log lines (the commit), then the reports, which mark the landing as done. If a step after the
    archive fails for the whole batch (a full disk), the error propagates and nothing of the batch is
    reported landed. A file that does not fit under the archive cap even with refused files evicted is not
    taken: it gets a ``rejected`` line saying why and comes back in ``failed`` (``StorageFull``), to wait
    where it came from; the files beside it that fit land.
    """
    paths.ensure()
    registry = registry or load_registry()
    with _storage(paths, run_id) as store:
        return _land_batch(paths, dataset, arrivals, source, run_id, registry, store)


def _land_batch(paths: DataPaths, dataset: Dataset, arrivals: Sequence[Arrival], source: str, run_id: str,
                registry: Registry, store: Storage) -> BatchOutcome:
    received = datetime.now(UTC)
    received_at = received.isoformat(timespec="microseconds")
    arrived, failed, full = _archive_all(paths, arrivals, store)
    first_of: dict[tuple[str, str], int] = {}
    cells: dict[int, object] = {}
    for i, f in enumerate(arrived):
        kind = _verdict_kind(dataset, f)
        if (f.sha256, kind) in first_of:
            f.same_as = first_of[f.sha256, kind]
            continue
        first_of[f.sha256, kind] = i
        f.previous = _load_report(paths, f.sha256, dataset, kind)
        if f.previous is not None:
            continue
        try:
            size = f.path.stat().st_size
            if dataset.max_bytes is not None and size > dataset.max_bytes:  # refused unread: never read it all
                raise dataset.format_error(_shown(f.name), "file_size", f"{size} bytes, over {dataset.max_bytes}")
            cells[i] = dataset.read(f.path.read_bytes(), _shown(f.name))
        except dataset.format_error as e:
            f.verdict = _unreadable(dataset, e.rule, e.detail), str(e)
        except Exception as e:  # a file must never crash landing: quarantine it with what went wrong
            detail = f"{e.__class__.__name__}: {e}"
            f.verdict = _unreadable(dataset, "unexpected_parse_error", detail), f"{_shown(f.name)}: {detail}"
    frame, facts = _judge(dataset, arrived, cells, registry, received)

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
            f.dataset = lake_dataset(dataset, fact.get("keys", {}))
            year, rows = fact.get("year"), fact.get("rows", 0)
            status = "loaded" if report["passed"] and year is not None else "quarantined"
            if status == "quarantined" or report.get("failed"):
                reason = plain_reason(report, _shown(f.name))
            report.update(status=status, rows=rows, reason=reason, year=year, received_at=received_at,
                          original_name=f.name, validation_fingerprint=validation_fingerprint(dataset),
                          **fact.get("keys", {}))
            if status == "quarantined":  # kept once: the quarantine names the archived bytes
                batch.link(f.path, paths.quarantine / f.path.name)
                batch.write(paths.quarantine / f"{f.sha256}.report.json", _report_bytes(report))
            log[i] = {**base, **_line(f, report), "status": status, "rows": rows, "reason": reason}, True
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
        f.dataset = lake_dataset(dataset, earlier)
        log[i] = {**base, **_line(f, earlier), "status": status, "rows": rows, "reason": reason}, False
        results[i] = LandingResult(f.dataset, earlier.get("year"), f.sha256, status, rows, reason, earlier,
                                   original_name=f.name)
    not_taken = [{**base, "dataset": dataset.name, "original_name": name, "status": "rejected", "rows": 0,
                  **({"year": arrival.year} if arrival.year is not None else {}),
                  "reason": f"{_shown(name)}: not taken, {why}; it waits {dataset.waits}"}
                 for arrival, name, why in full]
    # A source offers a waiting file again every few minutes: a refusal for the cap is logged once while it
    # lasts, so that a file too large for the cap does not rebuild and publish on every try.
    said = _last_reasons(paths, {line["original_name"] for line in not_taken}) if not_taken else {}
    repeated = [line for line in not_taken if (said.get(line["original_name"]) or "").startswith(
        f"{_shown(line['original_name'])}: not taken, ")]
    new_refusals = [(line, True) for line in not_taken if line not in repeated]
    lines = IngestLog.of(paths.ingest_log).append([*(line for line in log if line is not None), *new_refusals])
    for verdict in _verdicts(lines):
        store.judge(*verdict)
    written = iter(lines)
    results = [dataclasses.replace(r, changes_data=next(written)["changes_data"]) if r else r for r in results]
    unarchived = [LandingResult(dataset.name, line.get("year"), "", "rejected", 0, line["reason"], {},
                                original_name=line["original_name"], changes_data=line.get("changes_data", False))
                  for line in [*written, *repeated]]
    with DurableBatch() as batch:
        for f, r in zip(arrived, results, strict=True):
            if f.previous is None and f.same_as is None:
                batch.write(report_file(paths, f.sha256, _verdict_kind(dataset, f)), _report_bytes(r.report))
            elif r.status == "quarantined" and not (batch.holds(paths.quarantine / f.path.name)
                                                    or (paths.quarantine / f.path.name).exists()):
                batch.link(f.path, paths.quarantine / f.path.name)  # refused before, and its bytes were evicted
    store.enforce()
    return BatchOutcome([r for r in results if r is not None] + unarchived,
                        failed + [(arrival, StorageFull(why)) for arrival, _, why in full])


def _verdict_kind(dataset: Dataset, f: _Arrived) -> str:
    return f.ext if dataset.verdict_per_file_type else ""


def _shown(name: str) -> str:
    """A file's name as reasons show it: a release's URL by its last part."""
    return name.rsplit("/", 1)[-1]


def _line(f: _Arrived, report: dict) -> dict:
    """An ingest-log line's fields for a file: what it is, what it is about, what its source said."""
    return {"sha256": f.sha256, "original_name": f.name, "dataset": f.dataset, **dict(f.arrival.log),
            **_keys(report)}


def _last_reasons(paths: DataPaths, names: set[str]) -> dict[str, str]:
    """The reason of the latest log line of each of these original names."""
    return {line["original_name"]: line.get("reason") for line in read_lines(paths.ingest_log)
            if line.get("original_name") in names}


def _archive_all(paths: DataPaths, arrivals: Sequence[Arrival], store: Storage) -> tuple[
        list[_Arrived], list[tuple[Arrival, Exception]], list[tuple[Arrival, str, str]]]:
    """Every file kept under its hash, made durable together, before anything parses it. A file that does not
    fit under the archive cap, even with refused files evicted, is not taken: (arrival, name, why) in the
    third list, and the files after it go on."""
    arrived, failed, full = [], [], []
    relied_on: set[str] = set()  # archive names of this batch: never evicted to make room for another file
    with DurableBatch() as batch:
        for a in arrivals:
            # The archive keeps the bytes under their hash; the extension is the declared type or one of the
            # contract's, never the sender's name.
            ext = a.ext or file_type_of(a.original_name) or "bin"
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


def _judge(dataset: Dataset, arrived: list[_Arrived], cells: dict[int, object], registry: Registry,
           received: datetime) -> tuple[pd.DataFrame | None, dict[int, dict]]:
    """Type and validate the read files together; sets each file's verdict and returns the batch frame and,
    per frame index, what each file is about (rows, year, and the dataset's keys)."""
    pending = [arrived[i] for i in cells]
    for frame_index, f in enumerate(pending):
        f.frame_index = frame_index
    if not pending:
        return None, {}
    by_index = {f.frame_index: f.arrival for f in pending}
    files = [(cells[i], arrived[i].arrival) for i in cells]
    try:
        frame = dataset.normalize(files, registry, received)
        reports = validate_groups(frame, dataset.name, list(dataset.id_columns), FILE_INDEX,
                                  [f.frame_index for f in pending])
    except Exception:  # a file broke the batch: judge each alone, so that only it is quarantined
        frames = {}
        for f, one_file in zip(pending, files, strict=True):
            try:
                one = dataset.normalize([one_file], registry, received)
                report = validate_groups(one, dataset.name, list(dataset.id_columns), FILE_INDEX, [0])[0]
            except dataset.format_error as e:
                f.verdict = _unreadable(dataset, e.rule, e.detail), str(e)
                continue
            except Exception as e:  # a file must never crash landing: quarantine it with what went wrong
                detail = f"{e.__class__.__name__}: {e}"
                f.verdict = _unreadable(dataset, "unexpected_parse_error", detail), f"{_shown(f.name)}: {detail}"
                continue
            f.verdict = report.to_dict(), report.reason()
            frames[f.frame_index] = one.assign(**{FILE_INDEX: f.frame_index})
        frame = pd.concat(frames.values(), ignore_index=True) if frames else None
        return frame, dataset.facts(frame, by_index) if frame is not None else {}
    for f in pending:
        report = reports[f.frame_index]
        f.verdict = report.to_dict(), report.reason()
    return frame, dataset.facts(frame, by_index)



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


