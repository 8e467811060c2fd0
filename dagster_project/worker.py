"""The warm worker: one process that has imported Dagster, dbt, Great Expectations and the code location,
and runs every run in a fork of itself.

A new Python process pays seconds before it does any work (docs/performance.md: Dagster, dbt and GX
imports, the dbt project parsed). Dagster's default launcher starts such a process for every run, so one
dropped file waited for minutes on a loaded machine. The worker pays that once, when ``spbe ui`` starts it:

- runs launched by the daemon or the UI come through ``WarmRunLauncher`` (dagster_project/launcher.py), which
  sends the run's ``dagster api execute_run`` arguments here;
- ``spbe ingest`` and ``spbe build`` send the run config of ``update_warehouse`` here and wait for the result.

Each request is served by a child made with ``fork``: the child starts with everything imported, and a
crash, a leak or a kill stays in it. Children run in their own session, so Ctrl-C on ``spbe ui`` lets a run
finish. Where no worker answers, both callers do the same work themselves, only slower.

When a file of the code, the dbt project or the reference tables changes, the worker starts itself anew
before forking, so no run uses stale code.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any

from dagster_project.paths import DBT_PROJECT_DIR, EXPECTATIONS_DIR, REFERENCE_DIR, REPO_ROOT, data_paths

PROTOCOL = 1
ACCEPT_TIMEOUT_SECONDS = 1.0  # how often the worker reaps finished children when idle
_WATCHED = (REPO_ROOT / "dagster_project", DBT_PROJECT_DIR / "models", DBT_PROJECT_DIR / "macros",
            DBT_PROJECT_DIR / "tests", DBT_PROJECT_DIR / "dbt_project.yml", DBT_PROJECT_DIR / "profiles.yml",
            EXPECTATIONS_DIR, REFERENCE_DIR)


def socket_path() -> Path:
    """The worker's socket for this data directory and Dagster home. Unix socket paths are limited to about
    100 bytes, so it lives in a short private folder, named by a hash of the two settings."""
    key = f"{data_paths().root}\0{Path(os.environ.get('DAGSTER_HOME', '')).resolve()}"
    folder = Path("/tmp") / f"spbe-{os.getuid()}"
    return folder / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.sock"


def code_stamp() -> str:
    """Changes when a file of the code, the dbt project or the reference tables changes (names, sizes, times)."""
    h = hashlib.sha256()
    for root in _WATCHED:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()
                                                     and "__pycache__" not in p.parts)
        for f in files:
            st = f.stat()
            h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


# ---- client side: used by the CLI and the launcher ------------------------------------------------------------

def _private(folder: Path) -> bool:
    try:
        st = folder.stat()
    except OSError:
        return False
    return st.st_uid == os.getuid() and not st.st_mode & 0o077


def request(message: dict[str, Any], timeout: float | None = None) -> socket.socket | None:
    """Send a request to the worker of this data directory; the connected socket, or None if none answers.
    Only a worker of this user is spoken to: the socket's folder must be this user's and private, and the
    process at the other end must run as this user (the requests carry settings)."""
    path = socket_path()
    if not path.exists() or not _private(path.parent):
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
        _, uid, _ = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
        if uid != os.getuid():
            raise PermissionError(f"{path} is served by another user")
        sock.sendall(json.dumps({"protocol": PROTOCOL, **message}).encode() + b"\n")
    except OSError:
        sock.close()
        return None
    return sock


def read_reply(sock: socket.socket) -> dict[str, Any] | None:
    """The next JSON line from the worker, or None if the connection closed first (the child died)."""
    buffer = b""
    while not buffer.endswith(b"\n"):
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buffer += chunk
    return json.loads(buffer)


def call(message: dict[str, Any], wait_for_restart: float = 90) -> dict[str, Any] | None:
    """Send a request and wait for its reply; None when no worker serves this data directory. A worker that
    restarts for new code is waited for (warming up takes seconds), then asked again."""
    deadline = time.monotonic() + wait_for_restart
    while True:
        sock = request(message)
        if sock is None:
            return None
        with sock:
            try:
                reply = read_reply(sock)
            except OSError:
                reply = None
        if reply is None:
            return {"died": True}
        if not reply.get("restarting"):
            return reply
        while time.monotonic() < deadline and not is_running():
            time.sleep(0.5)
        if time.monotonic() >= deadline:
            return None


def is_running() -> bool:
    sock = request({"op": "ping"}, timeout=2)
    if sock is None:
        return False
    with sock:
        try:
            return (read_reply(sock) or {}).get("ok", False)
        except OSError:
            return False


# ---- server side ---------------------------------------------------------------------------------------------

def _warm_up() -> None:
    """Import and load everything a run needs, without opening a database or starting a thread (both would
    be unsafe to fork)."""
    import dagster  # noqa: F401
    import dbt.task.build  # noqa: F401
    import great_expectations  # noqa: F401

    from dagster_project.dagster_private import api_cli
    from dagster_project.definitions import defs
    from dagster_project.lib import ingest, quality, submissions  # noqa: F401
    from dagster_project.lib.dbt_project import parsed_manifest

    api_cli()  # `dagster api execute_run`, which each forked run calls
    parsed_manifest(static_parser=False)  # native threads would not survive the fork (see parsed_manifest)
    defs()


def _child(conn: socket.socket, message: dict[str, Any]) -> int:
    """Serve one request in a forked child; returns the exit code."""
    os.setsid()  # Ctrl-C on `spbe ui` must not interrupt a run half way
    from dagster_project.lib import dbt_project

    dbt_project.freeze()  # never parse dbt in a fork: the worker restarts on the next request if files changed
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.environ.update(message.get("env", {}))
    op = message.get("op")
    if op == "execute_run":  # from WarmRunLauncher: the arguments of `dagster api execute_run`
        from dagster_project.dagster_private import api_cli

        _reply(conn, {"pid": os.getpid()})
        conn.close()
        args = message["args"]
        try:
            api_cli().main(args=args[args.index("api") + 1:], standalone_mode=False)
        except SystemExit as e:
            return int(e.code or 0)
        return 0
    if op == "run_job":  # from `spbe ingest` / `spbe build`: update_warehouse with this config
        from dagster_project.runs import run_update

        outcome = run_update(message["config"], message.get("tags", {}), message.get("assets"))
        _reply(conn, outcome)
        return 0
    _reply(conn, {"error": f"unknown request {op!r}"})
    return 2


def _reply(conn: socket.socket, message: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        conn.sendall(json.dumps(message, default=str).encode() + b"\n")


def _read_request(conn: socket.socket) -> dict[str, Any] | None:
    conn.settimeout(10)
    buffer = b""
    while not buffer.endswith(b"\n"):
        chunk = conn.recv(1 << 20)
        if not chunk:
            return None
        buffer += chunk
    message = json.loads(buffer)
    return message if message.get("protocol") == PROTOCOL else None


def serve() -> None:
    """Warm up, then serve requests until SIGTERM; re-execute itself when the code changed."""
    started = time.monotonic()
    stamp = code_stamp()
    _warm_up()
    path = socket_path()
    path.parent.mkdir(mode=0o700, exist_ok=True)
    if not _private(path.parent):  # another user's folder: never serve from it
        raise SystemExit(f"{path.parent} must belong to this user and be private (mode 700)")
    path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    os.chmod(path, 0o600)
    server.listen(64)
    server.settimeout(ACCEPT_TIMEOUT_SECONDS)
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    print(f"spbe worker {os.getpid()}: warm in {time.monotonic() - started:.1f} s, listening on {path}", flush=True)
    try:
        while not stopping:
            _reap()
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except InterruptedError:
                continue
            if code_stamp() != stamp:  # new code: serve nothing with the old one
                _reply(conn, {"restarting": True})
                conn.close()
                print(f"spbe worker {os.getpid()}: the code changed, restarting", flush=True)
                server.close()
                path.unlink(missing_ok=True)
                os.execv(sys.executable, [sys.executable, "-m", "dagster_project.worker"])
            try:
                message = _read_request(conn)
            except (OSError, ValueError):  # a client that sent garbage, or nothing: not the worker's problem
                message = None
            if message is None or message.get("op") == "ping":
                if message is not None:
                    _reply(conn, {"ok": True, "pid": os.getpid()})
                conn.close()
                continue
            pid = os.fork()
            if pid == 0:  # the child: serve, and never return into the loop
                code = 1
                try:
                    server.close()
                    code = _child(conn, message)
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(code)
            conn.close()
    finally:
        server.close()
        path.unlink(missing_ok=True)


def _reap() -> None:
    with contextlib.suppress(ChildProcessError):
        while True:
            pid, _ = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                return


if __name__ == "__main__":
    serve()
