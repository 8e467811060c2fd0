"""The inbox: files dropped by people or a sync job, waiting to be landed.

Names come from outside, so they are only ever looked up inside the inbox folder: a name with a path
separator, a leading dot or a parent reference is refused, never joined into a path. A run first *claims*
a file by renaming it into ``.processing/``: a newer upload under the same name then waits in the inbox
for its own run instead of being deleted unread. Claims live in a folder named for the claiming process
(``.processing/<host:pid:start>/``): when that process is gone (killed, crashed), the next look returns its
files to the inbox, so a killed run never strands a file.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from dagster_project.lib.archive import file_sha256
from dagster_project.lib.processes import owner_is_gone, owner_of

SETTLE_SECONDS = 2.0  # a file still being copied in is left for the next look
PROCESSING = ".processing"
ORPHAN_SECONDS = 3600  # a claim of unknown owner this old belongs to a run that died


@dataclass(frozen=True)
class InboxFile:
    name: str
    sha256: str
    size: int
    mtime_ns: int


def inbox_path(inbox: Path, name: str, resolved_inbox: Path | None = None) -> Path:
    """The path of an inbox file by its bare name; anything that could leave the inbox is refused."""
    if not name or name in (".", "..") or name.startswith(".") or "/" in name or "\x00" in name:
        raise ValueError(f"{name!r} is not a plain file name in the inbox")
    path = inbox / name
    if path.resolve().parent != (resolved_inbox or inbox.resolve()):
        raise ValueError(f"{name!r} resolves outside the inbox")
    return path


def claim(inbox: Path, name: str) -> Path:
    """Move an inbox file aside for this run; what arrives under its name afterwards stays for the next."""
    ((_, claimed),) = claim_all(inbox, [name])
    if isinstance(claimed, Exception):
        raise claimed
    return claimed


def claim_all(inbox: Path, names: list[str]) -> list[tuple[str, Path | Exception]]:
    """``claim`` for a batch: the owner's folder is made once, and a name that cannot be claimed (refused,
    or already gone) comes back with its error instead of stopping the others."""
    folder = inbox / PROCESSING / owner_of()
    folder.mkdir(parents=True, exist_ok=True)
    resolved = inbox.resolve()
    out: list[tuple[str, Path | Exception]] = []
    for name in names:
        try:
            source = inbox_path(inbox, name, resolved)
            target = folder / f"{uuid.uuid4().hex}__{name}"
            os.replace(source, target)
            out.append((name, target))
        except (ValueError, FileNotFoundError) as e:
            out.append((name, e))
    return out


def unclaim(inbox: Path, claimed: Path) -> Path:
    """Put a claimed file back in the inbox under its name (or a prefixed one if a newer upload took it)."""
    uid, _, name = claimed.name.partition("__")
    target = inbox / name
    if target.exists():
        target = inbox / f"{uid[:8]}-{name}"
    os.replace(claimed, target)
    return target


def _readable_name(entry: Path) -> Path:
    """A name that is not valid UTF-8 cannot travel in run config or logs: rename it, keeping what can be read."""
    try:
        entry.name.encode("utf-8")
        return entry
    except UnicodeEncodeError:
        fixed = entry.name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        target = entry.with_name(fixed)
        if not target.exists():
            os.replace(entry, target)
            return target
        return entry


def _return_orphans(inbox: Path, now: float) -> None:
    """Claims whose process is gone go back to the inbox; so do claims of unknown owner older than an hour."""
    folder = inbox / PROCESSING
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if entry.is_dir() and owner_is_gone(entry.name):
            for claimed in entry.iterdir():
                if claimed.is_file() and "__" in claimed.name:
                    unclaim(inbox, claimed)
            with contextlib.suppress(OSError):
                entry.rmdir()
        elif entry.is_file() and "__" in entry.name and now - entry.stat().st_mtime > ORPHAN_SECONDS:
            unclaim(inbox, entry)


def pending_files(inbox: Path, known: dict[str, InboxFile] | None = None, now: float | None = None) -> list[InboxFile]:
    """Settled regular files in the inbox, by name; hidden and still-growing files are skipped. A file whose
    size and mtime match ``known`` keeps its known hash instead of being read again."""
    if not inbox.is_dir():
        return []
    now = time.time() if now is None else now
    _return_orphans(inbox, now)
    out = []
    for entry in sorted(inbox.iterdir(), key=lambda p: p.name):
        if entry.name.startswith(".") or entry.is_symlink() or not entry.is_file():
            continue
        entry = _readable_name(entry)
        stat = entry.stat()
        if now - stat.st_mtime < SETTLE_SECONDS:
            continue
        seen = (known or {}).get(entry.name)
        same = seen is not None and (seen.size, seen.mtime_ns) == (stat.st_size, stat.st_mtime_ns)
        out.append(InboxFile(entry.name, seen.sha256 if same else file_sha256(entry), stat.st_size, stat.st_mtime_ns))
    return out
