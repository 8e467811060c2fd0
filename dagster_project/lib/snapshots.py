"""As-of history: the last N published warehouses, each with its manifest, to query as they were published.

Every publish writes a new file and renames it over ``spbe.duckdb``, so the file just published can be kept
by a hard link (no copy, no extra space until the next publish replaces it): ``history/<stamp>_<run>.duckdb``
beside ``<stamp>_<run>.manifest.json``. The oldest beyond ``keep`` are removed. A reader asking "as of
2025-01-15" gets the newest snapshot published on or before the end of that day (Asia/Jakarta).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

from dagster_project.lib.submissions import JAKARTA

DEFAULT_KEEP = 10
KEEP_ENV = "SPBE_KEEP_SNAPSHOTS"
_RUN_ID = re.compile(r"[^A-Za-z0-9-]")


@dataclass(frozen=True)
class Snapshot:
    path: Path
    published_at: datetime
    run_id: str

    @property
    def manifest_path(self) -> Path:
        return self.path.with_suffix(".manifest.json")


def keep_setting() -> int:
    """How many snapshots to keep: SPBE_KEEP_SNAPSHOTS (0 keeps none), default 10."""
    raw = os.environ.get(KEEP_ENV, str(DEFAULT_KEEP))
    if not raw.isdigit():
        raise ValueError(f"{KEEP_ENV} must be a whole number >= 0, got {raw!r}")
    return int(raw)


def save_snapshot(published_db: Path, manifest: dict[str, Any], history_dir: Path, keep: int) -> Snapshot | None:
    """Keep the file just published (a hard link, or a copy where links are impossible) with its manifest, then
    remove the oldest beyond ``keep``. Returns the snapshot, or None when ``keep`` is 0."""
    if keep <= 0:
        prune(history_dir, 0)
        return None
    history_dir.mkdir(parents=True, exist_ok=True)
    published_at = datetime.fromisoformat(manifest["published_at"])
    stem = f"{published_at.strftime('%Y%m%dT%H%M%S%fZ')}_{_RUN_ID.sub('', manifest['run_id'])[:12]}"
    snapshot = Snapshot(history_dir / f"{stem}.duckdb", published_at, manifest["run_id"])
    snapshot.manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    try:
        os.link(published_db, snapshot.path)
    except OSError:  # another file system, or no hard links: a copy does the same
        shutil.copy2(published_db, snapshot.path)
    prune(history_dir, keep)
    return snapshot


def list_snapshots(history_dir: Path) -> list[Snapshot]:
    """Snapshots with a readable manifest, oldest first."""
    out = []
    for manifest_path in history_dir.glob("*.manifest.json") if history_dir.is_dir() else ():
        db = manifest_path.with_name(manifest_path.name.removesuffix(".manifest.json") + ".duckdb")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            published_at = datetime.fromisoformat(manifest["published_at"])
        except (OSError, ValueError, KeyError):
            continue
        if db.exists():
            out.append(Snapshot(db, published_at, manifest["run_id"]))
    return sorted(out, key=lambda s: s.published_at)


def prune(history_dir: Path, keep: int) -> list[Path]:
    """Remove all but the newest ``keep`` snapshots; returns the files removed."""
    removed, snapshots = [], list_snapshots(history_dir)
    for old in snapshots[:max(0, len(snapshots) - keep)]:
        for f in (old.path, old.manifest_path):
            f.unlink(missing_ok=True)
            removed.append(f)
    return removed


def parse_as_of(text: str) -> datetime:
    """'2025-01-15' means the end of that day in Asia/Jakarta; an ISO timestamp is taken as given (UTC if it
    names no offset)."""
    try:
        if len(text) == 10:
            day = datetime.fromisoformat(text).date()
            return datetime.combine(day + timedelta(days=1), time(0), tzinfo=JAKARTA) - timedelta(microseconds=1)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--as-of wants a date (2025-01-15) or an ISO timestamp, got {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def snapshot_as_of(history_dir: Path, moment: datetime) -> Snapshot:
    """The newest snapshot published at or before ``moment``; a clear error when there is none."""
    snapshots = list_snapshots(history_dir)
    before = [s for s in snapshots if s.published_at <= moment]
    if not before:
        oldest = snapshots[0].published_at.isoformat() if snapshots else "none kept"
        raise LookupError(f"no published warehouse as of {moment.isoformat()} (oldest snapshot: {oldest}; "
                          f"{KEEP_ENV} sets how many are kept)")
    return before[-1]
