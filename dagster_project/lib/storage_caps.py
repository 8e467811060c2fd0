"""Storage bounds: the archive and the quarantine within their caps.

``SPBE_ARCHIVE_MAX_BYTES`` caps the archive (every received file, accepted or refused, counted
once) and ``SPBE_QUARANTINE_MAX_BYTES`` the refused files within it; both are unlimited when unset, because
the archive is the record of every accepted file and can never shrink by itself: a cap that a healthy
installation reaches in its sleep would stop landing. When a cap is reached, refused files are evicted,
the oldest (by their last arrival) first, each one recorded in ``quarantine/evicted.jsonl``; accepted files
(and files not judged yet) never are. A new file that does not fit even then is not taken. Landings take
turns on ``archive/.lock`` (``Storage``), so two at once never both count the same free bytes, and no
landing evicts a file that another one is reading.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagster_project.lib.archive import ALLOWED_EXTENSIONS, utc_now

ARCHIVE_CAP_ENV = "SPBE_ARCHIVE_MAX_BYTES"
QUARANTINE_CAP_ENV = "SPBE_QUARANTINE_MAX_BYTES"
EVICTED_LOG = "evicted.jsonl"  # in the quarantine folder: one line per refused file whose bytes were evicted
_KEPT_NAME = re.compile(r"^[0-9a-f]{64}\.(?:" + "|".join(sorted(ALLOWED_EXTENSIONS)) + r")$")
_UNITS = {"": 1, "B": 1, "K": 10**3, "KB": 10**3, "M": 10**6, "MB": 10**6, "G": 10**9, "GB": 10**9,
          "T": 10**12, "TB": 10**12}


class StorageFull(Exception):
    """A new file does not fit under the archive cap even with every refused file evicted: it is not taken."""


def parse_bytes(setting: str, raw: str | None) -> int | None:
    """A size as people write it (``2000000000``, ``2GB``, ``500 MB``; decimal units), or None when unset."""
    if raw is None or not raw.strip():
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?B?)\s*", raw.upper())
    if not m:
        raise ValueError(f"{setting} must be a size in bytes such as 2000000000, 2GB or 500MB; got {raw!r}")
    return int(float(m[1]) * _UNITS[m[2]])


def human_bytes(n: int) -> str:
    for unit, size in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


@dataclass(frozen=True)
class Caps:
    archive: int | None = None  # SPBE_ARCHIVE_MAX_BYTES: every received file kept, accepted or refused, once
    quarantine: int | None = None  # SPBE_QUARANTINE_MAX_BYTES: the refused files among them

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Caps:
        env = os.environ if env is None else env
        return cls(parse_bytes(ARCHIVE_CAP_ENV, env.get(ARCHIVE_CAP_ENV)),
                   parse_bytes(QUARANTINE_CAP_ENV, env.get(QUARANTINE_CAP_ENV)))

    @property
    def bounded(self) -> bool:
        return self.archive is not None or self.quarantine is not None


@dataclass
class Kept:
    """A received file in the archive, as the caps count it."""

    name: str  # <sha256>.<ext>
    size: int  # its bytes in the archive (0 when only a quarantine copy is left)
    extra: int = 0  # a quarantine copy that is not a second name of it (landed before links), counted apart

    @property
    def sha256(self) -> str:
        return self.name.partition(".")[0]

    @property
    def held(self) -> int:
        return self.size + self.extra


def plan_eviction(candidates: Iterable[Kept], free: int, need: int) -> list[Kept] | None:
    """The first ``candidates`` (refused files, oldest first) to evict so that ``need`` bytes fit in ``free``:
    [] when they fit already, None when evicting every candidate would not make room (then evict none)."""
    out: list[Kept] = []
    for k in candidates:
        if free >= need:
            break
        out.append(k)
        free += k.size
    return out if free >= need else None


class Storage:
    """The received files a landing may keep under the caps; one landing at a time holds it (``storage``).

    A content accepted once is never evicted; a content judged only ever refused is evictable, the one whose
    last refusal is oldest first; a file with no verdict yet (a landing that stopped half way) is never.
    """

    def __init__(self, archive_dir: Path, quarantine_dir: Path, caps: Caps, run_id: str = "") -> None:
        self.archive_dir, self.quarantine_dir, self.caps, self.run_id = archive_dir, quarantine_dir, caps, run_id
        self.kept: dict[str, Kept] = {}
        self.evicted: list[dict[str, Any]] = []
        self._total = 0  # bytes in the archive
        self._accepted: set[str] = set()  # sha256
        self._refused: dict[str, dict[str, Any]] = {}  # sha256 -> its last refusal's log line, oldest first
        self._queue: dict[str, Kept] | None = None  # evictable files by name, oldest first (built when needed)

    def scan(self) -> None:
        """Count the archive, and quarantine copies that older landings made instead of links."""
        inodes = {}
        for entry in os.scandir(self.archive_dir):
            if _KEPT_NAME.match(entry.name) and entry.is_file(follow_symlinks=False):
                st = entry.stat(follow_symlinks=False)
                self.kept[entry.name], inodes[entry.name] = Kept(entry.name, st.st_size), st.st_ino
                self._total += st.st_size
        if self.quarantine_dir.is_dir():
            for entry in os.scandir(self.quarantine_dir):
                if _KEPT_NAME.match(entry.name) and entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    if inodes.get(entry.name) != st.st_ino:
                        self.kept.setdefault(entry.name, Kept(entry.name, 0)).extra = st.st_size

    def judge(self, sha256: str, accepted: bool, line: dict[str, Any]) -> None:
        """Fold in one verdict on a content, in log order."""
        if not self.caps.bounded:
            return
        if accepted:
            self._accepted.add(sha256)
            self._refused.pop(sha256, None)
        elif sha256 not in self._accepted:
            self._refused.pop(sha256, None)  # inserted again: the dict's order is the order of last refusals
            self._refused[sha256] = line
        self._queue = None

    def fits(self, size: int) -> bool:
        """Whether ``size`` more bytes fit under the archive cap as it is (no eviction needed)."""
        return self.caps.archive is None or self._total + size <= self.caps.archive

    def add(self, name: str, size: int) -> None:
        """A new file put in the archive by this landing."""
        if self.caps.bounded:
            self.kept.setdefault(name, Kept(name, 0)).size = size  # a quarantine copy of it may be there
            self._total += size

    def make_room(self, size: int, keep: set[str]) -> str | None:
        """Evict refused files, oldest first and none named in ``keep`` (files this landing relies on), until
        ``size`` more bytes fit under the archive cap. Returns None when they fit, else why they do not (and
        then nothing is evicted)."""
        cap = self.caps.archive
        if cap is None:
            return None
        plan = plan_eviction((k for k in self._evictable() if k.name not in keep), cap - self._total, size)
        if plan is None:
            fixed = self._total - sum(k.size for k in self._evictable() if k.name not in keep)
            return (f"archive full: {human_bytes(fixed)} of the {human_bytes(cap)} cap ({ARCHIVE_CAP_ENV}) "
                    f"holds accepted files, which are never evicted, and {human_bytes(size)} more does not fit; "
                    "raise the cap")
        for k in plan:
            self._evict(k, ARCHIVE_CAP_ENV, f"to make room for {human_bytes(size)} under {human_bytes(cap)}")
        return None

    def enforce(self) -> None:
        """After the verdicts: evict refused files, oldest first, while a cap is exceeded (refused files judged
        now over the quarantine cap, or a cap lowered since the last landing)."""
        if not self.caps.bounded:
            return
        archive_cap, quarantine_cap = self.caps.archive, self.caps.quarantine
        refused = sum(k.held for k in self._evictable())
        for k in list(self._evictable()):
            if quarantine_cap is not None and refused > quarantine_cap:
                self._evict(k, QUARANTINE_CAP_ENV, f"to keep refused files within {human_bytes(quarantine_cap)}")
            elif archive_cap is not None and self._total > archive_cap:
                self._evict(k, ARCHIVE_CAP_ENV, f"to bring the archive within {human_bytes(archive_cap)}")
            else:
                break
            refused -= k.held

    def _evictable(self) -> Iterable[Kept]:
        if self._queue is None:
            by_sha: dict[str, list[Kept]] = {}
            for k in self.kept.values():
                by_sha.setdefault(k.sha256, []).append(k)
            self._queue = {k.name: k for sha in self._refused for k in by_sha.get(sha, [])}
        return self._queue.values()

    def _evict(self, k: Kept, setting: str, why: str) -> None:
        """Recorded first, then removed: a crash in between leaves the file to be evicted again, never lost
        without a word. Its verdict (report, log lines) stays; only its bytes go, under both names."""
        line = self._refused.get(k.sha256, {})
        record = {"evicted_at": utc_now(), "run_id": self.run_id, "file": k.name, "sha256": k.sha256,
                  "bytes": k.held, "original_name": line.get("original_name"),
                  "refused_at": line.get("received_at"), "reason": line.get("reason"), "setting": setting,
                  "why": f"{line.get('original_name') or k.name} ({human_bytes(k.held)}, refused) evicted {why} "
                         f"({setting})"}
        self.quarantine_dir.mkdir(parents=True, exist_ok=True)
        with open(self.quarantine_dir / EVICTED_LOG, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        (self.archive_dir / k.name).unlink(missing_ok=True)
        (self.quarantine_dir / k.name).unlink(missing_ok=True)
        self._total -= k.size
        del self.kept[k.name]
        if self._queue is not None:
            self._queue.pop(k.name, None)
        self.evicted.append(record)


@contextlib.contextmanager
def storage(archive_dir: Path, quarantine_dir: Path, verdicts: Callable[[], Iterable[tuple[str, bool, dict]]],
            run_id: str = "", caps: Caps | None = None) -> Iterator[Storage]:
    """Hold ``archive/.lock`` for one landing (the kernel releases it if the process dies) and, when a cap is
    set, count what the archive keeps: its files, and ``verdicts()`` (sha256, accepted, log line) in log order,
    read under the lock."""
    caps = Caps.from_env() if caps is None else caps
    archive_dir.mkdir(parents=True, exist_ok=True)
    with open(archive_dir / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        store = Storage(archive_dir, quarantine_dir, caps, run_id)
        if caps.bounded:
            store.scan()
            for sha256, accepted, line in verdicts():
                store.judge(sha256, accepted, line)
        yield store


def evictions(quarantine_dir: Path, run_id: str) -> list[dict[str, Any]]:
    """The evictions a run made, from the record."""
    path = quarantine_dir / EVICTED_LOG
    if not run_id or not path.exists():
        return []
    out = []
    with open(path, encoding="utf-8") as f:
        for raw in f:
            with contextlib.suppress(ValueError):
                record = json.loads(raw)
                if isinstance(record, dict) and record.get("run_id") == run_id:
                    out.append(record)
    return out
