"""The one path from an event to published data: the ``update_warehouse`` job.

Every trigger runs this job with the same code: the inbox sensor (files), the release sensor (release
years), the reference sensor (edited reference tables), the submission-window schedule, ``spbe ingest`` and
``spbe build``. Its first step lands what the event brought and then, holding the build lock, builds what
the new data affects and publishes it (lib/warehouse.py decides: nothing, a partial build or a full one).
The reports (defs/reports.py) follow a publish in the same run.

One step rather than one per asset: a step that yields nothing for an asset makes Dagster skip every step
after it, and an event rebuilds a different part of the graph each time. The dbt models are defined in
defs/warehouse.py and are not part of this job: the step records a materialization for each model it
rebuilt and an evaluation for each dbt test it ran. Dagster writes a "planned" event for every asset and
check a run could touch when the run is created (about 30 ms each on the local SQLite instance, measured:
5.7 s for the whole dbt graph), so the job names only what every event may change.
"""


import time
from dataclasses import dataclass
from datetime import datetime

import dagster as dg

from dagster_project.defs.checks import failures_metadata
from dagster_project.defs.resources import DataDirResource, ReleaseSourceResource
from dagster_project.defs.translator import asset_key
from dagster_project.defs.warehouse import dbt_events
from dagster_project.lib.dbt_project import Graph, NodeResult, partial_selection, project_graph, stream_dbt
from dagster_project.paths import BUNDLED_DATA_DIR, DataPaths

JOB = "update_warehouse"
STEP = "land_build_publish"  # the job's first step (run config: {"ops": {STEP: {"config": {...}}}})
WINDOWS_TAG = "spbe/windows"  # the schedule's run: report these windows' completeness
QUARANTINED_TAG = "quarantined"  # on a run that refused files: how many (seen in the Runs list)
FAILED_CHECK_TAG = "spbe/failed_check"

RELEASES_KEY = dg.AssetKey("official_release")
SUBMISSIONS_KEY = dg.AssetKey("submission_files")
WORK_UNITS_KEY = dg.AssetKey("work_unit_files")
INGEST_LOG_KEY = dg.AssetKey("ingest_log")
REFERENCE_KEY = dg.AssetKey("reference_tables")
PUBLISHED_KEY = dg.AssetKey("published_warehouse")
WINDOW_REPORT_KEY = dg.AssetKey("window_completeness_report")
RELEASE_SUITE, RELEASE_WARNINGS, SUBMISSIONS_SUITE = "official_results_suite", "official_results_warnings", \
    "submissions_suite"
SECONDARY_KEY = dg.AssetKey("secondary_release")


@dataclass(frozen=True)
class ReleaseAsset:
    """The asset and checks of one release tier in the UI."""

    key: dg.AssetKey
    dataset: str  # its lake folder and ingest-log dataset (lib/datasets.py)
    suite_check: str
    warnings_check: str


TIER_ASSETS = {
    "official": ReleaseAsset(RELEASES_KEY, "official_results", RELEASE_SUITE, RELEASE_WARNINGS),
    "secondary": ReleaseAsset(SECONDARY_KEY, "secondary_results", "secondary_results_suite",
                              "secondary_results_warnings"),
}


class UpdateConfig(dg.Config):
    """What this run's event brought. Empty: just build what the ingest log holds beyond the last publish."""

    inbox_files: list[str] = []  # names in the inbox, settled (the inbox sensor)
    set_aside: list[str] = []  # inbox entries that cannot be submissions, moved aside unopened (the sensor)
    claimed: list[str] = []  # files `spbe ingest` claimed for this run: <owner>/<id> under inbox/.processing
    release_years: list[int] = []  # official release years to land (the release sensor)
    secondary_years: list[int] = []  # secondary release years to land (the release sensor)
    changed_releases: bool = False  # land every release of the source that is not the current one (spbe build)
    samples: str = "none"  # none | if_empty (the bundled demo files, into a warehouse with no submission) | always
    full_build: bool = False  # rebuild every model (spbe build --force)
    build: bool = True  # False: land only (spbe ingest --no-build); the next build publishes it


