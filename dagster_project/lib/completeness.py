"""The submission-window calendar and the completeness summary of a closed window."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from dagster_project.lib.submissions import submission_windows

STATUSES = ("submitted", "late", "quarantined", "missing")


def windows_closed_before(day: date) -> list[tuple[int, str]]:
    """The windows whose last day was the day before ``day`` (Asia/Jakarta dates): the schedule's trigger."""
    return sorted(key for key, w in submission_windows().items() if w.closes == day - timedelta(days=1))


def latest_closed(day: date) -> list[tuple[int, str]]:
    """The most recently closed window(s) before ``day``."""
    closed = {k: w.closes for k, w in submission_windows().items() if w.closes < day}
    if not closed:
        return []
    last = max(closed.values())
    return sorted(k for k, c in closed.items() if c == last)


def summarize(rows: pd.DataFrame) -> dict:
    """Counts per status, overall and per category and province, and who is missing."""
    def counts(frame: pd.DataFrame, by: str) -> list[dict]:
        table = frame.groupby(by)["status"].value_counts().unstack(fill_value=0)
        table = table.reindex(columns=list(STATUSES), fill_value=0)
        return [{by: k, **{s: int(v) for s, v in r.items()}} for k, r in table.iterrows()]

    expected = rows[rows["is_expected"]]
    return {
        "expected": int(len(expected)),
        "by_status": {s: int((rows["status"] == s).sum()) for s in STATUSES},
        "by_category": counts(rows, "category"),
        "by_province": counts(rows[rows["province_name"].notna()], "province_name"),
        "missing": sorted(expected.loc[expected["status"] == "missing", "institution_name"].dropna().tolist()),
        "quarantined": sorted(rows.loc[rows["status"] == "quarantined", "institution_name"].dropna().tolist()),
        "late": sorted(rows.loc[rows["status"] == "late", "institution_name"].dropna().tolist()),
    }


def markdown(year: int, stage: str, report: dict) -> str:
    """The report of one window as a Markdown table for the Dagster UI."""
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
