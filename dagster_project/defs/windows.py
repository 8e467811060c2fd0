"""Submission windows: the daily schedule that reports a window's completeness the day after it closes."""

from zoneinfo import ZoneInfo

import dagster as dg

from dagster_project.defs.update import WINDOWS_TAG, update_warehouse_job

JAKARTA = ZoneInfo("Asia/Jakarta")  # the windows' dates are WIB dates


@dg.schedule(
    cron_schedule="0 6 * * *",
    execution_timezone="Asia/Jakarta",
    job=update_warehouse_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every day at 06:00 WIB; on the day after a submission window closes, brings the warehouse up to "
                "date (a build only if data arrived since the last publish) and reports the window's "
                "completeness in window_completeness_report.",
)
def submission_window_schedule(context: dg.ScheduleEvaluationContext):
    from dagster_project.lib.completeness import windows_closed_before

    day = context.scheduled_execution_time.astimezone(JAKARTA).date()
    closed = windows_closed_before(day)
    if not closed:
        return dg.SkipReason(f"no submission window closed on the day before {day}")
    names = ",".join(f"{y}/{s}" for y, s in closed)
    return dg.RunRequest(run_key=f"windows-{names}", tags={WINDOWS_TAG: names, "spbe/trigger": "schedule"})
