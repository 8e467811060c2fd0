"""Submissions group: regional submission files from the inbox, landed in batches, watched by a sensor."""

import hashlib
import json
import time

import dagster as dg

from dagster_project.defs.checks import failures_metadata
from dagster_project.lib.inbox import InboxFile, claim_all, pending_files, unclaim
from dagster_project.lib.ingest import WORK_UNITS, Arrival, land_submissions
from dagster_project.paths import DataPaths, data_paths

SUITE_CHECK = "submissions_suite"
MAX_TABLE_ROWS = 500  # files listed in the run's metadata and logged one by one, rejected ones first
RETRY_AFTER_SECONDS = 600  # a file still in the inbox this long after its run was requested is tried again


WORK_UNIT_FILES_KEY = dg.AssetKey("work_unit_files")
work_unit_files = dg.AssetSpec(
    WORK_UNIT_FILES_KEY,
    group_name="submissions",
    kinds={"parquet"},
    deps=["submission_files"],
    description="Work units' (OPD) own self-assessments, landed by submission_files (files with a work_unit column) "
                "into lake/work_unit_submissions/year=<YYYY>/<hash>.parquet: kept apart so that they never count as "
                "their institution's submission. Each landing that loads one records a materialization here.",
)


class InboxBatch(dg.Config):
    files: list[str]  # bare file names in the inbox


@dg.asset(
    key="submission_files",
    group_name="submissions",
    kinds={"python", "parquet"},
    description=(
        "Regional submissions (one institution x year x stage, one row per indicator) from the inbox: each file "
        "archived by sha256 and removed from the inbox; the batch validated in one run of "
        "expectations/submissions.json, each file judged on its own rows; accepted files written together to "
        "lake/submissions/year=<YYYY>/<hash>.parquet, the others quarantined with a report. One bad file never "
        "holds back the good ones of its batch."
    ),
    check_specs=[dg.AssetCheckSpec(
        SUITE_CHECK, asset="submission_files",
        description="Every file of the batch passed expectations/submissions.json (failing files are quarantined; "
                    "the check lists them with the rules they broke and sample rows)")],
)
def submission_files(context: dg.AssetExecutionContext, config: InboxBatch):
    paths = data_paths().ensure()
    arrivals = []
    for name, claimed in claim_all(paths.inbox, config.files):
        if isinstance(claimed, Exception):
            context.log.warning(f"{name}: not landed by this run ({claimed}); an earlier run may have taken it")
        else:
            arrivals.append(Arrival(claimed, name))
    try:
        outcome = land_submissions(paths, arrivals)
    except Exception as e:  # the batch could not be landed (disk, permissions): every file goes back
        kept = [_give_back(paths, a) for a in arrivals]
        raise dg.Failure(f"{len(arrivals)} file(s) could not be landed and were kept for a retry "
                         f"({e.__class__.__name__}: {e}): {kept}") from e
    failed = [f"{a.original_name} ({e.__class__.__name__}: {e}), kept in {_give_back(paths, a)}"
              for a, e in outcome.failed]
    for line in failed:
        context.log.error(f"could not be landed: {line}")
    not_landed = {id(a) for a, _ in outcome.failed}
    for a in arrivals:
        if id(a) not in not_landed:
            a.path.unlink(missing_ok=True)  # archived first, so leaving the inbox loses nothing
    results = outcome.results
    by_status = {s: [r for r in results if r.status == s] for s in ("loaded", "duplicate", "quarantined")}
    # One event per file would flood the event log at thousands of files: counts, then each rejected file.
    context.log.info(", ".join(f"{len(rs)} {status}" for status, rs in by_status.items()) + f" of {len(results)}")
    for r in by_status["quarantined"][:MAX_TABLE_ROWS]:
        context.log.warning(f"{r.original_name}: quarantined - {r.reason}")
    if len(by_status["quarantined"]) > MAX_TABLE_ROWS:
        context.log.warning(f"... and {len(by_status['quarantined']) - MAX_TABLE_ROWS} more quarantined files: "
                            "see the submissions_suite check and fct_ingest_log")
    shown = sorted(results, key=lambda r: r.status != "quarantined")[:MAX_TABLE_ROWS]
    header = "| file | status | rows | institution | year | stage | reason |\n|---|---|---|---|---|---|---|\n"
    table = header + "\n".join(
        f"| {r.original_name} | {r.status} | {r.rows} | {r.report.get('institution_id') or ''} | {r.year or ''} | "
        f"{r.report.get('stage') or ''} | {r.reason} |" for r in shown)
    if len(results) > len(shown):
        table += f"\n\n{len(results) - len(shown)} more files: see the mart fct_ingest_log."
    units = [r for r in by_status["loaded"] if r.dataset == WORK_UNITS]
    if units:  # lets the work-unit marts follow, through automation
        context.log_event(dg.AssetMaterialization(WORK_UNIT_FILES_KEY, metadata={
            "files": len(units), "dagster/row_count": sum(r.rows for r in units)}))
    yield dg.MaterializeResult(metadata={
        "files": dg.MetadataValue.md(table),
        **{f"n_{status}": len(rs) for status, rs in by_status.items()},
        "dagster/row_count": sum(r.rows for r in by_status["loaded"]),
    })
    if failed:
        raise dg.Failure(f"{len(failed)} file(s) could not be landed and were kept for a retry: {failed}",
                         metadata={"files": dg.MetadataValue.md(table)})
    bad = by_status["quarantined"]
    yield dg.AssetCheckResult(
        check_name=SUITE_CHECK, passed=not bad, severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(f"{r.original_name}: {r.reason}" for r in bad)[:2000] or "every file passed",
        metadata={  # the first MAX_TABLE_ROWS rejected files: every one is in fct_ingest_log and its report
            "n_quarantined": len(bad),
            "quarantined_files": dg.MetadataValue.json(
                [{"file": r.original_name, "sha256": r.sha256, "reason": r.reason} for r in bad[:MAX_TABLE_ROWS]]),
            **failures_metadata([{**f, "file": r.original_name} for r in bad[:MAX_TABLE_ROWS]
                                 for f in r.report.get("failed", [])]),
        },
    )


