"""The reading commands of ``spbe``: query, export, report, snapshots, summary. Each opens the published
file (or a kept snapshot) read-only, with no file or network access from SQL, and never starts a run."""

import argparse
import atexit
import itertools
import shutil
import sys
import tempfile
import time
from pathlib import Path

from dagster_project.paths import DataPaths, data_paths


def add_reading_commands(sub) -> None:
    """Their subcommands, on ``spbe``'s parser."""
    q = sub.add_parser("query", help="read-only SQL on the published warehouse")
    q.add_argument("sql")
    q.add_argument("--format", choices=["table", "csv", "json"], default="table")
    q.add_argument("--max-rows", type=int, default=40)
    q.add_argument("--as-of", metavar="DATE", help="query the warehouse as it was published on DATE (2025-01-15, end "
                   "of day Asia/Jakarta) or at an ISO timestamp; see `spbe snapshots`")
    q.set_defaults(fn=query)
    x = sub.add_parser("export", help="marts or a query to CSV, Parquet or XLSX for spreadsheets (formulas made inert)",
                       description="Tables of the published warehouse, filtered, or one query, to CSV or Parquet (a "
                       "folder: a file per table and about.csv) or XLSX (a sheet per table and an 'about' sheet: what "
                       "each column means, the run, code version and time the data was published).")
    x.add_argument("tables", nargs="*", metavar="TABLE", help="marts to export: fct_rankings dim_institution ...")
    x.add_argument("--query", metavar="SQL", help="export this query instead of tables")
    x.add_argument("--name", default="query", help="--query: the sheet or file name (default: query)")
    x.add_argument("--format", choices=["csv", "parquet", "xlsx"], default="xlsx")
    x.add_argument("--year", type=int, action="append", default=[], help="only these years (repeatable)")
    x.add_argument("--province", action="append", default=[], metavar="CODE|NAME",
                   help="only institutions of this province: 32 or 'Jawa Barat' (repeatable)")
    x.add_argument("--category", action="append", default=[], help="kabupaten, kota, provinsi, kementerian, lns, ...")
    x.add_argument("--institution", action="append", default=[], metavar="ID", help="32.11 (repeatable)")
    x.add_argument("--where", metavar="SQL",
                   help="a further condition on the table's columns (alias t), as `t.scope = 'province'`")
    x.add_argument("--out", metavar="PATH", help="file (xlsx) or folder (csv, parquet); default data/exports/...")
    x.add_argument("--as-of", metavar="DATE", help="export the warehouse as published on DATE (see `spbe snapshots`)")
    x.set_defaults(fn=export)
    r = sub.add_parser("report", help="an institution's scorecard: its page, or (--single-file) one file to send")
    r.add_argument("--institution", required=True, metavar="ID", help="registry id: 32.11, kementerian-pertanian")
    r.add_argument("--single-file", action="store_true", help="write one self-contained HTML file (CSS and plotly "
                   "inlined: opens offline anywhere, prints to A4) from the published warehouse")
    r.add_argument("--year", type=int, help="--single-file: as it stood after that year's results")
    r.add_argument("--out", metavar="PATH", help="--single-file: the file or folder to write (default: "
                   "data/reports/single/scorecard-<id>[-<year>].html)")
    r.set_defaults(fn=report)
    sub.add_parser("snapshots", help="the published warehouses kept for --as-of queries").set_defaults(fn=snapshots)
    sub.add_parser("summary", help="top 10 of the latest national ranking and predikat counts").set_defaults(fn=summary)


def _connect_published(paths: DataPaths, as_of: str | None = None, writable_dir: Path | None = None):
    import duckdb

    from dagster_project.lib import ducklake
    from dagster_project.lib.snapshots import parse_as_of, snapshot_as_of

    if ducklake.backend() == "ducklake":
        return _connect_ducklake(paths, as_of, writable_dir)
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
    return _locked(duckdb.connect(str(db), read_only=True), writable_dir)


def _connect_ducklake(paths: DataPaths, as_of: str | None, writable_dir: Path | None):
    """The DuckLake catalog attached read-only (as ``spbe``, the default database), at the snapshot current
    at ``as_of`` when given (DuckLake time travel); the marts' Parquet files are its only readable folder."""
    import duckdb

    from dagster_project.lib import ducklake
    from dagster_project.lib.snapshots import parse_as_of

    lake = ducklake.setting(paths)
    try:
        moment = parse_as_of(as_of) if as_of else None
        con = ducklake.connect(lake, read_only=True, as_of=moment)
    except (ValueError, ducklake.CatalogUnavailable) as e:
        raise SystemExit(str(e)) from None
    except duckdb.Error as e:
        if moment is not None and "No snapshot found" in str(e):
            raise SystemExit(f"no DuckLake snapshot as of {moment.isoformat()}: the catalog's first publish came "
                             "later (`spbe query \"from spbe.snapshots()\"` lists them)") from None
        raise SystemExit(ducklake.redacted(f"cannot attach the DuckLake catalog {lake.catalog}: {e}")) from None
    if moment is not None:
        (snapshot,) = con.execute("select id from spbe.current_snapshot()").fetchone() or (None,)
        print(f"as of {as_of}: DuckLake snapshot {snapshot}", file=sys.stderr)
    return _locked(con, writable_dir, readable=[lake.data_path])


