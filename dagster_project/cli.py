"""``spbe``: build and publish the warehouse, query it, or open the Dagster UI.

    spbe build            land every release of the configured source and the bundled samples, build, publish
    spbe ingest FILE...   land submission files now (as the inbox sensor would), then build and publish
    spbe generate-samples synthetic submissions for real institutions (deterministic)
    spbe query "<SQL>"    read-only SQL on the published data/warehouse/spbe.duckdb (--as-of DATE: as published then)
    spbe snapshots        the published warehouses kept for --as-of
    spbe summary          the warehouse path, the latest national top 10 and the predikat counts
    spbe bench            time the pipeline on synthetic tiers next to a plain DuckDB script
    spbe ui               the Dagster UI on localhost, loading workspace.yaml
"""

import argparse
import contextlib
import os
import re
import shutil
import sys
import time
from pathlib import Path

from dagster_project.bench import TIERS
from dagster_project.paths import BUNDLED_DATA_DIR, REPO_ROOT, DataPaths, data_paths

SAMPLES_DIR = BUNDLED_DATA_DIR / "samples"


def _prepare_environment() -> DataPaths:
    """Absolute SPBE_DATA_DIR and DAGSTER_HOME (dbt runs in another cwd), telemetry off, dirs present."""
    paths = data_paths().ensure()
    os.environ["SPBE_DATA_DIR"] = str(paths.root)
    # The venv's bin first: dagster-dbt looks dbt up on PATH, and `dagster dev` starts its processes by name.
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(paths.dagster_home))).resolve()
    os.environ["DAGSTER_HOME"] = str(home)
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    for var, value in (("DO_NOT_TRACK", "1"), ("DBT_SEND_ANONYMOUS_USAGE_STATS", "false"),
                       ("GX_ANALYTICS_ENABLED", "false")):
        os.environ.setdefault(var, value)
    return paths


# Runs started by the CLI print no Dagster log: the CLI says what failed in a line each, and the Dagster UI
# (same DAGSTER_HOME) has the full event log with stack traces.
QUIET_RUN = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@contextlib.contextmanager
def _run_log(paths: DataPaths, name: str):
    """dagster-dbt echoes dbt's log on stdout; keep it in data/state/logs/ instead of the terminal."""
    log_dir = paths.state / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with open(log_path, "w", encoding="utf-8") as f, contextlib.redirect_stdout(f):
        yield log_path


def _tags() -> dict[str, str]:
    from dagster_project.defs.recovery import runner_tags

    return runner_tags()


@contextlib.contextmanager
def _instance():
    """The Dagster instance of DAGSTER_HOME, after failing the runs of `spbe` processes that were killed."""
    import dagster as dg

    from dagster_project.defs.recovery import fail_abandoned_runs

    with dg.DagsterInstance.get() as instance:
        for run_id in fail_abandoned_runs(instance):
            print(f"run {run_id} was left unfinished by a process that died: marked failed", file=sys.stderr)
        yield instance


def _failed_checks(result) -> list[str]:
    return [f"{e.asset_key.to_user_string()}:{e.check_name} - {e.description or 'failed'}"
            for e in result.get_asset_check_evaluations() if not e.passed and e.severity.value == "ERROR"]


def _failed_steps(result) -> list[str]:
    """Per failed step, the message of the error's root cause (the OSError, the dbt summary), no stack trace."""
    lines = []
    for event in result.all_events:
        if event.is_step_failure:
            error = event.event_specific_data.error
            while error.cause is not None:
                error = error.cause
            message = error.message.strip().removeprefix("dagster._core.definitions.events.Failure: ")
            lines.append(f"step {event.step_key}: {message[:2000]}")
    return lines


