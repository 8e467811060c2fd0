"""Submission windows: the schedule fires only on the day after a window closes; the completeness report."""

from datetime import datetime, timedelta

import dagster as dg
import pandas as pd
import pytest

from dagster_project.definitions import defs
from dagster_project.defs.update import JOB, WINDOWS_TAG
from dagster_project.defs.windows import submission_window_schedule
from dagster_project.lib.completeness import latest_closed, summarize, windows_closed_before
from dagster_project.lib.submissions import JAKARTA, submission_windows

WINDOW_REPORT = dg.AssetKey("window_completeness_report")


def run_on(day: str, hour: int = 6):
    moment = datetime.fromisoformat(day).replace(hour=hour, tzinfo=JAKARTA)
    return submission_window_schedule(dg.build_schedule_context(scheduled_execution_time=moment))


@pytest.mark.parametrize(("day", "windows"), [
    ("2024-12-21", "2024/final"),             # the 2024 final window closed on 2024-12-20
    ("2024-08-01", "2024/self_assessment"),   # closed 2024-07-31
    ("2023-12-16", "2023/final"),
])
def test_schedule_fires_the_day_after_a_window_closes(day, windows):
    request = run_on(day)
    assert isinstance(request, dg.RunRequest) and request.tags[WINDOWS_TAG] == windows
    assert request.run_key == f"windows-{windows}"


@pytest.mark.parametrize("day", ["2024-12-20", "2024-12-22", "2024-07-31", "2026-11-28"])
def test_schedule_skips_every_other_day(day):
    assert isinstance(run_on(day), dg.SkipReason)


def test_schedule_runs_in_jakarta_time():
    schedule = submission_window_schedule
    assert schedule.execution_timezone == "Asia/Jakarta" and schedule.cron_schedule == "0 6 * * *"
    assert schedule.job_name == JOB
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING


def test_calendar_helpers():
    assert windows_closed_before(datetime(2024, 12, 21).date()) == [(2024, "final")]
    assert latest_closed(datetime(2024, 12, 21).date()) == [(2024, "final")]
    assert latest_closed(datetime(2024, 9, 5).date()) == [(2024, "document_review")]


def test_summary_counts_per_status_category_and_province():
    columns = ["institution_name", "category", "province_name", "status", "is_expected"]
    rows = pd.DataFrame([
        ("A", "kabupaten", "Jawa Barat", "submitted", True),
        ("B", "kabupaten", "Jawa Barat", "missing", True),
        ("C", "kota", "Bali", "late", True),
        ("D", "kementerian", None, "quarantined", True),
        ("E", "kota", "Bali", "submitted", False),
    ], columns=columns)
    report = summarize(rows)
    assert report["expected"] == 4
    assert report["by_status"] == {"submitted": 2, "late": 1, "quarantined": 1, "missing": 1}
    assert {r["category"]: r["missing"] for r in report["by_category"]} == {"kabupaten": 1, "kementerian": 0, "kota": 0}
    assert [r["province_name"] for r in report["by_province"]] == ["Bali", "Jawa Barat"]
    assert (report["missing"], report["late"], report["quarantined"]) == (["B"], ["C"], ["D"])


def test_the_scheduled_run_reports_the_window_that_closed(built_warehouse, copy_of_built, published):
    """The schedule's run on the day after the latest window closed: update_warehouse with the window in its
    tag. Nothing arrived since the pipeline published (no build, no publish): the land_build_publish step
    still reports the window, from the published warehouse. A run without the tag reports nothing."""
    assert WINDOW_REPORT not in {e.asset_key for e in built_warehouse[1].get_asset_materialization_events()}
    window = latest_closed(datetime.now(JAKARTA).date())[0]
    request = run_on((submission_windows()[window].closes + timedelta(days=1)).isoformat())
    assert request.tags[WINDOWS_TAG] == f"{window[0]}/{window[1]}"
    with dg.DagsterInstance.ephemeral() as instance:
        run = defs().resolve_job_def(JOB).execute_in_process(instance=instance, run_config=request.run_config,
                                                            tags=request.tags)
    assert run.success
    assert not [e for e in run.get_asset_materialization_events() if e.asset_key == dg.AssetKey("published_warehouse")]
    (event,) = [e for e in run.get_asset_materialization_events() if e.asset_key == WINDOW_REPORT]
    metadata = event.materialization.metadata
    assert metadata["windows"].value == request.tags[WINDOWS_TAG]
    key = f"{window[0]}_{window[1]}"
    statuses = metadata[f"{key}_by_status"].value
    expected = dict(published.execute(
        "select status, count(*) from fct_window_completeness where year = ? and stage = ? group by status",
        list(window)).fetchall())
    assert statuses == {s: expected.get(s, 0) for s in ("submitted", "late", "quarantined", "missing")}
    assert statuses["submitted"] == 4  # the four bundled sample institutions at the 2024 final stage
