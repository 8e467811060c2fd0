"""The inbox: files dropped by people or sync tools, taken only once they are whole.

Names come from outside, so they are only ever looked up inside the inbox folder: a name with a path
separator or a parent reference is refused, never joined into a path.

**When a file is whole.** A file is taken when two looks some time apart (``SETTLE_SECONDS``) see the same
size, modification time and inode, and no process has it open for writing (Linux refuses a read lease on
a file open for writing). Sync tools that write under a temporary name and rename at the end are taken at
once after the rename: names ending in ``.part``, ``.tmp``, ``.partial``, ``.crdownload`` or ``~`` and
hidden names (``.name``) are such temporary names, and are left alone while they may still be written.

**Claims.** A run *claims* a file by renaming it into ``.processing/<owner>/<random id>``, with the
original name kept beside it in ``<random id>.name``: claimed names fit every file-system limit whatever
the original name, and a newer upload under the same name waits in the inbox for its own run. The owner
is the claiming process (``host:pid:start``); when it is gone (killed, crashed), whoever looks next returns
its files to the inbox under their names.

**What is set aside.** A directory, a FIFO, a socket, a device, a symlink, an unreadable file, or a
temporary name left unchanged for ``ABANDONED_SECONDS`` is never opened: it is moved to
``quarantine/set_aside/`` with the reason, and the landing logs a ``rejected`` line for it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from dagster_project.lib.processes import owner_is_gone, owner_of

PROCESSING = ".processing"
SET_ASIDE = "set_aside"
SETTLE_SECONDS = 1.0  # two looks this far apart must agree before a file is taken
# Where the system cannot tell whether a writer has the file open (another user's file, a network file
# system), a file is taken only once it has not changed for this long.
UNKNOWN_WRITER_SECONDS = 30.0
TEMPORARY_SUFFIXES = (".part", ".tmp", ".partial", ".crdownload", "~")
ABANDONED_SECONDS = 3600  # a temporary name unchanged this long was abandoned by its writer
ORPHAN_SECONDS = 3600  # a claim of unknown owner this old belongs to a run that died
_F_SETLEASE = getattr(fcntl, "F_SETLEASE", 1024)  # Linux


@dataclass(frozen=True)
class Seen:
    """One look at an inbox entry."""

    name: str
    size: int
    mtime_ns: int
    inode: int

    @property
    def key(self) -> tuple[int, int, int]:
        return self.size, self.mtime_ns, self.inode


@dataclass(frozen=True)
class Look:
    """What one look at the inbox found."""

    files: dict[str, Seen]  # regular files with final names
    temporary: dict[str, Seen]  # temporary names: being written, or abandoned
    odd: dict[str, str]  # name -> why it cannot be a submission (directory, FIFO, symlink, ...)


@dataclass(frozen=True)
class Claim:
    path: Path  # the claimed file, under .processing/<owner>/
    original_name: str  # as sent: only ever shown, never a path


def inbox_path(inbox: Path, name: str, resolved_inbox: Path | None = None, hidden: bool = False) -> Path:
    """The path of an inbox entry by its bare name; anything that could leave the inbox is refused, and so is
    a hidden name unless ``hidden`` (only setting aside abandoned temporary files touches those)."""
    if not name or name in (".", "..", PROCESSING) or "/" in name or "\x00" in name or \
            (name.startswith(".") and not hidden):
        raise ValueError(f"{name!r} is not a plain file name in the inbox")
    path = inbox / name
    if path.absolute().parent.resolve() != (resolved_inbox or inbox.resolve()):
        raise ValueError(f"{name!r} resolves outside the inbox")
    return path


def is_temporary(name: str) -> bool:
    return name.startswith(".") or name.endswith(TEMPORARY_SUFFIXES)


def _kind(mode: int) -> str | None:
    """Why an entry of this type cannot be a submission, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    for test, what in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return what
    return "not a regular file"


def look(inbox: Path) -> Look:
    """One look at the inbox, without opening anything (``lstat`` only: a symlink is never followed)."""
    files, temporary, odd = {}, {}, {}
    if not inbox.is_dir():
        return Look(files, temporary, odd)
    for entry in os.scandir(inbox):
        name = entry.name
        if name == PROCESSING:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue  # gone between the listing and the look
        why = _kind(st.st_mode)
        seen = Seen(name, st.st_size, st.st_mtime_ns, st.st_ino)
        if why is not None:
            odd[name] = why
        elif is_temporary(name):
            temporary[name] = seen
        elif not os.access(entry.path, os.R_OK):
            odd[name] = "unreadable (permission denied)"
        else:
            files[name] = seen
    return Look(files, temporary, odd)


