"""``spbe``: build and publish the warehouse, query it, or open the Dagster UI.

    spbe build            land every new release of the configured source, the files waiting in the inbox
                          (and, into an empty warehouse, the bundled demo samples), build what changed, publish
    spbe ingest FILE...   land submission files now, build what they affect, publish
    spbe worker           the warm worker that runs every run in seconds (`spbe ui` starts one)
    spbe doctor           the data directory, what the build reads and what is published, and whether they agree
    spbe postgres start   a PostgreSQL server in the data directory: the DuckLake catalog (SPBE_WAREHOUSE=ducklake)
    spbe generate-samples synthetic submissions for real institutions (deterministic)
    spbe query "<SQL>"    read-only SQL on the published data/warehouse/spbe.duckdb (--as-of DATE: as published then)
    spbe export TABLE...  marts (filtered) or a query to XLSX, CSV or Parquet, formulas made inert, with an about sheet
    spbe report           an institution's scorecard; --single-file: one HTML file to send (opens offline, prints A4)
    spbe snapshots        the published warehouses kept for --as-of
    spbe summary          the warehouse path, the latest national top 10 and the predikat counts
    spbe bench            time the pipeline on synthetic tiers next to a plain DuckDB script
    spbe ui               `dg dev` (the Dagster UI and daemon on localhost) and the warm worker
"""

import argparse
import contextlib
import ctypes
import functools
import os
import signal
import sys
import time
from pathlib import Path

from dagster_project.bench import TIERS
from dagster_project.cli_reading import add_reading_commands, summary
from dagster_project.paths import REPO_ROOT, DataPaths, data_paths

REPORT_ASSETS = ("scorecards", "validation_results", "dbt_docs")


def _prepare_environment() -> DataPaths:
    """Absolute SPBE_DATA_DIR and DAGSTER_HOME (dbt runs in another cwd), telemetry off, dirs present."""
    paths = data_paths().ensure()
    os.environ["SPBE_DATA_DIR"] = str(paths.root)
    # The venv's bin first: the webserver and the daemon start their code servers by name.
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(paths.dagster_home))).resolve()
    os.environ["DAGSTER_HOME"] = str(home)
    home.mkdir(parents=True, exist_ok=True)
    config = (REPO_ROOT / "dagster.yaml").read_bytes()
    target = home / "dagster.yaml"
    if not target.exists() or target.read_bytes() != config:  # atomically: another command may be reading it
        from dagster_project.lib.archive import write_atomically

        write_atomically(target, config)
    for var, value in (("DO_NOT_TRACK", "1"), ("DBT_SEND_ANONYMOUS_USAGE_STATS", "false"),
                       ("GX_ANALYTICS_ENABLED", "false")):
        os.environ.setdefault(var, value)
    return paths


def _spbe_env() -> dict[str, str]:
    """The settings a run must see as this command sees them (a warm worker was started with its own)."""
    return {k: v for k, v in os.environ.items() if k.startswith(("SPBE_", "DBT_", "GX_")) or k == "DO_NOT_TRACK"}


@contextlib.contextmanager
def _run_log(paths: DataPaths, name: str):
    """dbt and Dagster may print; keep it in data/state/logs/ instead of the terminal."""
    log_dir = paths.state / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with open(log_path, "w", encoding="utf-8") as f, contextlib.redirect_stdout(f):
        yield log_path


def _run(paths: DataPaths, config: dict, what: str, assets: list[str] | None = None) -> dict:
    """Run update_warehouse for this command and wait for it: in the warm worker when one serves this data
    directory (seconds), else in this process (the same job, after importing everything). ``assets`` runs
    only those assets of the job."""
    from dagster_project import worker

    reply = worker.call({"op": "run_job", "config": config, "assets": assets, "env": _spbe_env()})
    if reply is not None and reply.get("died"):
        return {"run_id": None, "success": False, "failed_steps": [
            "the worker process running this command died; the Dagster UI shows the run, and the next "
            "command marks it failed"], "failed_checks": [], "abandoned": []}
    if reply is not None:
        return reply
    from dagster_project.lib.dbt_project import ensure_manifest
    from dagster_project.runs import run_update

    print("no warm worker serves this data directory: this command imports Dagster, dbt and Great Expectations "
          "itself (about 20 s more; `spbe ui` or `spbe worker` keeps them warm)", file=sys.stderr)
    with _run_log(paths, what):
        ensure_manifest()
        return run_update(config, assets=assets)


