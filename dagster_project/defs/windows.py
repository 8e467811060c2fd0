"""Submission windows: the daily schedule that rebuilds after a window closes, and the completeness report."""

from datetime import datetime

import dagster as dg
import duckdb

from dagster_project.defs.automation import build_warehouse_job
from dagster_project.defs.publish import PUBLISHED_KEY
from dagster_project.defs.warehouse import WAREHOUSE_CONDITION
from dagster_project.lib.completeness import latest_closed, summarize, windows_closed_before
from dagster_project.lib.submissions import JAKARTA
from dagster_project.paths import data_paths

WINDOWS_TAG = "spbe/windows"


@dg.asset(
    key="window_completeness_report",
    group_name="submissions",
    kinds={"duckdb"},
    deps=[PUBLISHED_KEY],
    automation_condition=WAREHOUSE_CONDITION,
    description="Who submitted, who is missing, who is late and who was quarantined in a submission window, "
                "per category and province, from the published fct_window_completeness. The window is the one "
                "the schedule names (run tag spbe/windows), else the most recently closed one.",
)
def window_completeness_report(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    tagged = context.run.tags.get(WINDOWS_TAG)
    windows = ([(int(y), s) for y, s in (w.split("/") for w in tagged.split(","))] if tagged
               else latest_closed(datetime.now(JAKARTA).date()))
    metadata: dict = {"windows": ", ".join(f"{y} {s}" for y, s in windows) or "none closed yet"}
    with duckdb.connect(str(data_paths().published_db), read_only=True) as con:
        for year, stage in windows:
            rows = con.execute("select * from fct_window_completeness where year = ? and stage = ?",
                               [year, stage]).df()
            report = summarize(rows)
            key = f"{year}_{stage}"
            metadata[f"{key}_by_status"] = dg.MetadataValue.json(report["by_status"])
            metadata[f"{key}_summary"] = dg.MetadataValue.md(_markdown(year, stage, report))
            metadata[f"{key}_report"] = dg.MetadataValue.json(report)
    return dg.MaterializeResult(metadata=metadata)


def _markdown(year: int, stage: str, report: dict) -> str:
    statuses = ", ".join(f"{k} {v}" for k, v in report["by_status"].items())
    lines = [f"**{year} {stage}**: {report['expected']} expected; {statuses}",
             "", "| category | submitted | late | quarantined | missing |", "|---|---|---|---|---|"]
    lines += [f"| {r['category']} | {r['submitted']} | {r['late']} | {r['quarantined']} | {r['missing']} |"
              for r in report["by_category"]]
    if report["quarantined"]:
        lines += ["", "Quarantined: " + ", ".join(report["quarantined"])]
    if report["late"]:
        lines += ["", "Late: " + ", ".join(report["late"])]
    return "\n".join(lines)


@dg.schedule(
    cron_schedule="0 6 * * *",
    execution_timezone="Asia/Jakarta",
    job=build_warehouse_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every day at 06:00 WIB; on the day after a submission window closes, rebuilds and publishes "
                "the warehouse and reports the window's completeness.",
)
def submission_window_schedule(context: dg.ScheduleEvaluationContext):
    day = context.scheduled_execution_time.astimezone(JAKARTA).date()
    closed = windows_closed_before(day)
    if not closed:
        return dg.SkipReason(f"no submission window closed on the day before {day}")
    names = ",".join(f"{y}/{s}" for y, s in closed)
    return dg.RunRequest(run_key=f"windows-{names}", tags={WINDOWS_TAG: names})
