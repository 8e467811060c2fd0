"""Turning validation reports into Dagster asset-check metadata the UI can show row by row."""

import dagster as dg


def failures_metadata(failed: list[dict]) -> dict[str, dg.MetadataValue]:
    """Failed rules (as in a landing report: expectation, severity, column, count, sample rows, rule text)."""
    lines = [f"- **{r['expectation']}**({r.get('column') or ''}) [{r['severity']}]: {r['unexpected_count']} rows"
             f" - {r.get('description') or ''}" for r in failed]
    return {
        "failed_rules": dg.MetadataValue.int(len(failed)),
        "summary": dg.MetadataValue.md("\n".join(lines) or "all expectations passed"),
        "failing_rows": dg.MetadataValue.json(failed),
    }