def build(args: argparse.Namespace) -> int:
    paths = _prepare_environment()
    from dagster_project.lib.archive import file_sha256
    from dagster_project.lib.ingest import SUBMISSIONS, is_accepted
    from dagster_project.lib.publish import build_fingerprint, input_hashes, published_fingerprint
    from dagster_project.lib.sources import list_releases, source_config_from_env

    started = time.monotonic()
    entries = list_releases(source_config_from_env())
    # A release whose manifest sha256 was already landed and accepted needs no new run; so does a sample.
    pending = [e for e in entries if args.force or not (e.sha256 and is_accepted(paths, e.sha256))]
    samples = [p for p in sorted(SAMPLES_DIR.glob("*.json"))
               if args.force or not is_accepted(paths, file_sha256(p), SUBMISSIONS, "json")]
    if not pending and not samples and not args.force and \
            published_fingerprint(paths.published_manifest) == build_fingerprint(input_hashes(paths)):
        print(f"nothing changed since the last publish ({time.monotonic() - started:.1f} s)")
        if not (paths.reports / "scorecards" / "index.html").exists():
            with _instance() as instance:
                if not _publish_reports(paths, _definitions(paths), instance):
                    return 1
        return summary(args)


    from dagster_project.defs.automation import INGEST_JOB
    from dagster_project.defs.releases import release_years

    definitions = _definitions(paths)
    with _instance() as instance:
        years = [str(e.year) for e in pending]
        unknown = sorted(set(years) - set(instance.get_dynamic_partitions(release_years.name)))
        if unknown:
            instance.add_dynamic_partitions(release_years.name, unknown)
        ingest = definitions.resolve_job_def(INGEST_JOB)
        rejected = []
        for year in years:  # every year lands on its own: a bad one does not hold back the others
            with _run_log(paths, f"ingest_{year}") as log_path:
                result = ingest.execute_in_process(partition_key=year, instance=instance, run_config=QUIET_RUN,
                                                   tags=_tags(), raise_on_error=False)
            blocked = _failed_checks(result)
            if not result.success or blocked:
                rejected.append(year)
                print(f"release {year} was not accepted:", file=sys.stderr)
                for line in blocked or [f"ingestion failed, see {log_path} or run {result.run_id} in the UI"]:
                    print(f"  {line}", file=sys.stderr)
            else:
                print(f"release {year}: landed")
        if rejected:
            print(f"nothing rebuilt: the published warehouse is unchanged until release(s) {', '.join(rejected)} "
                  "are fixed (or removed from the source)", file=sys.stderr)
            return 1
        samples_landed = not samples or _land_submissions(paths, definitions, instance, samples)[1]
        if not _build_warehouse(paths, definitions, instance):
            return 1
    print(f"built and published in {time.monotonic() - started:.1f} s")
    return summary(args) if samples_landed else 1


def _definitions(paths: DataPaths):
    from dagster_project.definitions import defs
    from dagster_project.defs.warehouse import refresh_dbt_manifest

    with _run_log(paths, "dbt_parse"):
        refresh_dbt_manifest()
    return defs()


def _land_submissions(paths: DataPaths, definitions, instance, files: list[Path]) -> tuple[list[dict], bool]:
    """Copy files into the inbox and run the inbox sensor's job on them; returns their ingest-log lines, and
    whether every file was landed (loaded, duplicate or quarantined)."""
    from dagster_project.defs.automation import SUBMISSIONS_JOB
    from dagster_project.lib.archive import read_ingest_log

    names = [_copy_into_inbox(paths.inbox, f) for f in files]
    config = {**QUIET_RUN, "ops": {"submission_files": {"config": {"files": names}}}}
    before = len(read_ingest_log(paths.ingest_log))
    with _run_log(paths, "ingest_submissions"):
        result = definitions.resolve_job_def(SUBMISSIONS_JOB).execute_in_process(
            instance=instance, run_config=config, raise_on_error=False, tags=_tags())
    landed = read_ingest_log(paths.ingest_log)[before:]
    for line in landed:
        print(f"{line['original_name']}: {line['status']}, {line['rows']} rows - {line['reason']}")
    if not result.success:
        print(f"landing the submissions failed (run {result.run_id}); files not landed stay in {paths.inbox}:",
              file=sys.stderr)
        for line in _failed_steps(result):
            print(f"  {line}", file=sys.stderr)
    return landed, result.success


def _copy_into_inbox(inbox: Path, source: Path) -> str:
    """A safe inbox name for a file of the user's: plain characters, no leading dot, never overwriting."""
    from dagster_project.lib.archive import file_sha256

    stem = re.sub(r"[^A-Za-z0-9._-]", "_", source.name).lstrip(".") or "submission"
    name = stem
    if (inbox / name).exists():
        name = f"{file_sha256(source)[:12]}-{stem}"
    shutil.copyfile(source, inbox / name)
    return name


