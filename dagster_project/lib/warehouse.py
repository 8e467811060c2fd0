"""What a build must do, and the one build at a time that does it.

The published manifest says what the published file holds: the ingest-log position it was built from and
the fingerprint of the code and reference tables that built it. A build compares that with now:

- code or reference tables changed, no published file yet, or ``--force``: a **full** build;
- lines after the published position that change data: a **partial** build of the models downstream of the
  datasets they touch (the arrival marts alone for files refused or set aside);
- nothing that changes data: **no** build, no publish, no snapshot.

Builds hold ``warehouse/.build.lock`` (``flock``) from planning to publish: one at a time, and a build that
waits plans only when it has the lock, so it also publishes whatever landed while it waited. The kernel
releases the lock when its holder dies, so a killed build never blocks the next one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from dagster_project.lib.ingest_log import IngestLog, read_lines
from dagster_project.lib.reference_files import REFERENCE_TABLES
from dagster_project.paths import REFERENCE_DIR, REPO_ROOT, DataPaths

# What the marts are a function of, besides the data: change any of these and the next build is full. The
# dbt project, the Python the dbt Python model imports, and what a publish writes. (Landing code decides the
# verdict on new files; a file already judged is judged again when it changes: lib/ingest.py.)
BUILD_CODE = ("dbt/dbt_project.yml", "dbt/profiles.yml", "dbt/models", "dbt/macros", "dbt/tests",
              "dagster_project/lib/uncertainty.py", "dagster_project/lib/framework.py",
              "dagster_project/lib/publish.py")
LOCK_POLL_SECONDS = 0.2


@dataclass(frozen=True)
class BuildPlan:
    mode: str  # "none" | "partial" | "full"
    position: int  # the ingest-log position the build reads up to
    datasets: frozenset[str] = frozenset()  # partial: datasets whose current files changed
    arrivals_only: bool = False  # partial: only files refused or set aside (the arrival marts)
    reason: str = ""


def code_fingerprint() -> str:
    """One hash of the code that turns the lake into marts, and of the reference tables it seeds."""
    h = hashlib.sha256()
    for entry in BUILD_CODE:
        root = REPO_ROOT / entry
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()
                                                     and "__pycache__" not in p.parts)
        for f in files:
            h.update(str(f.relative_to(REPO_ROOT)).encode() + b"\0" + f.read_bytes())
    for name in sorted(REFERENCE_TABLES.values()):
        h.update(name.encode() + b"\0" + (REFERENCE_DIR / name).read_bytes())
    return h.hexdigest()


def read_manifest(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def plan_build(paths: DataPaths, force: bool = False, fingerprint: str | None = None) -> BuildPlan:
    """The build that makes the published file current (see the module docstring)."""
    position = IngestLog.of(paths.ingest_log).position()
    published = read_manifest(paths.published_manifest)
    fingerprint = fingerprint or code_fingerprint()
    if force:
        return BuildPlan("full", position, reason="a full build was asked for (--force)")
    if published is None or not paths.published_db.exists():
        return BuildPlan("full", position, reason="nothing is published yet")
    if not paths.build_db.exists():
        return BuildPlan("full", position, reason="the build database is missing")
    if refusal := newer_format(paths.build_db):
        return BuildPlan("full", position, reason=f"the build database was written by a newer DuckDB ({refusal})")
    if published.get("build_fingerprint") != fingerprint:
        return BuildPlan("full", position, reason="the code or the reference tables changed since the last publish")
    if built_with(paths) not in (None, fingerprint):
        return BuildPlan("full", position, reason="the build database was last built by other code (a build that "
                                                  "failed before the code was changed back)")
    try:
        stray = absolute_source_paths(paths.build_db)
    except duckdb.IOException:  # a build is writing it: asked outside the build lock (the CLI), so say "build"
        return BuildPlan("partial", position, reason="a build is running")
    if stray:
        return BuildPlan("full", position, reason=f"the build database reads files by absolute path ({stray[0]})")
    since = published.get("log_position", 0)
    lines = [line for line in read_lines(paths.ingest_log, after=since, upto=position) if line.get("changes_data")]
    if not lines:
        return BuildPlan("none", position, reason=f"no new data since log position {since}")
    data = frozenset(line["dataset"] for line in lines if line["status"] in ("loaded", "duplicate"))
    return BuildPlan("partial", position, data, arrivals_only=not data,
                     reason=f"{len(lines)} new ingest-log line(s) since position {since}")


def newer_format(build_db: Path) -> str | None:
    """DuckDB's refusal when the build database is in a storage format newer than this DuckDB reads (the
    project used DuckDB 2.0 before 1.5.5: docs/scaling.md); None when it opens, is busy or is absent."""
    try:
        duckdb.connect(str(build_db), read_only=True).close()
    except duckdb.IOException as e:
        first = str(e).splitlines()[0]
        return first if "version number" in first else None
    return None


def set_aside_newer_format(paths: DataPaths) -> Path | None:
    """Before a full build: a build database this DuckDB cannot read is moved aside (kept, one copy), so that
    dbt builds a new one. It holds nothing the lake does not: every model is rebuilt from the lake."""
    if not paths.build_db.exists() or newer_format(paths.build_db) is None:
        return None
    aside = paths.build_db.with_name(paths.build_db.name + ".newer-format")
    os.replace(paths.build_db, aside)
    wal = paths.build_db.with_name(paths.build_db.name + ".wal")
    if wal.exists():
        os.replace(wal, aside.with_name(aside.name + ".wal"))
    return aside


def built_with(paths: DataPaths) -> str | None:
    """The fingerprint of the code the build database was last built (or half built) with."""
    try:
        return (paths.warehouse / "build.fingerprint").read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None


def mark_build(paths: DataPaths, fingerprint: str) -> None:
    """Written before dbt starts: a build that fails half way leaves the database marked with its code."""
    from dagster_project.lib.archive import write_atomically

    write_atomically(paths.warehouse / "build.fingerprint", fingerprint.encode())


# Table functions that read files; a path they are given is resolved against file_search_path when relative.
_READS = re.compile(r"\b(?:read_parquet|read_json(?:_auto)?|read_csv(?:_auto)?|parquet_scan|glob)\s*\(\s*'([^']*)'",
                    re.IGNORECASE)


def absolute_source_paths(build_db: Path) -> list[str]:
    """Every file path that a view of the dbt project in the build database reads by an absolute path: such a
    view reads one data directory for ever, whatever SPBE_DATA_DIR says now (dbt's sources are relative; see
    the profile). Relations the project no longer has are left out: nothing reads them."""
    from dagster_project.lib.dbt_project import project_graph

    if not build_db.exists():
        return []
    models = {(n.schema, n.name) for n in project_graph().of_type("model")}
    with duckdb.connect(str(build_db), read_only=True) as con:
        views = con.execute("select schema_name, view_name, sql from duckdb_views() where not internal").fetchall()
    return [f"{schema}.{name} reads {path}" for schema, name, sql in views if (schema, name) in models
            for path in _READS.findall(sql or "") if os.path.isabs(path)]


@dataclass(frozen=True)
class LockHolder:
    run_id: str
    pid: int
    since: str


@contextlib.contextmanager
def build_lock(paths: DataPaths, run_id: str, on_wait: Callable[[LockHolder | None], None] | None = None,
               timeout: float | None = None) -> Iterator[None]:
    """Hold the one build lock of this data directory; ``on_wait`` hears once who holds it if we must wait."""
    paths.warehouse.mkdir(parents=True, exist_ok=True)
    lock_path = paths.warehouse / ".build.lock"
    started = time.monotonic()
    with open(lock_path, "a+") as lock:
        told = False
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told and on_wait is not None:
                    on_wait(_holder(lock_path))
                    told = True
                if timeout is not None and time.monotonic() - started > timeout:
                    raise TimeoutError(f"the build lock {lock_path} is still held after {timeout:.0f} s") from None
                time.sleep(LOCK_POLL_SECONDS)
        holder = {"run_id": run_id, "pid": os.getpid(), "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        lock.seek(0)
        lock.truncate()
        lock.write(json.dumps(holder))
        lock.flush()
        try:
            yield
        finally:
            lock.seek(0)
            lock.truncate()


def _holder(lock_path: Path) -> LockHolder | None:
    try:
        return LockHolder(**json.loads(lock_path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