def _landing_specs() -> list[dg.AssetSpec]:
    return [
        dg.AssetSpec(RELEASES_KEY, group_name="releases", kinds={"python", "parquet"}, skippable=True,
                     description="Official per-institution SPBE results per evaluation year (Hasil Evaluasi SPBE, "
                                 "KemenPANRB) from the release source: archived by sha256, validated with "
                                 "expectations/official_results.json, written to "
                                 "lake/official_results/year=<YYYY>/ (one Parquet file per landing), or "
                                 "quarantined."),
        dg.AssetSpec(SECONDARY_KEY, group_name="releases", kinds={"python", "parquet"}, skippable=True,
                     description="SPBE results before the official series, quoted by news, regional and ministry "
                                 "pages (one file per year, each row with its source URLs), from the release "
                                 "source's entries of tier 'secondary': archived by sha256, validated with "
                                 "expectations/secondary_results.json, written to lake/secondary_results/, kept "
                                 "apart from the official series (fct_index.source_tier)."),
        dg.AssetSpec(SUBMISSIONS_KEY, group_name="submissions", kinds={"python", "parquet"}, skippable=True,
                     description="Regional submissions (one institution x year x stage, a row per indicator) from "
                                 "the inbox: archived by sha256, validated in one GX run per batch with each file "
                                 "judged alone, written to lake/submissions/year=<YYYY>/<hash>.parquet or "
                                 "quarantined with a report. One bad file never holds back the others."),
        dg.AssetSpec(WORK_UNITS_KEY, group_name="submissions", kinds={"parquet"}, deps=[SUBMISSIONS_KEY],
                     skippable=True,
                     description="Work units' (OPD) own self-assessments, landed apart in "
                                 "lake/work_unit_submissions/ so that they never count as their institution's."),
        dg.AssetSpec(INGEST_LOG_KEY, group_name="releases", kinds={"json"}, skippable=True,
                     deps=[RELEASES_KEY, SECONDARY_KEY, SUBMISSIONS_KEY],
                     description="state/ingest_log.jsonl, the commit log: one numbered line per arrival "
                                 "(loaded, duplicate, quarantined, rejected), with whether it made its file "
                                 "current. A build reads it up to a fixed position."),
        dg.AssetSpec(REFERENCE_KEY, group_name="reference", kinds={"python", "csv"}, skippable=True,
                     description="The reference tables in data/reference/ (frameworks, predikat bands, regions, "
                                 "registry, national series, targets, windows, cohorts, weightings), validated by "
                                 "GX suites and cross-table rules before dbt loads them as seeds."),
    ]


def _published_specs(graph: Graph) -> list[dg.AssetSpec]:
    return [
        dg.AssetSpec(PUBLISHED_KEY, group_name="publish", kinds={"duckdb"}, skippable=True,
                     deps=[asset_key(n) for n in graph.marts],
                     description="The analysts' warehouse, data/warehouse/spbe.duckdb: every mart copied into a new "
                                 "file that atomically replaces the published one, with spbe.manifest.json and a "
                                 "publish_manifest table (run, code version, the ingest-log position it holds, "
                                 "row counts, checksums). Only after the build and its tests pass. The last "
                                 "SPBE_KEEP_SNAPSHOTS (default 10) published files stay in history/."),
        dg.AssetSpec(WINDOW_REPORT_KEY, group_name="submissions", kinds={"duckdb"}, deps=[PUBLISHED_KEY],
                     skippable=True,
                     description="Who submitted, who is missing, late or quarantined in the submission windows "
                                 "the schedule names (run tag spbe/windows), per category and province, from the "
                                 "published fct_window_completeness."),
    ]