def _locked(con, writable_dir: Path | None, readable: list[Path] = ()):
    # Read-only, and no file or network access from SQL: the CLI answers from the marts only (an export may
    # write its own folder). DuckDB may spill to, and so allows, its temp folder: a private one, removed at
    # exit. Then the configuration is locked.
    spill = tempfile.mkdtemp(prefix="spbe-query-")
    atexit.register(shutil.rmtree, spill, True)
    con.execute("set temp_directory = ?", [spill])
    allowed = [f"{p}/" for p in (*readable, *([writable_dir] if writable_dir is not None else []))]
    if allowed:
        con.execute("set allowed_directories = ?", [allowed])
    con.execute("set enable_external_access = false")
    con.execute("set lock_configuration = true")
    return con


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
        if args.format == "csv":  # formulas neutralised, as in `spbe export`
            from dagster_project.lib.export import write_relation_csv

            write_relation_csv(rel, sys.stdout)
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


def export(args: argparse.Namespace) -> int:
    from dagster_project.lib.export import (
        NAME,
        ExportError,
        Filters,
        export,
        partial_path,
        provenance,
        query_selection,
        table_selection,
    )

    if bool(args.tables) == bool(args.query):
        print("spbe export: name one or more tables, or give --query", file=sys.stderr)
        return 2
    filters = Filters(tuple(args.year), tuple(args.province), tuple(args.category), tuple(args.institution),
                      args.where)
    if args.query and filters != Filters():
        print("spbe export: filters go with tables; put them in the --query's own where clause", file=sys.stderr)
        return 2
    bad = [n for n in [*args.tables, args.name] if not NAME.fullmatch(n)]
    if bad:
        print(f"spbe export: {bad[0]!r} is not a table or query name (lower-case letters, digits, _)", file=sys.stderr)
        return 2
    paths = data_paths()
    stamp = time.strftime("%Y%m%dT%H%M%S")
    suffix = ".xlsx" if args.format == "xlsx" else ""
    stem = paths.root / "exports" / f"{'-'.join(args.tables or [args.name])[:80]}-{stamp}"
    candidates = (stem.with_name(stem.name + (f"-{n}" if n > 1 else "") + suffix) for n in itertools.count(1))
    out = Path(args.out).resolve() if args.out else next(p for p in candidates if not p.exists())
    tmp = partial_path(out)
    con = _connect_published(paths, args.as_of, writable_dir=tmp)
    try:
        selections = ([query_selection(args.query, args.name)] if args.query
                      else [table_selection(con, t, filters) for t in dict.fromkeys(args.tables)])
        written = export(con, selections, args.format, out, provenance(con, filters), tmp)
    except ExportError as e:
        print(f"spbe export: {e}", file=sys.stderr)
        return 2
    finally:
        con.close()
    rows = ", ".join(f"{t} {n:,} rows" for t, n in written.tables.items())
    print(f"{written.path}  {args.format}, {rows}, {written.bytes / 1e3:,.0f} kB in {written.seconds:.2f} s")
    return 0


def report(args: argparse.Namespace) -> int:
    from dagster_project.lib.scorecards import page_name, single_file, single_file_name

    paths = data_paths()
    if not args.single_file:  # the institution's page in the published site
        if args.year is not None or args.out:
            print("spbe report: --year and --out go with --single-file", file=sys.stderr)
            return 2
        page = paths.reports / "scorecards" / "institutions" / page_name(args.institution)
        if not page.exists():
            print(f"spbe report: no page {page}: check the id (dim_institution.institution_id), or run `spbe build`; "
                  "--single-file writes one from the published warehouse", file=sys.stderr)
            return 2
        print(page)
        return 0
    import plotly.offline

    from dagster_project.lib.archive import write_atomically

    con = _connect_published(paths)
    try:
        scorecard = single_file(con, args.institution, plotly.offline.get_plotlyjs(), args.year)
    except LookupError as e:
        print(f"spbe report: {e}", file=sys.stderr)
        return 2
    finally:
        con.close()
    name = single_file_name(args.institution, args.year)
    out = Path(args.out) if args.out else paths.reports / "single" / name
    out = (out / name if out.is_dir() else out).resolve()
    write_atomically(out, scorecard.html.encode("utf-8"))
    print(f"{out}  {out.stat().st_size / 1e6:.1f} MB, {scorecard.n_charts} charts, opens offline")
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
