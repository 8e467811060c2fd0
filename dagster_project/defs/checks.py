"""Turning validation reports into Dagster asset-check results the UI can show row by row."""


import dagster as dg

from dagster_project.lib.quality import FailedRule


def failures_metadata(failed: list[FailedRule] | list[dict]) -> dict[str, dg.MetadataValue]:
    rules = [f if isinstance(f, dict) else {
        "expectation": f.expectation, "severity": f.severity, "column": f.column,
        "unexpected_count": f.unexpected_count, "sample_rows": f.sample_rows, "description": f.description,
    } for f in failed]
    lines = [f"- **{r['expectation']}**({r.get('column') or ''}) [{r['severity']}]: {r['unexpected_count']} rows"
             f" - {r.get('description') or ''}" for r in rules]
    return {
        "failed_rules": dg.MetadataValue.int(len(rules)),
        "summary": dg.MetadataValue.md("\n".join(lines) or "all expectations passed"),
        "failing_rows": dg.MetadataValue.json(rules),
    }
