"""The ingest log: one JSON line per arrival, and the one rule that decides what is current.

The log (``state/ingest_log.jsonl``) is the warehouse's commit log. Landing writes a file's bytes to the
archive and its rows to the lake first; the file counts only once its line is in the log. Every line gets
a sequence number (``seq``) under an exclusive lock, so lines of concurrent landings never interleave and
have one order. A build fixes a *position* (the last ``seq``) before dbt starts, dbt reads only the lines
up to it, and the publish manifest records it: a file whose line came later waits for the next build.

**What is current.** Each line names its *subject*: a release year, or an institution's (or a work unit's)
file for a year and stage. The current file of a subject is the one of its latest line that *takes
effect*. A line takes effect when its file was accepted (``loaded``, or a ``duplicate`` of an accepted
file) and it is complete, or no complete file of its subject came before it: an incomplete revision
(coverage below 1) never replaces a complete one. This is decided here, once, when the line is written;
dbt only picks the latest line that takes effect.

**What is new data.** A line ``changes_data`` when a build would publish something different because of
it: a verdict reached now (a file loaded, quarantined or set aside), or a file that takes effect over
another current file (an older revision sent again). A duplicate of the current file, or a file judged
before, changes nothing: it is logged, and no build runs for it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dagster_project.lib.archive import utc_now

ACCEPTED = ("loaded", "duplicate")
STATUSES = ("loaded", "duplicate", "quarantined", "rejected")

# Every line carries every field (null where it does not apply), in this order.
LOG_FIELDS = ("seq", "logged_at", "run_id", "dataset", "sha256", "original_name", "source", "source_version",
              "received_at", "status", "rows", "reason", "year", "institution_id", "stage", "work_unit",
              "coverage", "is_late", "takes_effect", "changes_data")

# The subject of a line: which of its fields name what the file is about.
SUBJECT_FIELDS = ("dataset", "year", "institution_id", "stage", "work_unit")


def subject_of(line: dict[str, Any]) -> tuple:
    return tuple(line.get(k) for k in SUBJECT_FIELDS)


def is_complete(line: dict[str, Any]) -> bool:
    coverage = line.get("coverage")
    return coverage is None or coverage >= 1


@dataclass
class LogState:
    """What the log says so far: its last sequence number and, per subject, the current file."""

    last_seq: int = 0
    offset: int = 0  # bytes of the log read into this state
    current: dict[tuple, dict[str, Any]] = field(default_factory=dict)  # subject -> the line of its current file
    complete: set[tuple] = field(default_factory=set)  # subjects with a complete accepted file

    def decide(self, line: dict[str, Any], judged: bool) -> dict[str, Any]:
        """Number a new line, decide whether it takes effect and changes data, and apply it."""
        self.last_seq += 1
        subject = subject_of(line)
        accepted = line["status"] in ACCEPTED and line.get("year") is not None
        takes_effect = accepted and (is_complete(line) or subject not in self.complete)
        replaces = takes_effect and (self.current.get(subject) or {}).get("sha256") != line.get("sha256")
        decided = {**line, "seq": self.last_seq, "takes_effect": takes_effect, "changes_data": judged or replaces}
        self.apply(decided)
        return decided

    def apply(self, line: dict[str, Any]) -> None:
        """Fold a written line into the state (lines written before ``seq`` existed count in file order)."""
        self.last_seq = max(self.last_seq, line.get("seq") or self.last_seq + 1)
        subject = subject_of(line)
        takes_effect = line.get("takes_effect")
        if takes_effect is None:  # a line from before this rule: every accepted line took effect
            takes_effect = line.get("status") in ACCEPTED
        if takes_effect:
            self.current[subject] = line
            if is_complete(line):
                self.complete.add(subject)


class IngestLog:
    """The log file, appended under an exclusive lock; its state is re-read from where it was left.
    ``IngestLog.of(path)`` keeps one per log in this process, so each look reads only the new lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._state = LogState()
        self._inode: int | None = None

    @classmethod
    def of(cls, path: Path) -> IngestLog:
        return _logs.setdefault(path, cls(path))

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(f".{self.path.name}.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released by the kernel if this process dies
            yield

    def _catch_up(self) -> LogState:
        """Read the lines appended since this object last looked (the log only ever grows)."""
        if not self.path.exists():
            self._state, self._inode = LogState(), None
            return self._state
        st = self.path.stat()
        if st.st_ino != self._inode or st.st_size < self._state.offset:  # another file now: start over
            self._state, self._inode = LogState(), st.st_ino
        with open(self.path, "rb") as f:
            f.seek(self._state.offset)
            for raw in f:
                if not raw.endswith(b"\n"):
                    break  # a line still being written by a process that died: not part of the log
                line = _parse(raw)
                if line is not None:
                    self._state.apply(line)
                self._state.offset += len(raw)
        return self._state

    def append(self, records: Iterable[tuple[dict[str, Any], bool]]) -> list[dict[str, Any]]:
        """Write lines for ``(record, judged)`` pairs in order, where ``judged`` says the landing judged the
        content now (rather than reusing a stored verdict). One write and one fsync, under the lock."""
        records = list(records)
        if not records:
            return []
        with self._locked():
            state = self._catch_up()
            if self.path.exists() and self.path.stat().st_size > state.offset:
                # A torn last line: its writer died while appending (writers hold this lock, so no live one is
                # still writing). Cut it off, so that the lines after it never share its number.
                os.truncate(self.path, state.offset)
            now = utc_now()
            lines = []
            for record, judged in records:
                unknown = set(record) - set(LOG_FIELDS)
                if unknown:
                    raise ValueError(f"ingest log fields {sorted(unknown)} are not in LOG_FIELDS")
                if record.get("status") not in STATUSES:
                    raise ValueError(f"ingest log status {record.get('status')!r} is not one of {STATUSES}")
                full = {k: record.get(k) for k in LOG_FIELDS}
                full["logged_at"] = now
                lines.append(state.decide(full, judged))
            data = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode()
            with open(self.path, "ab") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            state.offset += len(data)
        return lines

    def position(self) -> int:
        """The sequence number of the last line written: a build from here reads every line up to it."""
        with self._locked():
            return self._catch_up().last_seq

    def current_line(self, subject: tuple) -> dict[str, Any] | None:
        """The line that made the current file of ``subject`` current, if any."""
        with self._locked():
            return self._catch_up().current.get(subject)


_logs: dict[Path, IngestLog] = {}


def read_lines(path: Path, after: int = -1, upto: int | None = None) -> list[dict[str, Any]]:
    """The complete lines of the log with ``after < seq <= upto`` (lines without ``seq`` count as 0)."""
    if not path.exists():
        return []
    out = []
    with open(path, "rb") as f:
        for raw in f:
            line = _parse(raw) if raw.endswith(b"\n") else None
            if line is None:
                continue
            seq = line.get("seq") or 0
            if seq > after and (upto is None or seq <= upto):
                out.append(line)
    return out


def _parse(raw: bytes) -> dict[str, Any] | None:
    """A line of the log, or None for a blank or undecodable one (a torn write cut off by the next append;
    dbt's reader skips such a line too, with ignore_errors)."""
    if not raw.strip():
        return None
    try:
        line = json.loads(raw)
    except ValueError:
        return None
    return line if isinstance(line, dict) else None