def _build_warehouse(paths: DataPaths, definitions, instance) -> bool:
    from dagster_project.defs.automation import BUILD_JOB

    with _run_log(paths, "build_warehouse") as log_path:
        result = definitions.resolve_job_def(BUILD_JOB).execute_in_process(
            instance=instance, run_config=QUIET_RUN, raise_on_error=False, tags=_tags())
    if result.success:
        return _publish_reports(paths, definitions, instance)
    print(f"warehouse build failed (log: {log_path}); the published warehouse is unchanged:", file=sys.stderr)
    for line in _failed_checks(result):
        print(f"  {line}", file=sys.stderr)
    for line in _failed_steps(result):
        print(f"  {line}", file=sys.stderr)
    return False


def _publish_reports(paths: DataPaths, definitions, instance) -> bool:
    """Scorecards, validation results and dbt docs from the warehouse just published (data/reports/)."""
    from dagster_project.defs.automation import REPORTS_JOB

    with _run_log(paths, "publish_reports") as log_path:
        result = definitions.resolve_job_def(REPORTS_JOB).execute_in_process(
            instance=instance, run_config=QUIET_RUN, raise_on_error=False, tags=_tags())
    if result.success:
        print(f"reports: {paths.reports / 'scorecards' / 'index.html'}, {paths.reports / 'validation.html'}, "
              f"{paths.reports / 'dbt-docs.html'}")
        return True
    print(f"the warehouse is published, but writing the reports failed (log: {log_path}):", file=sys.stderr)
    for line in _failed_steps(result):
        print(f"  {line}", file=sys.stderr)
    return False


def ingest(args: argparse.Namespace) -> int:
    paths = _prepare_environment()

    files = [Path(f) for f in args.files]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        print(f"not a file: {', '.join(missing)}", file=sys.stderr)
        return 2
    definitions = _definitions(paths)
    with _instance() as instance:
        landed, all_landed = _land_submissions(paths, definitions, instance, files)
        if not all_landed:
            print("nothing rebuilt: fix the cause above and run again", file=sys.stderr)
            return 1
        if not args.no_build and not _build_warehouse(paths, definitions, instance):
            return 1
    if not args.no_build:
        print(f"published {paths.published_db}")
    return 1 if any(line["status"] == "quarantined" for line in landed) else 0


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


def _connect_published(paths: DataPaths, as_of: str | None = None):
    import duckdb

    from dagster_project.lib.snapshots import parse_as_of, snapshot_as_of

    db = paths.published_db
    if as_of:
        try:
            snapshot = snapshot_as_of(paths.snapshots, parse_as_of(as_of))
        except (ValueError, LookupError) as e:
            raise SystemExit(str(e)) from None
        print(f"as of {as_of}: the warehouse published {snapshot.published_at.isoformat()} "
              f"(run {snapshot.run_id})", file=sys.stderr)
        db = snapshot.path
    if not db.exists():
        raise SystemExit(f"{db} does not exist yet: run `spbe build` (or `make run`) first")
    # Read-only, and no file or network access from SQL: the CLI answers from the marts only.
    return duckdb.connect(str(db), read_only=True, config={"enable_external_access": False})


def snapshots(_: argparse.Namespace) -> int:
    from dagster_project.lib.snapshots import KEEP_ENV, keep_setting, list_snapshots

    paths = data_paths()
    kept = list_snapshots(paths.snapshots)
    print(f"{len(kept)} published warehouses kept in {paths.snapshots} ({KEEP_ENV}={keep_setting()}), newest last:")
    for s in kept:
        print(f"  {s.published_at.isoformat()}  run {s.run_id}  {s.path.name}")
    return 0