def _landing_checks() -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(RELEASE_SUITE, asset=RELEASES_KEY,
                          description="Error-level rules of expectations/official_results.json: columns, ranges, "
                                      "predikat vs bands, domain formula, registry, uniqueness"),
        dg.AssetCheckSpec(RELEASE_WARNINGS, asset=RELEASES_KEY,
                          description="Warning-level rules: missing values, band-edge predikat, values below 1"),
        dg.AssetCheckSpec(TIER_ASSETS["secondary"].suite_check, asset=SECONDARY_KEY,
                          description="Error-level rules of expectations/secondary_results.json: values within 1-5, "
                                      "official predikat, domain formula, a source URL on every row"),
        dg.AssetCheckSpec(TIER_ASSETS["secondary"].warnings_check, asset=SECONDARY_KEY,
                          description="Warning-level rules: an institution not in the registry, a predikat that "
                                      "contradicts its value, a value printed with one decimal, two rows for one "
                                      "institution and year"),
        dg.AssetCheckSpec(SUBMISSIONS_SUITE, asset=SUBMISSIONS_KEY,
                          description="Every file of the batch passed expectations/submissions.json (failing files "
                                      "are quarantined; the check lists them with the rules they broke)"),
        *(dg.AssetCheckSpec(name, asset=REFERENCE_KEY, blocking=True, description=text)
          for name, text in _reference_check_names().items()),
    ]


def _reference_check_names() -> dict[str, str]:
    from dagster_project.lib.reference_files import REFERENCE_SUITES, REFERENCE_TABLES, STRUCTURE_CHECK

    return {**{suite: f"GX suite expectations/{suite}.json on {REFERENCE_TABLES[table]}"
               for suite, table in REFERENCE_SUITES.items()},
            STRUCTURE_CHECK: "Weights sum to 100, bands contiguous, codes unique and resolvable, targets point at "
                             "existing subjects, windows valid"}


def build_update_asset() -> dg.AssetsDefinition:
    graph = project_graph()

    @dg.multi_asset(
        name=STEP,
        specs=[*_landing_specs(), *_published_specs(graph)],
        check_specs=_landing_checks(),
        can_subset=True,
        description="Land what the event brought, build what it affects with dbt, publish atomically.",
    )
    def land_build_publish(context: dg.AssetExecutionContext, config: UpdateConfig,
                           release_source: ReleaseSourceResource, data_dir: DataDirResource):
        from dagster_project import landing  # imports pandas: only when a run lands

        paths = data_dir.paths().ensure()
        yield from landing.land_event(context, config, release_source.config(), paths)
        if config.build:
            yield from _reference_gate(paths)
            yield from _build_and_publish(context, config, paths, graph)

    return land_build_publish


def _reference_gate(paths: DataPaths):
    """The reference tables' checks, judged again only when the tables, their suites or the rules changed; a
    failed one stops the build."""
    from dagster_project.lib.reference import validate_reference
    from dagster_project.lib.reference_files import STRUCTURE_CHECK

    outcomes, judged_now = validate_reference(paths.state)
    broken = [o for o in outcomes if not o.passed]
    if judged_now or broken:
        if judged_now:
            yield dg.MaterializeResult(asset_key=REFERENCE_KEY, metadata={
                "path": dg.MetadataValue.path(str(BUNDLED_DATA_DIR / "reference")), "checks": len(outcomes)})
        for o in outcomes:
            metadata = ({"failing_rows": dg.MetadataValue.json(o.failed)} if o.name == STRUCTURE_CHECK
                        else failures_metadata(o.failed))
            yield dg.AssetCheckResult(asset_key=REFERENCE_KEY, check_name=o.name, passed=o.passed,
                                      description=o.description[:2000], metadata=metadata)
    if broken:
        raise dg.Failure(f"reference tables fail {', '.join(o.name for o in broken)}: nothing rebuilt, the "
                         "published warehouse is unchanged", metadata={"failed": [o.name for o in broken]})