def _report(paths: DataPaths, outcome: dict) -> list[dict]:
    """Print what this run did with each file it received (its own lines of the ingest log); returns them."""
    from dagster_project.lib.ingest_log import read_lines

    for run_id in outcome.get("abandoned") or []:
        print(f"run {run_id} was left unfinished by a process that died: marked failed", file=sys.stderr)
    lines = [line for line in read_lines(paths.ingest_log) if outcome.get("run_id") and
             line.get("run_id") == outcome["run_id"]]
    for line in lines:
        print(f"{line['original_name']}: {line['status']}, {line['rows']} rows - {line['reason']}")
    for line in outcome.get("failed_checks") or []:
        print(f"  check failed: {line}", file=sys.stderr)
    for line in outcome.get("failed_steps") or []:
        print(f"  {line}", file=sys.stderr)
    return lines


def build(args: argparse.Namespace) -> int:
    paths = _prepare_environment()
    from dagster_project.lib.inbox import return_orphans
    from dagster_project.lib.ingest import release_is_current
    from dagster_project.lib.ingest_log import read_lines
    from dagster_project.lib.sources import list_releases, source_config_from_env
    from dagster_project.lib.warehouse import plan_build

    started = time.monotonic()
    return_orphans(paths.inbox)
    waiting, odd = _settled_inbox(paths)  # without a daemon, nothing else would land them
    entries = list_releases(source_config_from_env())
    pending = [e for e in entries if not release_is_current(paths, e)]
    samples_due = args.samples or not any(line["dataset"] == "submissions" for line in read_lines(paths.ingest_log))
    if not (pending or samples_due or waiting or odd or args.force) and plan_build(paths).mode == "none":
        print(f"nothing changed since the last publish ({time.monotonic() - started:.1f} s)")
        if not (paths.reports / "scorecards" / "index.html").exists():
            outcome = _run(paths, {}, "reports", assets=list(REPORT_ASSETS))  # written after a publish: none ran
            _report(paths, outcome)
        return summary(args)
    config = {"changed_releases": True, "samples": "always" if args.samples else "if_empty",
              "full_build": args.force, "inbox_files": waiting, "set_aside": odd}
    outcome = _run(paths, config, "build")
    lines = _report(paths, outcome)
    rejected = sorted({str(line["year"]) for line in lines
                       if line["dataset"] == "official_results" and line["status"] == "quarantined"})
    if rejected:
        print(f"release(s) {', '.join(rejected)} were not accepted: the earlier release of that year stays current "
              "until a corrected one lands (see fct_ingest_log.reason)", file=sys.stderr)
    if not outcome["success"]:
        print(f"the build failed (run {outcome['run_id']}; log in {paths.state / 'logs'}): the published "
              "warehouse is unchanged", file=sys.stderr)
        return 1
    print(f"built and published in {time.monotonic() - started:.1f} s" if outcome.get("published")
          else f"the published warehouse was already current ({time.monotonic() - started:.1f} s)")
    return summary(args) or (1 if rejected else 0)


def _settled_inbox(paths: DataPaths) -> tuple[list[str], list[str]]:
    """The inbox files that are whole (as the sensor judges them), and the entries to set aside."""
    from dagster_project.lib.inbox import readable_name, ready_to_take

    ready, odd, _ = ready_to_take(paths.inbox)
    return [readable_name(paths.inbox, s.name) for s in ready], sorted(odd)


