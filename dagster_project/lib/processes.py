"""Who owns a piece of work, and whether that owner still lives.

A run killed with SIGKILL cannot clean up after itself: its inbox claims stay in ``.processing`` and its
Dagster run stays "started". Work is therefore stamped with an owner
(host, pid and the process's start time, so that a recycled pid is not mistaken for the owner) and
whoever comes next can tell an abandoned claim from a busy one.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

START = 19  # the start time in clock ticks since boot: /proc/<pid>/stat field 22, index 19 after "pid (name)"


def _fields(stat: Path) -> list[str] | None:
    """A process's /proc stat fields after ``pid (name)`` (state, ppid, pgrp, ...), or None if it is gone."""
    try:
        return stat.read_text(encoding="ascii", errors="replace").rsplit(")", 1)[1].split()
    except OSError:
        return None


def _start_time(pid: int) -> str | None:
    """The process's start time, or None if it is gone."""
    fields = _fields(Path(f"/proc/{pid}/stat"))
    return fields[START] if fields else None


def owner_of(pid: int | None = None) -> str:
    """``host:pid:start`` of a process (this one by default)."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_time(pid) or '?'}"


def owner_is_gone(owner: str) -> bool:
    """True only when the owner certainly died: same host, and its pid is free or now another process.

    An owner on another host, or one written in an unknown format, is never declared dead.
    """
    host, _, rest = owner.partition(":")
    pid, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit() or not start:
        return False
    now = _start_time(int(pid))
    return now is None or (start != "?" and now != start)


def _stats() -> dict[int, list[str]]:
    """Every live process's stat fields (Linux; elsewhere empty)."""
    stats = {int(stat.parent.name): _fields(stat) for stat in Path("/proc").glob("[0-9]*/stat")}
    return {pid: fields for pid, fields in stats.items() if fields}  # (one gone while we looked: left out)


def descendants(pid: int) -> dict[int, str]:
    """Every live process started by ``pid``, however deep, whatever its process group or session: {pid: its
    start time}, so that a pid the system gives to a new process later is not taken for one of these."""
    stats = _stats()
    children: dict[int, list[int]] = {}
    for child, fields in stats.items():
        children.setdefault(int(fields[1]), []).append(child)
    found, todo = {}, [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found[child] = stats[child][START]
                todo.append(child)
    return found


def still_running(processes: dict[int, str]) -> set[int]:
    """Those of ``processes`` ({pid: start time}, from ``descendants``) that have not ended (a zombie has: it
    only waits to be reaped)."""
    return {pid for pid, fields in _stats().items()
            if processes.get(pid) == fields[START] and fields[0] not in ("Z", "X")}