def _build_and_publish(context: dg.AssetExecutionContext, config: UpdateConfig, paths: DataPaths, graph: Graph):
    """Holding the build lock: plan, run dbt (yielding what it built and tested), publish."""
    from dagster_project.lib.publish import publish_marts
    from dagster_project.lib.snapshots import keep_setting, list_snapshots
    from dagster_project.lib.warehouse import (
        absolute_source_paths,
        build_lock,
        code_fingerprint,
        mark_build,
        plan_build,
        set_aside_newer_format,
    )

    if PUBLISHED_KEY not in context.selected_asset_keys:
        return

    def waiting(holder):
        who = f"run {holder.run_id} (pid {holder.pid}, since {holder.since})" if holder else "another build"
        context.log.info(f"waiting for {who} to finish: this build then includes what both landed")

    with build_lock(paths, context.run.run_id, on_wait=waiting):
        fingerprint = code_fingerprint()
        plan = plan_build(paths, force=config.full_build, fingerprint=fingerprint)
        context.log.info(f"build: {plan.mode} - {plan.reason} (log position {plan.position})")
        if plan.mode == "none":
            yield dg.AssetObservation(PUBLISHED_KEY, metadata={
                "status": "already current", "log_position": plan.position, "reason": plan.reason})
        else:
            args = ["build"] if plan.mode == "full" else \
                ["build", "--select", *partial_selection(plan.datasets, plan.arrivals_only)]
            # Each model's materialization and each test's evaluation is recorded while dbt goes on (yielded:
            # the models are not this step's outputs); failing rows are read once dbt has let go of the database.
            _check_catalog(paths)  # before the build, not after it
            if plan.mode == "full" and (aside := set_aside_newer_format(paths)):
                context.log.warning(f"the build database was written by a newer DuckDB: moved to {aside}")
            mark_build(paths, fingerprint)
            stream = stream_dbt(args, paths.root, paths.state / "dbt_target", {"log_position": plan.position})
            failed_tests = []
            started = time.monotonic()
            outcome = yield from _record(graph, stream, paths, failed_tests)
            context.log.info(f"dbt {' '.join(args)}: {len(outcome.results)} nodes in "
                             f"{time.monotonic() - started:.1f} s")
            yield from dbt_events(graph, failed_tests, paths)
            if not outcome.success:
                failed = [r for r in outcome.results if r.status in ("error", "fail", "runtime error")]
                raise dg.Failure(_dbt_failure_summary(graph, failed, outcome.error),
                                 metadata={"build": plan.mode, "log_position": plan.position})
            stray = absolute_source_paths(paths.build_db)
            if stray:
                raise dg.Failure("not published: the build database reads files outside SPBE_DATA_DIR "
                                 f"({paths.root}): {'; '.join(stray[:5])}. Run `spbe build --force`.")
            result = publish_marts(paths, context.run.run_id, [n.name for n in graph.marts], plan.position,
                                   fingerprint, keep_setting(),
                                   docs={n.name: (n.description, n.columns) for n in graph.marts})
            tables = result.manifest["tables"]
            yield dg.MaterializeResult(asset_key=PUBLISHED_KEY, metadata={
                "path": dg.MetadataValue.path(str(result.path)),
                "log_position": plan.position,
                "build": plan.mode,
                "reason": plan.reason,
                "code_version": result.manifest["code_version"],
                "snapshots_kept": len(list_snapshots(paths.snapshots)),
                "dagster/row_count": sum(t["rows"] for t in tables.values()),
                "tables": dg.MetadataValue.md("| mart | rows | checksum |\n|---|---|---|\n" + "\n".join(
                    f"| {name} | {t['rows']} | {t['checksum']} |" for name, t in tables.items())),
            })
    windows = context.run.tags.get(WINDOWS_TAG)
    if windows and WINDOW_REPORT_KEY in context.selected_asset_keys:
        yield _window_report(paths, windows)


