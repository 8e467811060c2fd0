"""Great Expectations suites from ``expectations/`` run on pandas frames, reduced to plain results.

GX is imported inside ``validate_frame`` only: its import costs seconds, and code-location loads and
test collection should not pay for it (notes/stack.md §5.4). The SQL datasource over DuckDB is broken
in GX 1.24, so frames are validated through the pandas datasource (§0.8).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dagster_project.paths import EXPECTATIONS_DIR

SAMPLE_ROWS = 5


@dataclass(frozen=True)
class FailedRule:
    expectation: str
    severity: str  # "critical" blocks; "warning" loads with a flag
    column: str | None
    unexpected_count: int
    sample_rows: list[dict[str, Any]]
    description: str | None = None

    @property
    def label(self) -> str:
        return f"{self.expectation}({self.column})" if self.column else self.expectation


@dataclass
class ValidationReport:
    suite: str
    evaluated: int
    failed: list[FailedRule] = field(default_factory=list)

    @property
    def errors(self) -> list[FailedRule]:
        return [f for f in self.failed if f.severity == "critical"]

    @property
    def warnings(self) -> list[FailedRule]:
        return [f for f in self.failed if f.severity != "critical"]

    @property
    def passed(self) -> bool:
        return not self.errors

    def reason(self) -> str:
        """One line for the UI and the ingest log."""
        if not self.failed:
            return f"{self.suite}: all {self.evaluated} expectations passed"
        parts = []
        for kind, rules in (("errors", self.errors), ("warnings", self.warnings)):
            if rules:
                parts.append(f"{kind}: " + "; ".join(f"{f.label} {f.unexpected_count} rows" for f in rules))
        return f"{self.suite}: " + " | ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"suite": self.suite, "evaluated": self.evaluated, "passed": self.passed,
                "failed": [asdict(f) for f in self.failed]}


def suite_path(suite: str) -> Path:
    return EXPECTATIONS_DIR / f"{suite}.json"


def _json_safe(value: Any) -> Any:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
        return None
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def validate_frame(df: pd.DataFrame, suite: str, id_columns: list[str]) -> ValidationReport:
    """Run ``expectations/<suite>.json`` on ``df``; each failure keeps a few offending rows."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    spec = json.loads(suite_path(suite).read_text(encoding="utf-8"))
    gx_suite = context.suites.add(gx.ExpectationSuite(**spec))
    batch = (
        context.data_sources.add_pandas(f"{suite}_source")
        .add_dataframe_asset(suite)
        .add_batch_definition_whole_dataframe("whole_frame")
        .get_batch(batch_parameters={"dataframe": df.reset_index(drop=True)})
    )
    result = batch.validate(gx_suite, result_format={"result_format": "COMPLETE"})

    frame = df.reset_index(drop=True)
    failed = []
    for r in result.results:
        if r.success:
            continue
        cfg = r.expectation_config
        column = cfg.kwargs.get("column")
        detail = r.result or {}
        indices = detail.get("unexpected_index_list") or []
        shown = [c for c in [*id_columns, column] if c and c in frame.columns]
        samples = [
            {c: _json_safe(frame.at[i, c]) for c in dict.fromkeys(shown)}
            for i in indices[:SAMPLE_ROWS]
            if isinstance(i, int) and i in frame.index
        ]
        if not samples and "observed_value" in detail:
            samples = [{"observed_value": _json_safe(detail["observed_value"])}]
        count = detail.get("unexpected_count")
        failed.append(FailedRule(
            expectation=cfg.type,
            severity=str(getattr(cfg.severity, "value", cfg.severity) or "critical"),
            column=column,
            unexpected_count=int(count) if count is not None else len(frame),
            sample_rows=samples,
            description=(cfg.meta or {}).get("rule"),
        ))
    return ValidationReport(suite=suite, evaluated=len(result.results), failed=failed)