def ingest(args: argparse.Namespace) -> int:
    paths = _prepare_environment()
    from dagster_project.lib.inbox import claim_copy, open_for_writing, return_orphans
    from dagster_project.lib.processes import owner_of

    files = [Path(f) for f in args.files]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        print(f"not a file: {', '.join(missing)}", file=sys.stderr)
        return 2
    busy = [str(f) for f in files if open_for_writing(f)]
    if busy:
        print(f"still being written by another process: {', '.join(busy)}", file=sys.stderr)
        return 2
    return_orphans(paths.inbox)
    owner = owner_of()
    # Claimed for this command before any run starts: no inbox sensor can take them, and if this command dies,
    # the next look at the inbox returns them there.
    claims = [claim_copy(paths.inbox, f, f.name, owner) for f in files]
    config = {"claimed": [f"{owner}/{c.path.name}" for c in claims], "build": not args.no_build}
    started = time.monotonic()
    outcome = _run(paths, config, "ingest")
    lines = _report(paths, outcome)
    if not outcome["success"]:
        print(f"the run failed (run {outcome['run_id']}): the published warehouse is unchanged. Files listed above "
              f"are landed and the next build publishes them; files not landed are back in {paths.inbox}",
              file=sys.stderr)
        return 1
    if outcome.get("published"):
        print(f"published {paths.published_db} (log position {outcome['log_position']}) in "
              f"{time.monotonic() - started:.1f} s")
    elif not args.no_build:
        print("nothing new to publish (every file was a duplicate of what is current)")
    return 1 if any(line["status"] in ("quarantined", "rejected") for line in lines) else 0


def generate_samples(args: argparse.Namespace) -> int:
    from dagster_project.lib.samples import bundled_samples, generate

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.bundled:
        files = bundled_samples()
    else:
        ids = [i.strip() for i in args.institutions.split(",")] if args.institutions else None
        years = tuple(int(y) for y in args.years.split(","))
        files = generate(ids, years=years, seed=args.seed, fmt=args.format)
        files = files[: args.limit] if args.limit else files
    for f in files:
        (out / f.name).write_bytes(f.content)
    print(f"wrote {len(files)} synthetic submission files to {out}")
    return 0


