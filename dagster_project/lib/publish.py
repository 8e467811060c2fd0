"""Atomic publish of the marts: a new DuckDB file is built next to the published one, then renamed over it.

Readers holding the old file keep reading it (the rename does not touch an open inode); new readers see
the new file whole. A run that fails before the rename leaves the published file untouched.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from dagster_project.lib.archive import file_sha256, utc_now, write_atomically
from dagster_project.lib.reference import REFERENCE_TABLES
from dagster_project.lib.snapshots import save_snapshot
from dagster_project.paths import REFERENCE_DIR, REPO_ROOT, DataPaths

MANIFEST_TABLE = "publish_manifest"
# What the marts are a function of, besides their inputs: change any of these and the build re-runs.
BUILD_CODE = ("dbt/dbt_project.yml", "dbt/profiles.yml", "dbt/models", "dbt/macros", "dbt/tests",
              "expectations", "dagster_project")


@dataclass(frozen=True)
class PublishResult:
    path: Path
    manifest: dict[str, Any]


def _literal(text: str) -> str:
    """A SQL string literal. Only for ATTACH, which takes no bound parameters; paths here are ours."""
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


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


def input_hashes(paths: DataPaths) -> dict[str, str]:
    """sha256 of every input of the marts: lake files (named by their hash), the ingest log (it decides
    which revision is current) and the reference tables."""
    lake = {f"lake/{p.relative_to(paths.lake)}": p.stem for p in sorted(paths.lake.glob("*/*/*.parquet"))}
    if paths.ingest_log.exists():
        lake["state/ingest_log.jsonl"] = file_sha256(paths.ingest_log)
    reference = {f"reference/{name}": file_sha256(REFERENCE_DIR / name) for name in REFERENCE_TABLES.values()}
    return {**lake, **reference}


def build_fingerprint(inputs: dict[str, str]) -> str:
    """One hash of the inputs and of the code that turns them into marts."""
    h = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode())
    for entry in BUILD_CODE:
        root = REPO_ROOT / entry
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()
                                                     and "__pycache__" not in p.parts)
        for f in files:
            h.update(str(f.relative_to(REPO_ROOT)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def published_fingerprint(manifest_path: Path) -> str | None:
    try:
        return json.loads(manifest_path.read_text(encoding="utf-8")).get("build_fingerprint")
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def table_checksums(con: duckdb.DuckDBPyConnection, tables: list[str]) -> dict[str, dict[str, Any]]:
    """Row count and an order-independent checksum of each table's rows (sum of row hashes)."""
    out = {}
    for t in tables:
        n, checksum = con.execute(
            f"select count(*), coalesce(sum(hash(t))::hugeint, 0)::varchar from main.{_ident(t)} as t"  # noqa: S608
        ).fetchone()
        out[t] = {"rows": int(n), "checksum": checksum}
    return out


def _write_marts(build_db: Path, target: Path, run_id: str, tables: list[str], inputs: dict[str, str],
                 fingerprint: str) -> dict[str, Any]:
    """A new DuckDB file with the named marts and a publish_manifest table; returns the manifest."""
    con = duckdb.connect(str(target))
    try:
        if not tables:
            raise ValueError("no mart tables to publish")
        con.execute(f"attach {_literal(str(build_db))} as build (read_only)")
        for t in tables:
            con.execute(f"create table main.{_ident(t)} as select * from build.main.{_ident(t)} order by all")  # noqa: S608
        con.execute("detach build")
        manifest = {
            "run_id": run_id,
            "published_at": utc_now(),
            "code_version": code_version(),
            "duckdb_version": duckdb.__version__,
            "build_fingerprint": fingerprint,
            "inputs": dict(sorted(inputs.items())),
            "tables": table_checksums(con, tables),
        }
        con.execute(f"create table {MANIFEST_TABLE} (key varchar, value json)")
        con.executemany(f"insert into {MANIFEST_TABLE} values (?, ?)",  # noqa: S608
                        [(k, json.dumps(v)) for k, v in manifest.items()])
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


def publish_marts(build_db: Path, published_db: Path, manifest_path: Path, run_id: str, tables: list[str],
                  inputs: dict[str, str], fingerprint: str, history_dir: Path | None = None,
                  keep_snapshots: int = 0) -> PublishResult:
    """Copy the named mart tables of the build database into a new file and swap it in; keep it as one of the
    last ``keep_snapshots`` snapshots in ``history_dir`` (lib/snapshots.py).

    Only the marts dbt knows now are copied: a mart removed from the project may linger in build.duckdb
    (dbt never drops it), and must not be published with stale data.
    """
    with open(published_db.with_name(f".{published_db.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one publisher at a time; the kernel releases it if the process dies
        # Holding the lock, a partial file left here belongs to a publish that was killed: clear it.
        for stale in published_db.parent.glob(f".{published_db.name}.*.partial*"):
            stale.unlink(missing_ok=True)
        tmp = published_db.with_name(f".{published_db.name}.{run_id}.partial")
        try:
            manifest = _write_marts(build_db, tmp, run_id, tables, inputs, fingerprint)
            os.replace(tmp, published_db)
            _fsync_dir(published_db.parent)
        finally:
            tmp.unlink(missing_ok=True)
            Path(f"{tmp}.wal").unlink(missing_ok=True)
        write_atomically(manifest_path, (json.dumps(manifest, indent=2) + "\n").encode())
        if history_dir is not None:
            save_snapshot(published_db, manifest, history_dir, keep_snapshots)
    return PublishResult(published_db, manifest)
