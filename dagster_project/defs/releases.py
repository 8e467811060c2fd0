"""Releases group: official results per evaluation year, landed from the configured release source."""


import json

import dagster as dg

from dagster_project.defs.checks import failures_metadata
from dagster_project.defs.resources import ReleaseSourceResource
from dagster_project.lib.ingest import lake_file, land_release
from dagster_project.lib.sources import ReleaseSourceError, list_releases
from dagster_project.paths import data_paths

release_years = dg.DynamicPartitionsDefinition(name="release_year")

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


@dg.sensor(
    target=[official_release],
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Polls the configured release source; a new year or a changed release (sha256, CKAN "
                "last_modified) starts ingestion of that year.",
)
def release_source_sensor(context: dg.SensorEvaluationContext, release_source: ReleaseSourceResource):
    cfg = release_source.config()
    try:
        entries = list_releases(cfg)
    except ReleaseSourceError as e:
        return dg.SkipReason(f"release source not readable: {e}")
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    new = [e for e in entries if seen.get(str(e.year)) != e.fingerprint]
    if not new:
        return dg.SkipReason(f"no new or changed release among {len(entries)}")
    known_years = set(context.instance.get_dynamic_partitions(release_years.name))
    unknown_years = sorted({str(e.year) for e in new} - known_years)
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=str(e.year), run_key=f"release-{e.year}-{e.fingerprint}")
                      for e in new],
        dynamic_partitions_requests=[release_years.build_add_request(unknown_years)] if unknown_years else [],
        cursor=json.dumps({**seen, **{str(e.year): e.fingerprint for e in new}}, sort_keys=True),
    )