def _check_catalog(paths: DataPaths) -> None:
    """With SPBE_WAREHOUSE=ducklake, a catalog that cannot be reached fails the run before dbt starts."""
    from dagster_project.lib import ducklake

    if ducklake.backend() == "ducklake":
        try:
            ducklake.check(ducklake.setting(paths))
        except ducklake.CatalogUnavailable as e:
            raise dg.Failure(f"not built: {e}. The published warehouse is unchanged.") from None


def _record(graph: Graph, stream, paths: DataPaths, failed_tests: list[NodeResult]):
    """Yield the dbt events of ``stream`` as nodes finish, keeping failed tests aside; returns the outcome."""
    while True:
        try:
            result = next(stream)
        except StopIteration as done:
            return done.value
        if result.unique_id.startswith("test.") and result.status not in ("pass", "skipped"):
            failed_tests.append(result)
            continue
        yield from dbt_events(graph, [result], paths)


def _root_cause(message: str) -> str:
    """One line of a dbt message: a Python traceback's last line (the error itself), else the message."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if "Traceback (most recent call last)" in message and lines:
        return lines[-1][:300]
    return " ".join(message.split())[:300]


def _dbt_failure_summary(graph: Graph, failed: list[NodeResult], error: str | None) -> str:
    lines = [f"{graph.nodes[r.unique_id].resource_type if r.unique_id in graph.nodes else 'node'} "
             f"{r.unique_id.split('.')[-2] if r.unique_id.startswith('test.') else r.unique_id.split('.')[-1]}: "
             f"{r.status} - {_root_cause(r.message)}" for r in failed]
    if not lines:
        lines = [error or "dbt exited with an error"]
    return f"dbt build failed ({len(lines)} node(s)); the published warehouse is unchanged:\n" + "\n".join(lines[:20])


def _window_report(paths: DataPaths, windows: str) -> dg.MaterializeResult:
    import duckdb

    from dagster_project.lib.completeness import markdown, summarize

    metadata: dict = {"windows": windows}
    with duckdb.connect(str(paths.published_db), read_only=True) as con:
        for year, stage in (w.split("/") for w in windows.split(",")):
            # Not last_received_at: the summary has no use for it, and DuckDB 1.5.5 turns a timestamp with time
            # zone into pandas with a keyword pandas 3.1 deprecates (Pandas4Warning).
            rows = con.execute("select * exclude (last_received_at) from fct_window_completeness "
                               "where year = ? and stage = ?", [int(year), stage]).df()
            report = summarize(rows)
            key = f"{year}_{stage}"
            metadata[f"{key}_by_status"] = dg.MetadataValue.json(report["by_status"])
            metadata[f"{key}_summary"] = dg.MetadataValue.md(markdown(int(year), stage, report))
            metadata[f"{key}_report"] = dg.MetadataValue.json(report)
    metadata["reported_at"] = datetime.now().astimezone().isoformat(timespec="seconds")
    return dg.MaterializeResult(asset_key=WINDOW_REPORT_KEY, metadata=metadata)


STEP_KEYS = (RELEASES_KEY, SECONDARY_KEY, SUBMISSIONS_KEY, WORK_UNITS_KEY, INGEST_LOG_KEY, REFERENCE_KEY, PUBLISHED_KEY,
             WINDOW_REPORT_KEY)
update_warehouse = build_update_asset()
update_warehouse_job = dg.define_asset_job(
    JOB, selection=dg.AssetSelection.assets(*STEP_KEYS) | dg.AssetSelection.groups("reports"),
    description="Land an event's files (inbox, releases, CLI), build what they affect, publish, write the reports.",
)


def run_config(**config) -> dict:
    """The run config of update_warehouse for an event (the fields of UpdateConfig)."""
    return {"ops": {STEP: {"config": config}}}
