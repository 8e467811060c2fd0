"""Releases group: official results per evaluation year, landed from the configured release source."""


import json

import dagster as dg

from dagster_project.defs.checks import failures_metadata
from dagster_project.defs.resources import ReleaseSourceResource
from dagster_project.lib.ingest import lake_file, land_release, report_file
from dagster_project.lib.sources import ReleaseSourceError, list_releases
from dagster_project.paths import data_paths

release_years = dg.DynamicPartitionsDefinition(name="release_year")

INGEST_LOG_KEY = dg.AssetKey("ingest_log")
ingest_log = dg.AssetSpec(
    INGEST_LOG_KEY,
    group_name="releases",
    kinds={"json"},
    description="data/state/ingest_log.jsonl: one line per received file (sha256, name, source, status "
                "loaded | duplicate | quarantined, rows, reason), appended by the landing assets. dbt reads "
                "it to pick each year's current release and to build fct_ingest_log.",
)

SUITE_CHECK = "official_results_suite"
WARNINGS_CHECK = "official_results_warnings"


@dg.asset(
    key="official_release",
    group_name="releases",
    kinds={"python", "parquet"},
    partitions_def=release_years,
    description=(
        "Official per-institution SPBE results of one evaluation year (Hasil Evaluasi SPBE, KemenPANRB), "
        "fetched from the release source, archived by sha256, validated with the GX suite "
        "expectations/official_results.json, and written to lake/official_results/year=<YYYY>/<sha256>.parquet. "
        "A file failing an error-level rule is quarantined with a report and never reaches the lake."
    ),
    check_specs=[
        dg.AssetCheckSpec(SUITE_CHECK, asset="official_release", blocking=True,
                          description="Error-level rules of expectations/official_results.json: columns, "
                                      "ranges, predikat vs bands, domain formula, registry, uniqueness"),
        dg.AssetCheckSpec(WARNINGS_CHECK, asset="official_release",
                          description="Warning-level rules: missing values, band-edge predikat, values "
                                      "below 1; rows load, flagged"),
    ],
)
def official_release(context: dg.AssetExecutionContext, release_source: ReleaseSourceResource):
    year = int(context.partition_key)
    cfg = release_source.config()
    entries = {e.year: e for e in list_releases(cfg)}
    if year not in entries:
        raise dg.Failure(f"the {cfg.kind} release source {cfg.location} offers no release for {year}")
    result = land_release(cfg, entries[year], data_paths())
    context.log.info(f"release {year}: {result.status}, {result.rows} rows - {result.reason}")
    failed = result.report.get("failed", [])
    errors = [f for f in failed if f["severity"] == "critical"]
    warnings = [f for f in failed if f["severity"] != "critical"]
    paths = data_paths()
    yield dg.MaterializeResult(metadata={
        "status": result.status,
        "reason": result.reason,
        "sha256": result.sha256,
        "dagster/row_count": result.rows,
        "not_modified": result.not_modified,
        "source_url": entries[year].url,
        "lake_file": dg.MetadataValue.path(str(lake_file(paths, year, result.sha256)))
        if result.accepted else dg.MetadataValue.path(str(paths.quarantine / f"{result.sha256}.report.json")),
    })
    yield dg.AssetCheckResult(check_name=SUITE_CHECK, passed=not errors, severity=dg.AssetCheckSeverity.ERROR,
                              description=result.reason, metadata=failures_metadata(errors))
    yield dg.AssetCheckResult(check_name=WARNINGS_CHECK, passed=not warnings, severity=dg.AssetCheckSeverity.WARN,
                              description=f"{len(warnings)} warning rules", metadata=failures_metadata(warnings))


ACTIVE_RUN_STATUSES = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
                       dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]


def _landing_unfinished(context: dg.SensorEvaluationContext, year: str, sha256: str | None) -> bool:
    """A release whose run ended before its file was validated (say, the portal timed out): try again,
    unless a run for that year is still going."""
    if not sha256 or report_file(data_paths(), sha256).exists():
        return False
    active = context.instance.get_runs(
        filters=dg.RunsFilter(tags={"dagster/partition": year}, statuses=ACTIVE_RUN_STATUSES), limit=1)
    return not active


@dg.sensor(
    target=[official_release],
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Polls the configured release source; a new year or a changed release (sha256, CKAN "
                "last_modified) starts ingestion of that year, and a landing that never finished is retried.",
)
def release_source_sensor(context: dg.SensorEvaluationContext, release_source: ReleaseSourceResource):
    cfg = release_source.config()
    try:
        entries = list_releases(cfg)
    except ReleaseSourceError as e:
        return dg.SkipReason(f"release source not readable: {e}")
    # cursor: {year: {"fingerprint": ..., "attempt": n}}; the attempt makes every request's run key new, so a
    # release that changes back to an earlier version is still landed again.
    seen: dict[str, dict] = json.loads(context.cursor) if context.cursor else {}
    requests, cursor = [], dict(seen)
    for e in entries:
        year, state = str(e.year), seen.get(str(e.year))
        if state is None or state["fingerprint"] != e.fingerprint or _landing_unfinished(context, year, e.sha256):
            attempt = (state or {}).get("attempt", 0) + 1
            cursor[year] = {"fingerprint": e.fingerprint, "attempt": attempt}
            requests.append(dg.RunRequest(partition_key=year, run_key=f"release-{year}-{attempt}",
                                          tags={"spbe/release_fingerprint": e.fingerprint[:63]}))
    if not requests:
        return dg.SkipReason(f"no new or changed release among {len(entries)}")
    known_years = set(context.instance.get_dynamic_partitions(release_years.name))
    unknown_years = sorted({r.partition_key for r in requests} - known_years)
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[release_years.build_add_request(unknown_years)] if unknown_years else [],
        cursor=json.dumps(cursor, sort_keys=True),
    )
