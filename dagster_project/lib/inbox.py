"""The inbox: files dropped by people or a sync job, waiting to be landed.

Names come from outside, so they are only ever looked up inside the inbox folder: a name with a path
separator, a leading dot or a parent reference is refused, never joined into a path.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from dagster_project.lib.archive import file_sha256

SETTLE_SECONDS = 2.0  # a file still being copied in is left for the next look


@dataclass(frozen=True)
class InboxFile:
    name: str
    sha256: str
    size: int


def inbox_path(inbox: Path, name: str) -> Path:
    """The path of an inbox file by its bare name; anything that could leave the inbox is refused."""
    if not name or name in (".", "..") or name.startswith(".") or "/" in name or "\\" in name or "\x00" in name:
        raise ValueError(f"{name!r} is not a plain file name in the inbox")
    path = inbox / name
    if path.resolve().parent != inbox.resolve():
        raise ValueError(f"{name!r} resolves outside the inbox")
    return path


def pending_files(inbox: Path, now: float | None = None) -> list[InboxFile]:
    """Settled regular files in the inbox, oldest name first; hidden and partial files are skipped."""
    if not inbox.is_dir():
        return []
    now = time.time() if now is None else now
    out = []
    for entry in sorted(inbox.iterdir(), key=lambda p: p.name):
        if entry.name.startswith(".") or entry.is_symlink() or not entry.is_file():
            continue
        stat = entry.stat()
        if now - stat.st_mtime < SETTLE_SECONDS:
            continue
        out.append(InboxFile(entry.name, file_sha256(entry), stat.st_size))
    return out
