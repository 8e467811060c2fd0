"""``spbe bench --latency``: how long a dropped file takes to reach the published warehouse, through a real
daemon, as ``spbe ui`` runs it (webserver, daemon and warm worker on a free port).

On a data directory built by ``spbe build``: the time until the UI answers, whether any run starts by
itself, then files dropped into the inbox one at a time (each by an atomic rename, as sync tools do; the
next once the previous is published), a burst dropped at once, and ``spbe ingest`` of one file at a
time. "Published" means the file's line is in the published ``fct_ingest_log`` (a reader polls the
published file every 0.1 s). Medians and 95th percentiles go to data/bench/latency-<time>.json.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import duckdb

from dagster_project.paths import REPO_ROOT, DataPaths

POLL_SECONDS = 0.1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _files(n: int, offset: int) -> list[tuple[str, bytes]]:
    """``n`` valid final-stage 2024 files of different institutions, each with new content (levels shifted)."""
    from dagster_project.lib.samples import generate, published_domains

    ids = sorted(published_domains((2024,))["institution_id"].unique())[offset:offset + n]
    out = []
    for i, f in enumerate(generate(ids, years=(2024,), stages=("final",))):
        doc = json.loads(f.content)
        for row in doc["rows"][: 1 + i % 7]:
            row["level"] = row["level"] % 5 + 1
        out.append((f"bench-{offset + i:04d}-{f.name}", json.dumps(doc).encode()))
    return out


def _published(paths: DataPaths, names: set[str]) -> set[str]:
    try:
        with duckdb.connect(str(paths.published_db), read_only=True) as con:
            marks = ", ".join("?" * len(names))  # placeholders only: the names are bound parameters
            rows = con.execute(f"select original_name from fct_ingest_log where original_name in ({marks})",  # noqa: S608
                               list(names)).fetchall()
        return {r[0] for r in rows}
    except duckdb.Error:
        return set()  # replaced under us between two polls: look again


def _drop(inbox: Path, name: str, content: bytes) -> None:
    part = inbox / f".{name}.part"
    part.write_bytes(content)
    os.rename(part, inbox / name)


def _wait(paths: DataPaths, names: set[str], timeout: float) -> float:
    started = time.monotonic()
    while _published(paths, names) != names:
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{len(names - _published(paths, names))} file(s) not published after {timeout} s")
        time.sleep(POLL_SECONDS)
    return time.monotonic() - started


def _stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"n": len(values), "median": round(statistics.median(values), 2), "p95": round(p95, 2),
            "min": round(ordered[0], 2), "max": round(ordered[-1], 2)}


def _runs(home: Path) -> list[dict[str, Any]]:
    """Every run of the instance: what triggered it, when it was requested, when it started and ended."""
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    code = ("import json, dagster as dg; i = dg.DagsterInstance.get(); print(json.dumps([{'trigger': "
            "r.dagster_run.tags.get('spbe/trigger'), 'created': r.create_timestamp.timestamp(), 'started': "
            "r.start_time, 'ended': r.end_time} for r in i.get_run_records()]))")
    return json.loads(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                     check=True).stdout)


def run_latency(out_dir: Path, drops: int = 10, burst: int = 100, ingests: int = 10,
                data_dir: Path | None = None) -> dict[str, Any]:
    """Build a warehouse (or use ``data_dir``'s copy), start `spbe ui`, measure; returns the results."""
    work = Path(tempfile.mkdtemp(prefix="spbe-latency-"))
    paths = DataPaths(work / "data")
    env = {**os.environ, "SPBE_DATA_DIR": str(paths.root), "DAGSTER_HOME": str(work / "dagster_home")}
    spbe = str(Path(sys.executable).parent / "spbe")
    if data_dir:
        subprocess.run(["cp", "-a", str(data_dir), str(paths.root)], check=True)
    started = time.monotonic()
    subprocess.run([spbe, "build"], env=env, check=True, capture_output=True)
    build_seconds = time.monotonic() - started
    runs_before = len(_runs(work / "dagster_home"))
    port = _free_port()
    started = time.monotonic()
    ui = subprocess.Popen([spbe, "ui", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2).read()
                break
            except OSError:
                if ui.poll() is not None or time.monotonic() - started > 180:
                    raise RuntimeError("spbe ui did not answer") from None
                time.sleep(0.2)
        ui_seconds = time.monotonic() - started
        worker = [sys.executable, "-c", "from dagster_project import worker; import sys; "
                  "sys.exit(0 if worker.is_running() else 1)"]
        while subprocess.run(worker, env=env).returncode != 0:
            time.sleep(0.5)
        worker_seconds = time.monotonic() - started
        time.sleep(15)  # a few sensor ticks: nothing is new, so nothing may start
        runs_at_rest = len(_runs(work / "dagster_home")) - runs_before

        one_at_a_time = []
        for name, content in _files(drops, 0):
            _drop(paths.inbox, name, content)
            one_at_a_time.append(_wait(paths, {name}, 300))
        files = _files(burst, drops)
        for name, content in files:
            _drop(paths.inbox, name, content)
        burst_seconds = _wait(paths, {n for n, _ in files}, 600)
        ingest_seconds = []
        for name, content in _files(ingests, drops + burst):
            source = work / name
            source.write_bytes(content)
            begun = time.monotonic()
            subprocess.run([spbe, "ingest", str(source)], env=env, check=True, capture_output=True)
            ingest_seconds.append(time.monotonic() - begun)
        runs = [r for r in _runs(work / "dagster_home") if r["trigger"] == "inbox" and r["started"]]
        start_delays = [r["started"] - r["created"] for r in runs]
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(timeout=60)
    result = {
        "kind": "latency",
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_before": os.getloadavg()},
        "command": "spbe bench --latency",
        "initial_build_s": round(build_seconds, 1),
        "ui_answers_s": round(ui_seconds, 1),
        "worker_warm_s": round(worker_seconds, 1),
        "runs_started_at_rest": runs_at_rest,
        "run_requested_to_started_s": _stats(start_delays),
        "drop_to_published_s": _stats(one_at_a_time),
        "drop_to_published_each_s": [round(v, 2) for v in one_at_a_time],
        "burst": {"files": burst, "all_published_s": round(burst_seconds, 1)},
        "spbe_ingest_one_file_s": _stats(ingest_seconds),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"latency-{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(json.dumps(result, indent=2) + "\n")
    subprocess.run(["rm", "-rf", str(work)], check=False)
    return result


def format_latency(r: dict[str, Any]) -> str:
    d, i = r["drop_to_published_s"], r["spbe_ingest_one_file_s"]
    return "\n".join([
        f"spbe ui answered in {r['ui_answers_s']} s (warm worker ready in {r['worker_warm_s']} s); "
        f"runs started with nothing new: {r['runs_started_at_rest']}",
        f"a requested run starts after: median {r['run_requested_to_started_s']['median']} s",
        f"drop -> published, one file at a time (n={d['n']}): median {d['median']} s, p95 {d['p95']} s "
        f"(min {d['min']}, max {d['max']})",
        f"burst of {r['burst']['files']} files -> all published: {r['burst']['all_published_s']} s",
        f"spbe ingest of one file (n={i['n']}): median {i['median']} s, p95 {i['p95']} s",
    ])


if __name__ == "__main__":  # python -m dagster_project.bench.latency
    print(format_latency(run_latency(REPO_ROOT / "data" / "bench")))