def query(args: argparse.Namespace) -> int:
    con = _connect_published(data_paths(), args.as_of)
    try:
        rel = con.sql(args.sql)
        if rel is None:
            return 0
        if args.format == "csv":
            rel.df().to_csv(sys.stdout, index=False)
        elif args.format == "json":
            sys.stdout.write(rel.df().to_json(orient="records", force_ascii=False, indent=2) + "\n")
        else:
            rel.show(max_rows=args.max_rows, max_width=shutil.get_terminal_size((160, 40)).columns)
    except Exception as e:  # duckdb raises several error classes; all mean "your SQL failed"
        print(f"query failed: {e}", file=sys.stderr)
        return 2
    finally:
        con.close()
    return 0


def summary(_: argparse.Namespace | None) -> int:
    paths = data_paths()
    con = _connect_published(paths)
    try:
        # fetchall: DuckDB 2.0 refuses new work on a connection with a half-read result
        ((year,),) = con.execute("select max(year) from fct_rankings where scope = 'national'").fetchall()
        print(f"\nwarehouse: {paths.published_db}")
        print(f"national ranking {year}, top 10:")
        con.sql("""
            select r.rank, d.name, r.index_value as indeks, r.predikat, d.category
            from fct_rankings r join dim_institution d using (institution_id)
            where r.scope = 'national' and r.year = $year
            order by r.rank, d.name limit 10
        """, params={"year": year}).show(max_width=160)
        print(f"institutions per predikat, {year}:")
        con.sql("""
            select n_memuaskan as "Memuaskan", n_sangat_baik as "Sangat Baik", n_baik as "Baik",
                   n_cukup as "Cukup", n_kurang as "Kurang", n_institutions as total
            from agg_groups where group_type = 'national' and year = $year
        """, params={"year": year}).show()
    finally:
        con.close()
    return 0


def ui(args: argparse.Namespace) -> int:
    _prepare_environment()
    from dagster_project.defs.warehouse import refresh_dbt_manifest

    refresh_dbt_manifest()  # before the webserver loads the code location
    cmd = [str(Path(sys.executable).parent / "dagster"), "dev", "-w", str(REPO_ROOT / "workspace.yaml"),
           "-h", args.host, "-p", str(args.port)]
    os.chdir(REPO_ROOT)
    os.execv(cmd[0], cmd)
    return 0  # not reached


def bench(args: argparse.Namespace) -> int:
    paths = _prepare_environment()
    from dagster_project.bench import format_summary, run_bench
    from dagster_project.defs.warehouse import refresh_dbt_manifest

    refresh_dbt_manifest()
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
    b.add_argument("--force", action="store_true", help="re-land every release and rebuild even if nothing changed")
    b.set_defaults(fn=build)
    i = sub.add_parser("ingest", help="land submission files now, then build and publish")
    i.add_argument("files", nargs="+")
    i.add_argument("--no-build", action="store_true", help="land only; the marts follow at the next build")
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
    q = sub.add_parser("query", help="read-only SQL on the published warehouse")
    q.add_argument("sql")
    q.add_argument("--format", choices=["table", "csv", "json"], default="table")
    q.add_argument("--max-rows", type=int, default=40)
    q.add_argument("--as-of", metavar="DATE", help="query the warehouse as it was published on DATE (2025-01-15, end "
                   "of day Asia/Jakarta) or at an ISO timestamp; see `spbe snapshots`")
    q.set_defaults(fn=query)
    sub.add_parser("snapshots", help="the published warehouses kept for --as-of queries").set_defaults(fn=snapshots)
    sub.add_parser("summary", help="top 10 of the latest national ranking and predikat counts").set_defaults(fn=summary)
    k = sub.add_parser("bench", help="time the pipeline on synthetic tiers next to a plain DuckDB script")
    k.add_argument("--tier", choices=list(TIERS), default="tiny")
    k.add_argument("--repeat", type=int, default=3)
    k.set_defaults(fn=bench)
    u = sub.add_parser("ui", help="the Dagster UI (dagster dev) on localhost")
    u.add_argument("--host", default="127.0.0.1")
    u.add_argument("--port", type=int, default=3000)
    u.set_defaults(fn=ui)
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except OSError as e:  # the disk refused a write outside any run (a log, the instance): say so plainly
        where = f" {e.filename}" if e.filename else ""
        print(f"spbe {args.command}: could not write{where}: {e.strerror or e}. The published warehouse is "
              "replaced only by a complete publish, and files not yet landed stay in the inbox.", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