def open_for_writing(path: Path) -> bool | None:
    """Whether some process has this file open for writing (True/False), or None where the system cannot
    tell (another owner's file, a file system without leases). A read lease is refused on a file that is
    open for writing; taking one and giving it back at once disturbs nobody."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        fcntl.fcntl(fd, _F_SETLEASE, fcntl.F_RDLCK)
        fcntl.fcntl(fd, _F_SETLEASE, fcntl.F_UNLCK)
        return False
    except OSError as e:
        return True if e.errno == errno.EAGAIN else None
    finally:
        os.close(fd)


def settled(first: Look, second: Look, inbox: Path, now: float | None = None) -> list[Seen]:
    """Files that two looks (``SETTLE_SECONDS`` apart) found unchanged and that nobody writes to now (or, where
    that cannot be told, that have not changed for ``UNKNOWN_WRITER_SECONDS``)."""
    now = time.time() if now is None else now
    out = []
    for name, seen in sorted(second.files.items()):
        before = first.files.get(name)
        if before is None or before.key != seen.key:
            continue
        writing = open_for_writing(inbox / name)
        if writing or (writing is None and now - seen.mtime_ns / 1e9 < UNKNOWN_WRITER_SECONDS):
            continue
        out.append(seen)
    return out


def ready_to_take(inbox: Path, before: Look | None = None) -> tuple[list[Seen], dict[str, str], Look]:
    """What can be taken now (settled files), what to set aside, and this look. ``before`` is an earlier look
    (the sensor's previous tick); when a file is new or changed since, or there is none, the inbox is looked
    at again ``SETTLE_SECONDS`` later."""
    current = look(inbox)
    changed = before is None or any(before.files.get(n) is None or before.files[n].key != s.key
                                    for n, s in current.files.items())
    if current.files and changed:
        time.sleep(SETTLE_SECONDS)
        before, current = current, look(inbox)
    now = time.time()
    return settled(before or current, current, inbox, now), abandoned(current, now), current


def abandoned(look_: Look, now: float) -> dict[str, str]:
    """Entries to set aside: odd entries at once, temporary names once unchanged for ABANDONED_SECONDS."""
    out = dict(look_.odd)
    for name, seen in look_.temporary.items():
        if now - seen.mtime_ns / 1e9 > ABANDONED_SECONDS:
            out[name] = f"a temporary or hidden name left unchanged for over {ABANDONED_SECONDS // 60} minutes"
    return out


def claim_all(inbox: Path, names: list[str], owner: str | None = None) -> list[tuple[str, Claim | Exception]]:
    """Move inbox files aside for this process's run, each under a random id with its name beside it. A name
    that cannot be claimed (refused, gone, or still open for writing) comes back with its error, and the
    others go on."""
    folder = inbox / PROCESSING / (owner or owner_of())
    folder.mkdir(parents=True, exist_ok=True)
    resolved = inbox.resolve()
    out: list[tuple[str, Claim | Exception]] = []
    for name in names:
        try:
            source = inbox_path(inbox, name, resolved)
            if not stat.S_ISREG(os.lstat(source).st_mode):
                raise ValueError(f"{name!r} is not a regular file")
            claim = _new_claim(folder, name)
            try:
                os.rename(source, claim.path)
            except BaseException:
                claim.path.with_suffix(".name").unlink(missing_ok=True)
                raise
            if open_for_writing(claim.path):  # a writer opened it just now: give it back untouched
                unclaim(inbox, claim.path)
                raise BlockingIOError(errno.EBUSY, f"{name!r} is open for writing: left for the next look")
            out.append((name, claim))
        except (ValueError, OSError) as e:
            out.append((name, e))
    return out


def claim_copy(inbox: Path, source: Path, name: str, owner: str | None = None) -> Claim:
    """A claim made from a file outside the inbox (``spbe ingest FILE``): copied straight into this process's
    claim folder, so that no inbox sensor can take it first. The copy is written aside, then renamed."""
    folder = inbox / PROCESSING / (owner or owner_of())
    folder.mkdir(parents=True, exist_ok=True)
    claim = _new_claim(folder, name)
    tmp = folder / f".{claim.path.name}.copying"
    with open(source, "rb") as src, open(tmp, "wb") as out:
        while chunk := src.read(1 << 20):
            out.write(chunk)
    os.rename(tmp, claim.path)
    return Claim(claim.path, name)


def _new_claim(folder: Path, name: str) -> Claim:
    """A fresh claim path, with the original name written beside it first (so a return never loses it)."""
    claim = Claim(folder / uuid.uuid4().hex, name)
    claim.path.with_suffix(".name").write_bytes(name.encode("utf-8", "surrogateescape"))
    return claim


def claimed_name(path: Path) -> str:
    """The original name of a claimed file (its ``.name`` file), or its id if that was lost."""
    try:
        return path.with_suffix(".name").read_bytes().decode("utf-8", "surrogateescape")
    except OSError:
        return path.name


def release(claim_path: Path) -> None:
    """Forget a claim whose file was landed (archived first, so nothing is lost)."""
    claim_path.unlink(missing_ok=True)
    claim_path.with_suffix(".name").unlink(missing_ok=True)


def unclaim(inbox: Path, claim_path: Path) -> Path:
    """Put a claimed file back in the inbox under its name (prefixed if a newer upload took the name)."""
    name = claimed_name(claim_path)
    target = _free_name(inbox, name, claim_path.name[:8])
    os.rename(claim_path, target)
    claim_path.with_suffix(".name").unlink(missing_ok=True)
    return target


def _free_name(folder: Path, name: str, tag: str) -> Path:
    """``name`` in ``folder`` if free, else ``<tag>-<name>`` cut to the 255-byte name limit (suffix kept)."""
    if not (folder / name).exists() and not (folder / name).is_symlink():
        return folder / name
    raw = f"{tag}-{name}".encode("utf-8", "surrogateescape")
    if len(raw) > 255:
        suffix = Path(name).suffix.encode("utf-8", "surrogateescape")[-20:]
        raw = raw[: 255 - len(suffix)] + suffix
    return folder / raw.decode("utf-8", "surrogateescape")


def set_aside(inbox: Path, quarantine: Path, names: dict[str, str]) -> list[tuple[str, str, Path]]:
    """Move odd entries out of the inbox unopened (a rename moves a FIFO, a link or a folder as it is).
    Returns (name, reason, where) for each one moved."""
    folder = quarantine / SET_ASIDE
    folder.mkdir(parents=True, exist_ok=True)
    resolved = inbox.resolve()
    out = []
    for name, reason in sorted(names.items()):
        try:
            source = inbox_path(inbox, name, resolved, hidden=True)
        except ValueError:
            continue
        target = folder / f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}"
        try:
            (target.parent / f"{target.name}.name").write_bytes(name.encode("utf-8", "surrogateescape"))
            os.rename(source, target)  # never copied: copying would open it
        except FileNotFoundError:
            (target.parent / f"{target.name}.name").unlink(missing_ok=True)
            continue  # gone meanwhile: nothing to say
        except OSError as e:  # another file system (SPBE_INBOX_DIR elsewhere), permissions: logged, left
            (target.parent / f"{target.name}.name").unlink(missing_ok=True)
            out.append((name, f"{reason}; could not be moved aside ({e.strerror}), left in the inbox", inbox))
            continue
        out.append((name, reason, target))
    return out


def return_orphans(inbox: Path, now: float | None = None) -> list[Path]:
    """Claims whose process is gone go back to the inbox, as do claims of unknown owner older than
    ORPHAN_SECONDS. Every entry point calls this: the sensor, the CLI and the landing itself."""
    folder = inbox / PROCESSING
    if not folder.is_dir():
        return []
    now = time.time() if now is None else now
    returned = []
    for entry in folder.iterdir():
        if entry.is_dir() and owner_is_gone(entry.name):
            for claimed in entry.iterdir():
                if claimed.is_file() and not claimed.suffix and not claimed.name.startswith("."):
                    with contextlib.suppress(OSError):
                        returned.append(unclaim(inbox, claimed))
            for leftover in entry.iterdir():  # names of claims landed or returned, half copies
                if leftover.suffix in (".name", ".copying") and not leftover.with_suffix("").exists():
                    with contextlib.suppress(OSError):
                        leftover.unlink()
            with contextlib.suppress(OSError):
                entry.rmdir()  # only once empty: a claim that could not be returned stays for the next look
        elif entry.is_file() and "__" in entry.name and now - entry.stat().st_mtime > ORPHAN_SECONDS:
            # a claim of the earlier layout (.processing/<uuid>__<name>)
            with contextlib.suppress(OSError):
                target = _free_name(inbox, entry.name.partition("__")[2], entry.name[:8])
                os.rename(entry, target)
                returned.append(target)
    return returned


def readable_name(inbox: Path, name: str) -> str:
    """A name that is not valid UTF-8 cannot travel in run config or logs: rename the file, keeping what can
    be read. Returns the name to use."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        fixed = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        if not (inbox / fixed).exists():
            os.rename(inbox / name, inbox / fixed)
            return fixed
        return name
