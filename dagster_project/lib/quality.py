"""Great Expectations suites from ``expectations/`` run on pandas frames, reduced to plain results.

GX is imported inside ``validate_frame`` only: its import costs seconds, and code-location loads and
test collection should not pay for it (a warm import takes about 6 s here, docs/performance.md). GX 1.24's
SQL datasource over DuckDB fails every expectation (it reads rows after closing the connection, and
duckdb-engine then returns none), so frames are validated through the pandas datasource.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dagster_project.lib.dbt_project import project_var
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


# The columns that say where a failing value sits, in the order a person reads them.
_WHERE = (("row_number", "row {}"), ("indicator", "indicator {}"), ("institution_name", "{}"))
ROWS_NAMED = 3  # failing rows spelled out per rule; the report has up to SAMPLE_ROWS, the count says how many
FILE_FACTS = ("coverage", "is_late", "file_key_count")  # one value for the whole file: no row to name


def plain_reason(report: dict[str, Any], file_name: str) -> str:
    """Why a file was refused or flagged, as a person writes it: the file, then per broken rule the row,
    the indicator, the value and the rule ("row 5, indicator 5: level 9; level is an integer 1-5")."""
    failed = sorted(report.get("failed", []), key=lambda f: f["severity"] != "critical")
    parts = []
    for f in failed:
        rule = f.get("description") or f["expectation"]
        if f["severity"] != "critical":
            rule = f"warning: {rule}"
        column, count = f.get("column"), f.get("unexpected_count") or 0
        rows = [r for r in f.get("sample_rows") or [] if any(k in r for k, _ in _WHERE) or column in r]
        if not rows:
            observed = (f.get("sample_rows") or [{}])[0].get("observed_value")
            named_rule = "" if f["expectation"].startswith("expect_") else f" (rule {f['expectation']})"
            parts.append(rule + (f" (found {observed})" if observed is not None else "") + named_rule)
            continue
        if column in FILE_FACTS and column in rows[0]:
            parts.append(f"{column} {rows[0][column]}; {rule}")
            continue
        named = []
        for row in rows[:ROWS_NAMED]:
            where = ", ".join(fmt.format(row[k]) for k, fmt in _WHERE if row.get(k) is not None)
            value = f"{column} {row[column] if row.get(column) is not None else 'empty'}" if column in row else ""
            named.append(": ".join(p for p in (where, value) if p))
        more = f" (and {count - len(named)} more rows)" if count > len(named) else ""
        parts.append(f"{'; '.join(named)}{more}; {rule}")
    return f"{file_name}: " + (" | ".join(parts) if parts else "all rules passed")


def suite_path(suite: str) -> Path:
    return EXPECTATIONS_DIR / f"{suite}.json"


def _json_safe(value: Any) -> Any:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
        return None
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def _for_gx(df: pd.DataFrame) -> pd.DataFrame:
    """The frame GX sees: nullable integers (Int64) as float64 with NaN for missing. GX's pandas range check
    runs a Python function per value on Int64 (1.2 s a million rows, measured) and vectorised on float64
    (0.16 s); the values it judges are the same whole numbers, and sample rows come from the original."""
    masked = {c: "float64" for c, t in df.dtypes.items() if pd.api.types.is_integer_dtype(t)
              and isinstance(t, pd.api.extensions.ExtensionDtype)}
    return df.astype(masked) if masked else df


def _run_suite(df: pd.DataFrame, spec: dict[str, Any]):
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    gx_suite = context.suites.add(gx.ExpectationSuite(**spec))
    batch = (
        context.data_sources.add_pandas(f"{spec['name']}_source")
        .add_dataframe_asset(spec["name"])
        .add_batch_definition_whole_dataframe("whole_frame")
        .get_batch(batch_parameters={"dataframe": _for_gx(df)})
    )
    return batch.validate(gx_suite, result_format={"result_format": "COMPLETE"},
                          expectation_parameters=suite_parameters()).results


def suite_parameters() -> dict[str, Any]:
    """Values the suites name as {"$PARAMETER": ...}: facts defined once elsewhere (dbt_project.yml vars)."""
    tolerance = project_var("formula_tolerance")
    return {"formula_tolerance": tolerance, "negative_formula_tolerance": -tolerance}


def _shown(frame: pd.DataFrame, id_columns: list[str], column: str | None) -> list[str]:
    return list(dict.fromkeys(c for c in [*id_columns, column] if c and c in frame.columns))


def _rows(frame: pd.DataFrame, shown: list[str], positions: list[int]) -> list[dict[str, Any]]:
    return [{c: _json_safe(v) for c, v in zip(shown, values, strict=True)}
            for values in frame[shown].iloc[positions].itertuples(index=False)] if positions else []


def _sample_rows(frame: pd.DataFrame, shown: list[str], indices: list) -> list[dict[str, Any]]:
    return _rows(frame, shown, [i for i in indices[:SAMPLE_ROWS] if isinstance(i, int) and 0 <= i < len(frame)])


def _failed_rule(r, frame: pd.DataFrame, id_columns: list[str], count: int | None = None,
                 samples: list[dict[str, Any]] | None = None) -> FailedRule:
    cfg = r.expectation_config
    column = cfg.kwargs.get("column")
    detail = r.result or {}
    if samples is None:
        samples = _sample_rows(frame, _shown(frame, id_columns, column), detail.get("unexpected_index_list") or [])
    if not samples and "observed_value" in detail:
        samples = [{"observed_value": _json_safe(detail["observed_value"])}]
    count = detail.get("unexpected_count") if count is None else count
    return FailedRule(
        expectation=cfg.type,
        severity=str(getattr(cfg.severity, "value", cfg.severity) or "critical"),
        column=column,
        unexpected_count=int(count) if count is not None else len(frame),
        sample_rows=samples,
        description=(cfg.meta or {}).get("rule"),
    )


def _suite_spec(suite: str) -> dict[str, Any]:
    return json.loads(suite_path(suite).read_text(encoding="utf-8"))


def validate_frame(df: pd.DataFrame, suite: str, id_columns: list[str]) -> ValidationReport:
    """Run ``expectations/<suite>.json`` on ``df``; each failure keeps a few offending rows."""
    frame = df.reset_index(drop=True)
    results = _run_suite(frame, _suite_spec(suite))
    return ValidationReport(suite=suite, evaluated=len(results),
                            failed=[_failed_rule(r, frame, id_columns) for r in results if not r.success])


# Expectations that hold for a batch of files exactly when they hold for each file: those that judge rows
# one by one, and those about columns, which every file of a batch shares once normalized.
_PER_ROW_OR_COLUMN = ("expect_column_values_", "expect_column_to_exist", "expect_table_columns_",
                      "expect_select_column_values_to_be_unique_within_record")


def _per_group(spec: dict[str, Any], group_column: str) -> dict[str, Any] | None:
    """The suite rewritten for a frame of many groups, or None when a rule cannot be judged that way.

    Uniqueness is made per group (the group joins the compound key) and a row-count range is checked per
    group in pandas, so each file is judged as if it had been validated alone.
    """
    expectations = []
    for e in spec["expectations"]:
        kind, kwargs = e["type"], e["kwargs"]
        if kind == "expect_column_values_to_be_unique":
            e = {**e, "type": "expect_compound_columns_to_be_unique",
                 "kwargs": {**{k: v for k, v in kwargs.items() if k != "column"},
                            "column_list": [kwargs["column"], group_column]}}
        elif kind == "expect_compound_columns_to_be_unique":
            e = {**e, "kwargs": {**kwargs, "column_list": [*kwargs["column_list"], group_column]}}
        elif kind != "expect_table_row_count_to_be_between" and not kind.startswith(_PER_ROW_OR_COLUMN):
            return None
        expectations.append(e)
    return {**spec, "expectations": expectations}


def validate_groups(df: pd.DataFrame, suite: str, id_columns: list[str], group_column: str,
                    expected: list[Any] | None = None) -> dict[Any, ValidationReport]:
    """Run ``expectations/<suite>.json`` once over a frame holding many files, and judge each file (each
    value of ``group_column``, and each of ``expected``) as ``validate_frame`` would have judged it alone.

    GX costs about 0.3 s per validation whatever the size of the frame, so one validation per batch instead
    of one per file is what lets thousands of files land in seconds. Failing rows are mapped back to their
    file through GX's unexpected index list. A file of ``expected`` with no rows has none in the frame: it
    is judged on its empty table, which the row-count rule refuses.
    """
    reports = _validate_present_groups(df, suite, id_columns, group_column)
    for group in expected or []:
        if group not in reports:
            reports[group] = validate_frame(df.iloc[0:0].drop(columns=group_column), suite, id_columns)
    return reports


def _validate_present_groups(df: pd.DataFrame, suite: str, id_columns: list[str],
                             group_column: str) -> dict[Any, ValidationReport]:
    frame = df.reset_index(drop=True)
    groups = frame[group_column]
    spec = _suite_spec(suite)
    batch_spec = _per_group(spec, group_column)
    if batch_spec is None:  # a rule about the whole table: each file alone, slowly but exactly
        return {g: validate_frame(part.drop(columns=group_column), suite, id_columns)
                for g, part in frame.groupby(group_column, sort=False)}
    row_counts = [e for e in batch_spec["expectations"] if e["type"] == "expect_table_row_count_to_be_between"]
    checked = {**batch_spec, "expectations": [e for e in batch_spec["expectations"] if e not in row_counts]}
    results = _run_suite(frame, checked)
    reports = {g: ValidationReport(suite=suite, evaluated=len(results) + len(row_counts))
               for g in groups.unique()}
    group_of = groups.to_numpy()
    for r in results:
        if r.success:
            continue
        indices = (r.result or {}).get("unexpected_index_list")
        if indices is None:  # no rows to blame: the rule failed for every file alike
            for report in reports.values():
                report.failed.append(_failed_rule(r, frame, id_columns))
            continue
        by_group: dict[Any, list[int]] = {}
        for i in indices:
            by_group.setdefault(group_of[i], []).append(i)
        # The sample rows of every file in one lookup: one per file cost more than the validation itself.
        shown = _shown(frame, id_columns, r.expectation_config.kwargs.get("column"))
        sampled = {g: rows[:SAMPLE_ROWS] for g, rows in by_group.items()}
        picked = iter(_rows(frame, shown, [i for rows in sampled.values() for i in rows]))
        for g, rows in sampled.items():
            samples = [next(picked) for _ in rows]
            reports[g].failed.append(_failed_rule(r, frame, id_columns, len(by_group[g]), samples))
    sizes = groups.value_counts()
    for e in row_counts:
        low, high = e["kwargs"].get("min_value"), e["kwargs"].get("max_value")
        for g, n in sizes.items():
            if (low is not None and n < low) or (high is not None and n > high):
                reports[g].failed.append(FailedRule(
                    expectation=e["type"], severity=e.get("severity") or "critical", column=None,
                    unexpected_count=int(n), sample_rows=[{"observed_value": int(n)}],
                    description=(e.get("meta") or {}).get("rule")))
    return reports
