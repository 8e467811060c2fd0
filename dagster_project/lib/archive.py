"""Archive: every received file is kept byte for byte under its sha256 before anything parses it, and
every file we write appears whole under its name (written aside, made durable, renamed). Nothing accepted
is ever deleted or overwritten.

**Kept once.** A refused file's bytes stay in the archive; ``quarantine/<sha256>.<ext>`` is a second name
for the same file (a hard link, or a relative symbolic link where the file system has none), never a copy.
Refused files may be evicted to keep within the caps (``lib/storage_caps.py``).
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

# Extensions we archive under; a name from outside never becomes a path, only one of these does.
ALLOWED_EXTENSIONS = frozenset({"csv", "xlsx", "json", "bin"})  # bin: a file of no supported type


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in chunks (files may be large)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def utc_now() -> str:
    """UTC timestamp with microseconds: landing events are ordered by it."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def archive_path(archive_dir: Path, sha256: str, ext: str) -> Path:
    if ext not in ALLOWED_EXTENSIONS:
        raise ValueError(f"extension {ext!r} is not one of {sorted(ALLOWED_EXTENSIONS)}")
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return archive_dir / f"{sha256}.{ext}"


def write_atomically(path: Path, content: bytes) -> None:
    """Write to a temp file in the same directory, fsync, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; published files are for readers too
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _link_beside(source: Path, target: Path) -> Path:
    """A second name for ``source`` at a temporary name beside ``target``: a hard link (the bytes are kept
    once), or a relative symbolic link where the two folders cannot share a file (another file system)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.partial")
    try:
        os.link(source, tmp)
    except OSError as e:
        if e.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EOPNOTSUPP):
            raise
        os.symlink(os.path.relpath(source, target.parent), tmp)  # relative: the data dir can still move
    return tmp


def _already(source: Path, target: Path) -> bool:
    """Whether ``target`` is already a name of ``source`` (renaming a link onto its twin would do nothing and
    leave the temporary name behind)."""
    try:
        return os.path.samefile(source, target)
    except OSError:
        return False


def link_atomically(source: Path, target: Path) -> None:
    """``target`` as a second name of ``source``, read-only (see ``DurableBatch.link``), replacing whatever had
    that name."""
    if _already(source, target):
        return
    tmp = _link_beside(source, target)
    try:
        os.chmod(tmp, 0o444)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(fd)  # the bytes are durable already (archived); only the new name is not
    finally:
        os.close(fd)


def _syncfs(directory: Path) -> None:
    """Make every write on the file system of ``directory`` durable (Linux ``syncfs``; ``os.sync`` elsewhere)."""
    syncfs = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
    if syncfs is None:
        os.sync()
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        if syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(directory))
    finally:
        os.close(fd)


class DurableBatch:
    """Many files made durable together, each still appearing atomically under its real name.

    Every file is written under a temporary name beside its target; ``commit`` makes all of them durable
    with one ``syncfs``, renames each into place and makes the renames durable with one more. A batch of
    N files costs two syncs instead of N fsyncs, which dominated landing at thousands of files. Before
    ``commit`` nothing is visible; a crash leaves only ``.partial`` files, which nothing reads.
    """

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path, int]] = []  # (temporary, target, mode)
        self._targets: set[Path] = set()

    def _temporary(self, target: Path) -> tuple[int, Path]:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
        return fd, Path(tmp)

    def write(self, target: Path, content: bytes) -> None:
        fd, tmp = self._temporary(target)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(content)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._add(tmp, target)

    def link(self, source: Path, target: Path) -> None:
        """``target`` as a second name of ``source`` at commit: a refused file is kept once, and read-only, so
        that nobody edits the archived bytes through their quarantine name."""
        if not _already(source, target):
            self._add(_link_beside(source, target), target, mode=0o444)

    def reserve(self, target: Path) -> Path:
        """A temporary path for a writer of its own (DuckDB's COPY), put in place as ``target`` at commit."""
        fd, tmp = self._temporary(target)
        os.close(fd)
        self._add(tmp, target)
        return tmp

    def archive(self, archive_dir: Path, source: Path, ext: str) -> tuple[str, Path]:
        """Keep a file as ``<sha256>.<ext>`` at ``commit``: copied and hashed in one pass, so the name is the
        hash of exactly the bytes kept, even if the source changes meanwhile. Identical bytes already kept
        are left as they are."""
        fd, tmp = self._temporary(archive_dir / ".incoming")
        h = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    h.update(chunk)
                    out.write(chunk)
            target = archive_path(archive_dir, h.hexdigest(), ext)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if target.exists() or target in self._targets:  # the same bytes already kept, or twice in this batch
            tmp.unlink()
        else:
            self._add(tmp, target)
        return h.hexdigest(), target

    def holds(self, target: Path) -> bool:
        """Whether ``target`` is put in place at commit."""
        return target in self._targets

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    def _add(self, tmp: Path, target: Path, mode: int = 0o644) -> None:
        self._pending.append((tmp, target, mode))
        self._targets.add(target)

    def commit(self) -> None:
        if not self._pending:
            return
        directories = {t.parent for _, t, _ in self._pending}
        for directory in directories:
            _syncfs(directory)  # one call per file system in practice: they all share the data dir's
        for tmp, target, mode in self._pending:
            os.chmod(tmp, mode)  # mkstemp makes 0600; landed files are for readers too
            os.replace(tmp, target)
        for directory in directories:
            _syncfs(directory)
        self._pending.clear()
        self._targets.clear()

    def discard(self) -> None:
        for tmp, _, _ in self._pending:
            tmp.unlink(missing_ok=True)
        self._pending.clear()
        self._targets.clear()

    def __enter__(self) -> DurableBatch:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()