def _give_back(paths: DataPaths, arrival: Arrival) -> str:
    """Return a claimed file to the inbox for a retry; where it is now."""
    try:
        return str(unclaim(paths.inbox, arrival.path).parent)
    except OSError:
        return str(arrival.path.parent)  # the next look at the inbox returns it, once this process is gone


@dg.sensor(
    target=[submission_files],
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Watches the inbox (SPBE_INBOX_DIR, default data/inbox): new files, and files whose content "
                "changed, start one landing run per batch; a file left behind by a failed run is retried.",
)
def inbox_sensor(context: dg.SensorEvaluationContext):
    inbox = data_paths().inbox
    # cursor: {name: {"sha256", "size", "mtime_ns", "requested_at"}} for files requested and maybe still there
    requested: dict[str, dict] = json.loads(context.cursor) if context.cursor else {}
    known = {n: InboxFile(n, r["sha256"], r.get("size", -1), r.get("mtime_ns", -1)) for n, r in requested.items()}
    files = pending_files(inbox, known)
    now = time.time()
    batch = [f for f in files if requested.get(f.name, {}).get("sha256") != f.sha256
             or now - requested[f.name]["requested_at"] > RETRY_AFTER_SECONDS]
    cursor = {f.name: requested[f.name] for f in files if f.name in requested}
    if not batch:
        context.update_cursor(json.dumps(cursor, sort_keys=True))
        return dg.SkipReason(f"no new files in {inbox} ({len(files)} waiting for their run)")
    cursor.update({f.name: {"sha256": f.sha256, "size": f.size, "mtime_ns": f.mtime_ns, "requested_at": now}
                   for f in batch})
    key = hashlib.sha256(json.dumps([[f.name, f.sha256] for f in batch] + [now]).encode()).hexdigest()[:20]
    return dg.SensorResult(
        run_requests=[dg.RunRequest(
            run_key=f"inbox-{key}",
            run_config={"ops": {"submission_files": {"config": {"files": [f.name for f in batch]}}}},
            tags={"spbe/files": str(len(batch))},
        )],
        cursor=json.dumps(cursor, sort_keys=True),
    )

