"""Atomic publish of the marts: a new DuckDB file is built next to the published one, then renamed over it.

Readers holding the old file keep reading it (the rename does not touch an open inode); new readers see
the new file whole. A run that fails before the rename leaves the published file untouched. With
SPBE_WAREHOUSE=ducklake the new file's tables are first committed to the DuckLake catalog, one snapshot
(lib/ducklake.py); the manifest records the snapshot's id.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from dagster_project.lib import ducklake
from dagster_project.lib.archive import file_sha256, utc_now, write_atomically
from dagster_project.lib.ingest_log import read_lines
from dagster_project.lib.reference_files import REFERENCE_TABLES
from dagster_project.lib.snapshots import save_snapshot
from dagster_project.lib.sql_text import identifier, literal
from dagster_project.paths import REFERENCE_DIR, REPO_ROOT, DataPaths

MANIFEST_TABLE = "publish_manifest"
# The published file is written in the oldest storage format, so that every DuckDB from 0.10.3 (May 2024) on
# reads it: the Python package, the CLI, R, JDBC (DBeaver) and ODBC clients of 0.10.3 and 1.x, not only 2.x.
# It holds plain tables of standard types; the newer formats only compress better (2.0's own: ~15% fewer
# bytes; 1.2's: ~7%). DuckDB 0.10.0-0.10.2 refuse files of later writers whatever their format ("field id
# mismatch"), and 0.9 reads none (tested: tests/test_duckdb_clients.py).
STORAGE_VERSION = "v0.10.0"


MANIFEST_DESCRIPTION = ("What this file holds and where it came from: run id, code version, build fingerprint, "
                        "ingest-log position and hash, input hashes, row counts and checksums, storage format.")
MANIFEST_COLUMNS = (("key", "What the value is: run_id, published_at, code_version, log_position, tables, ..."),
                    ("value", "The value, as JSON."))
# table -> (description, ((column, description), ...)), from the dbt YAML
TableDocs = Mapping[str, tuple[str, Sequence[tuple[str, str]]]]


@dataclass(frozen=True)
class PublishResult:
    path: Path
    manifest: dict[str, Any]


def code_version() -> str:
    """The git revision of the code (with '-dirty' when the tree has changes), or SPBE_CODE_VERSION."""
    if os.environ.get("SPBE_CODE_VERSION"):
        return os.environ["SPBE_CODE_VERSION"]
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                             check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def log_inputs(paths: DataPaths, position: int) -> dict[str, Any]:
    """What a build read: the ingest log up to ``position`` (hashed, so a changed prefix shows), the files it
    accepted by dataset, and the reference tables."""
    h = hashlib.sha256()
    files: dict[str, int] = {}
    for line in read_lines(paths.ingest_log, upto=position):
        h.update(json.dumps(line, sort_keys=True).encode())
        if line.get("status") == "loaded":
            files[line["dataset"]] = files.get(line["dataset"], 0) + 1
    reference = {name: file_sha256(REFERENCE_DIR / name) for name in sorted(REFERENCE_TABLES.values())}
    return {"log_position": position, "log_sha256": h.hexdigest(), "files_loaded": files, "reference": reference}


def table_checksums(con: duckdb.DuckDBPyConnection, tables: list[str]) -> dict[str, dict[str, Any]]:
    """Row count and an order-independent checksum of each table's rows (sum of row hashes)."""
    out = {}
    for t in tables:
        n, checksum = con.execute(
            f"select count(*), coalesce(sum(hash(t))::hugeint, 0)::varchar from main.{identifier(t)} as t"  # noqa: S608
        ).fetchone()
        out[t] = {"rows": int(n), "checksum": checksum}
    return out


def _describe(con: duckdb.DuckDBPyConnection, docs: TableDocs) -> None:
    """The dbt YAML's descriptions as table and column comments, so that any client (DBeaver, the CLI's
    duckdb_columns(), `spbe export`) shows what a column means."""
    columns = {(t, c) for t, c in con.execute("select table_name, column_name from duckdb_columns() "
                                              "where database_name = current_database()").fetchall()}
    for table, (description, column_docs) in docs.items():
        if description:
            con.execute(f"comment on table main.{identifier(table)} is {literal(description)}")
        for column, text in column_docs:
            if text and (table, column) in columns:
                con.execute(f"comment on column main.{identifier(table)}.{identifier(column)} is {literal(text)}")