UI_STOP_SECONDS = 60  # for `dg dev` to stop the webserver and the daemon (runs go on: they have their own session)
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _child_signals(stop_signal: int) -> None:
    """In a child of `spbe ui`, before it runs: SIGINT as Python expects it, and ``stop_signal`` sent by the
    kernel when `spbe ui` dies (Linux; elsewhere a closed `spbe ui` leaves its children running)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, stop_signal)


def _still_running_after(processes: dict[int, str], seconds: float) -> set[int]:
    """Waits until none of ``processes`` (from lib/processes.py: descendants) runs, or ``seconds``; those left."""
    from dagster_project.lib.processes import still_running

    deadline = time.monotonic() + seconds
    while (left := still_running(processes)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def ui(args: argparse.Namespace) -> int:
    """`dg dev` (the Dagster webserver and daemon: sensors, schedules, run queue and monitoring) and the warm
    worker, stopped together on Ctrl-C."""
    import subprocess
    import urllib.request

    paths = _prepare_environment()
    from dagster_project.lib.dbt_project import ensure_manifest

    with _run_log(paths, "dbt_parse"):
        ensure_manifest()  # before any process loads the code location
    commands = {
        "worker": [sys.executable, "-m", "dagster_project.worker"],
        # The project's own environment (.venv), found from pyproject.toml as `dg dev` run by hand finds it.
        "dg dev": [str(Path(sys.executable).parent / "dg"), "dev", "--host", args.host, "--port", str(args.port),
                   "--target-path", str(REPO_ROOT)],
    }
    # Each in a process group of its own, with SIGINT as Python expects it: started in the background by a
    # script, a process inherits SIGINT ignored, and `dg dev` then ignores SIGTERM too (it maps one to the
    # other) and could not be stopped. Ctrl-C, SIGTERM or a closed terminal reach this process, which stops
    # the others; if it dies without a word (SIGKILL, OOM), the kernel sends each its stop signal.
    stop_signal = {"worker": signal.SIGTERM, "dg dev": signal.SIGINT}
    processes = {name: subprocess.Popen(cmd, cwd=REPO_ROOT, start_new_session=True,
                                        preexec_fn=functools.partial(_child_signals, stop_signal[name]))
                 for name, cmd in commands.items()}
    url = f"http://{args.host}:{args.port}"
    started = time.monotonic()

    def stop(*_):
        from dagster_project.lib.processes import descendants

        started_here = descendants(os.getpid())  # the servers dg dev started too, in whatever process group
        for name, proc in processes.items():
            if proc.poll() is None:  # `dg dev` stops its servers on what Ctrl-C sends; the worker, on SIGTERM
                proc.send_signal(stop_signal[name])
        deadline = time.monotonic() + UI_STOP_SECONDS
        for proc in processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for proc in processes.values():  # what did not stop in time, with everything it started
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        # Return only once nothing that was started is left: a server `dg dev` started in a process group of
        # its own gets a few seconds to finish stopping, then is killed too.
        for pid in _still_running_after(started_here, seconds=10):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _still_running_after(started_here, seconds=5)  # a killed process takes a moment to go
        raise SystemExit(0)

    for received in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(received, stop)
    while time.monotonic() - started < 120:
        if any(p.poll() is not None for p in processes.values()):
            dead = [n for n, p in processes.items() if p.poll() is not None]
            print(f"spbe ui: {', '.join(dead)} stopped; stopping the rest", file=sys.stderr)
            stop()
        with contextlib.suppress(OSError):
            urllib.request.urlopen(f"{url}/server_info", timeout=2).read()
            break
        time.sleep(0.5)
    print(f"Dagster UI on {url} (ready in {time.monotonic() - started:.0f} s); the daemon runs the sensors and the "
          f"warm worker runs the runs. Drop files into {paths.inbox}. Ctrl-C stops both.", flush=True)
    while True:
        for name, proc in processes.items():
            if proc.poll() is not None:
                print(f"spbe ui: the {name} stopped (exit {proc.returncode}); stopping the rest", file=sys.stderr)
                stop()
        time.sleep(1)


def worker_command(_: argparse.Namespace) -> int:
    _prepare_environment()
    from dagster_project import worker
    from dagster_project.lib.dbt_project import ensure_manifest

    ensure_manifest()
    worker.serve()
    return 0


def postgres(args: argparse.Namespace) -> int:
    """The local PostgreSQL server that holds the DuckLake catalog when SPBE_DUCKLAKE_CATALOG is not set."""
    from dagster_project.lib import ducklake

    server = ducklake.local_server(_prepare_environment())
    if args.action == "start":
        try:
            server.start()
        except (RuntimeError, OSError) as e:
            print(f"spbe postgres: {e}", file=sys.stderr)
            return 1
    elif args.action == "stop":
        server.stop()
    running = server.running()
    print(f"PostgreSQL in {server.root}: {'running' if running else 'stopped'}")
    if running:
        print(f"catalog: postgres:{server.dsn}\n(SPBE_WAREHOUSE=ducklake uses it; "
              f"{ducklake.CATALOG_ENV} names another)")
    return 0 if running or args.action == "stop" else 1


def doctor(_: argparse.Namespace) -> int:
    """Where the data lives, what the build database reads, what is published, and whether they agree."""
    paths = data_paths()
    import duckdb

    from dagster_project import worker
    from dagster_project.lib.ingest_log import IngestLog
    from dagster_project.lib.warehouse import absolute_source_paths, plan_build, read_manifest

    problems = []
    print(f"data directory   {paths.root} (SPBE_DATA_DIR{'' if 'SPBE_DATA_DIR' in os.environ else ', default'})")
    print(f"inbox            {paths.inbox}")
    position = IngestLog.of(paths.ingest_log).position() if paths.ingest_log.exists() else 0
    print(f"ingest log       {paths.ingest_log}: position {position}")
    if paths.build_db.exists():
        try:
            stray = absolute_source_paths(paths.build_db)
            print("build database   " + (f"{paths.build_db}: every file it reads is relative to the data directory"
                                         if not stray else f"{paths.build_db}: reads files by absolute path:"))
        except duckdb.IOException:
            stray = []
            print(f"build database   {paths.build_db}: a build is writing it now (ask again when it is done)")
        for line in stray:
            print(f"                   {line}")
            problems.append(f"the build database reads {line.split(' reads ')[-1]}, not under the data directory")
    else:
        print(f"build database   {paths.build_db}: not built yet")
    manifest = read_manifest(paths.published_manifest)
    if manifest is None:
        print(f"published        {paths.published_db}: nothing published yet")
    else:
        built_in = manifest.get("data_dir")
        print(f"published        {paths.published_db}: run {manifest['run_id']} at {manifest['published_at']}, "
              f"log position {manifest.get('log_position')}, built in {built_in}")
        if built_in and Path(built_in) != paths.root:
            print(f"                   (the data directory was at {built_in} then: it has moved, which is fine "
                  "while the build database reads relative paths)")
        if not paths.published_db.exists():
            problems.append("the manifest names a published file that does not exist")
    if paths.published_db.exists() or manifest is not None:
        plan = plan_build(paths)
        print(f"next build       {plan.mode}: {plan.reason}")
    print(f"warm worker      {'running' if worker.is_running() else 'not running (runs start cold: spbe ui)'} "
          f"({worker.socket_path()})")
    if problems:
        print("\nproblems:\n" + "\n".join(f"  - {p}" for p in problems))
        print("fix: `spbe build --force` rebuilds every model from the current data directory")
        return 1
    print("\nall agree")
    return 0


def bench(args: argparse.Namespace) -> int:
    if args.latency:  # through a real daemon, on a data dir of its own: no environment of ours to prepare
        from dagster_project.bench.latency import format_latency, run_latency

        print(format_latency(run_latency(data_paths().root / "bench", drops=args.drops, burst=args.burst)))
        return 0
    paths = _prepare_environment()
    from dagster_project.bench import format_summary, run_bench
    from dagster_project.lib.dbt_project import ensure_manifest

    ensure_manifest()
    with _run_log(paths, f"bench_{args.tier}"):
        result = run_bench(args.tier, args.repeat, paths.root / "bench")
    print(format_summary(result))
    print(f"results: {paths.root / 'bench'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spbe", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="land releases, build the marts and publish spbe.duckdb")
    b.add_argument("--force", action="store_true", help="rebuild every model and publish, even if nothing changed")
    b.add_argument("--samples", action="store_true",
                   help="land the bundled demo submissions even into a warehouse that has submissions")
    b.set_defaults(fn=build)
    i = sub.add_parser("ingest", help="land submission files now, build what they affect, publish")
    i.add_argument("files", nargs="+")
    i.add_argument("--no-build", action="store_true", help="land only; the next build publishes them")
    i.set_defaults(fn=ingest)
    g = sub.add_parser("generate-samples", help="synthetic submissions for real institutions (deterministic)")
    g.add_argument("--out", default=str(data_paths().root / "generated"))
    g.add_argument("--institutions", help="comma-separated registry ids (default: all with published results)")
    g.add_argument("--years", default="2023,2024")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--format", choices=["json", "csv"], default="json")
    g.add_argument("--limit", type=int, help="at most this many files")
    g.add_argument("--bundled", action="store_true", help="the small set bundled in data/samples/")
    g.set_defaults(fn=generate_samples)
    add_reading_commands(sub)
    k = sub.add_parser("bench", help="time the pipeline on synthetic tiers next to a plain DuckDB script")
    k.add_argument("--tier", choices=list(TIERS), default="tiny")
    k.add_argument("--repeat", type=int, default=3)
    k.add_argument("--latency", action="store_true", help="drop-to-published latency through a real daemon "
                   "(spbe ui on a free port), one file at a time, a burst, and spbe ingest")
    k.add_argument("--drops", type=int, default=10, help="--latency: files dropped one at a time")
    k.add_argument("--burst", type=int, default=100, help="--latency: files dropped at once")
    k.set_defaults(fn=bench)
    u = sub.add_parser("ui", help="the Dagster UI, daemon and warm worker on localhost")
    u.add_argument("--host", default="127.0.0.1")
    u.add_argument("--port", type=int, default=3000)
    u.set_defaults(fn=ui)
    sub.add_parser("worker", help="the warm worker alone (spbe ui starts one)").set_defaults(fn=worker_command)
    sub.add_parser("doctor", help="data directory, build sources and published manifest: do they agree?"
                   ).set_defaults(fn=doctor)
    p = sub.add_parser("postgres", help="a PostgreSQL server in the data directory, for the DuckLake catalog")
    p.add_argument("action", choices=["start", "stop", "status"])
    p.set_defaults(fn=postgres)
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except BrokenPipeError:  # the reader left (`spbe summary | head`): nothing went wrong here
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except OSError as e:  # the disk refused a write outside any run (a log, the instance): say so plainly
        where = f" {e.filename}" if e.filename else ""
        print(f"spbe {args.command}: could not write{where}: {e.strerror or e}. The published warehouse is "
              "replaced only by a complete publish, and files not yet landed stay in the inbox.", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