def _write_marts(build_db: Path, target: Path, run_id: str, tables: list[str], inputs: dict[str, Any],
                 fingerprint: str, data_dir: Path, docs: TableDocs) -> dict[str, Any]:
    """A new DuckDB file with the named marts and a publish_manifest table; returns the manifest."""
    con = duckdb.connect(str(target), config={"storage_compatibility_version": STORAGE_VERSION})
    try:
        if not tables:
            raise ValueError("no mart tables to publish")
        con.execute(f"attach {literal(str(build_db))} as build (read_only)")
        # One transaction for the tables, the manifest and the comments: hundreds of statements, each its own
        # commit otherwise (a comment per column).
        con.execute("begin")
        for t in tables:
            con.execute(f"create table main.{identifier(t)} as select * from build.main.{identifier(t)} order by all")  # noqa: S608
        manifest = {
            "run_id": run_id,
            "published_at": utc_now(),
            "code_version": code_version(),
            "duckdb_version": duckdb.__version__,
            "storage_compatibility_version": STORAGE_VERSION,
            "build_fingerprint": fingerprint,
            "log_position": inputs["log_position"],
            "data_dir": str(data_dir),
            "inputs": inputs,
            "tables": table_checksums(con, tables),
        }
        con.execute(f"create table {MANIFEST_TABLE} (key varchar, value json)")
        con.executemany(f"insert into {MANIFEST_TABLE} values (?, ?)",  # noqa: S608
                        [(k, json.dumps(v)) for k, v in manifest.items()])
        _describe(con, {**docs, MANIFEST_TABLE: (MANIFEST_DESCRIPTION, MANIFEST_COLUMNS)})
        con.execute("commit")
        con.execute("detach build")
        con.execute("checkpoint")
    finally:
        con.close()
    with open(target, "rb+") as f:
        os.fsync(f.fileno())
    return manifest


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish_marts(paths: DataPaths, run_id: str, tables: list[str], position: int, fingerprint: str,
                  keep_snapshots: int = 0, docs: TableDocs | None = None) -> PublishResult:
    """Copy the named mart tables of the build database into a new file and swap it in; the manifest records
    the ingest-log position the build read up to. Keep it as one of the last ``keep_snapshots`` snapshots
    (lib/snapshots.py).

    Only the marts dbt knows now are copied: a mart removed from the project may linger in build.duckdb
    (dbt never drops it), and must not be published with stale data.
    """
    published_db, manifest_path = paths.published_db, paths.published_manifest
    inputs = log_inputs(paths, position)
    with open(published_db.with_name(f".{published_db.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one publisher at a time; the kernel releases it if the process dies
        # Holding the lock, a partial file left here belongs to a publish that was killed: clear it.
        for stale in published_db.parent.glob(f".{published_db.name}.*.partial*"):
            stale.unlink(missing_ok=True)
        tmp = published_db.with_name(f".{published_db.name}.{run_id}.partial")
        try:
            manifest = _write_marts(paths.build_db, tmp, run_id, tables, inputs, fingerprint, paths.root,
                                    docs or {})
            if ducklake.backend() == "ducklake":  # committed first: a failure there leaves both unchanged
                lake = ducklake.setting(paths)
                manifest["ducklake"] = {"snapshot_id": ducklake.publish_snapshot(lake, tmp, [*tables, MANIFEST_TABLE]),
                                        "data_path": str(lake.data_path)}
            os.replace(tmp, published_db)
            _fsync_dir(published_db.parent)
        finally:
            tmp.unlink(missing_ok=True)
            Path(f"{tmp}.wal").unlink(missing_ok=True)
        write_atomically(manifest_path, (json.dumps(manifest, indent=2) + "\n").encode())
        save_snapshot(published_db, manifest, paths.snapshots, keep_snapshots)
    return PublishResult(published_db, manifest)
