"""Reference group: the versioned reference tables, validated before dbt seeds them."""


import hashlib

import dagster as dg

from dagster_project.defs.checks import failures_metadata
from dagster_project.lib.quality import validate_frame
from dagster_project.lib.reference import REFERENCE_SUITES, REFERENCE_TABLES, check_reference, load_reference
from dagster_project.paths import REFERENCE_DIR

STRUCTURE_CHECK = "reference_structure"


def reference_fingerprint() -> str:
    """Hash of every reference file: the asset's code version, so an edited table re-runs validation."""
    h = hashlib.sha256()
    for name in sorted(REFERENCE_TABLES.values()):
        h.update(name.encode() + b"\0" + (REFERENCE_DIR / name).read_bytes())
    return h.hexdigest()[:16]


@dg.asset(
    key="reference_tables",
    group_name="reference",
    kinds={"python", "csv"},
    description=(
        "The reference tables in data/reference/ (framework PermenPANRB 59/2020 and 5/2018, predikat bands, "
        "maturity levels, provinces and kab/kota, institution registry and aliases, national series, "
        "targets), validated by GX suites and cross-table rules before dbt loads them as seeds."
    ),
    code_version=reference_fingerprint(),
    automation_condition=dg.AutomationCondition.on_missing() | dg.AutomationCondition.code_version_changed(),
    check_specs=[
        dg.AssetCheckSpec(suite, asset="reference_tables", blocking=True,
                          description=f"GX suite expectations/{suite}.json on {REFERENCE_TABLES[table]}")
        for suite, table in REFERENCE_SUITES.items()
    ] + [
        dg.AssetCheckSpec(STRUCTURE_CHECK, asset="reference_tables", blocking=True,
                          description="Weights sum to 100, bands contiguous, codes unique and resolvable, "
                                      "targets point at existing subjects"),
    ],
)
def reference_tables(context: dg.AssetExecutionContext):
    tables = load_reference()
    yield dg.MaterializeResult(metadata={
        "dagster/row_count": sum(len(t) for t in tables.values()),
        "tables": dg.MetadataValue.json({n: {"file": REFERENCE_TABLES[n], "rows": len(t)} for n, t in tables.items()}),
        "path": dg.MetadataValue.path(str(REFERENCE_DIR)),
    })
    for suite, table in REFERENCE_SUITES.items():
        report = validate_frame(tables[table], suite, [tables[table].columns[0]])
        yield dg.AssetCheckResult(check_name=suite, passed=report.passed, description=report.reason(),
                                  metadata=failures_metadata(report.failed))
    rules = check_reference(tables)
    broken = [r for r in rules if not r.passed]
    yield dg.AssetCheckResult(
        check_name=STRUCTURE_CHECK,
        passed=not broken,
        description="; ".join(f"{r.rule}: {len(r.failures)} problems" for r in broken) or "all rules hold",
        metadata={
            "summary": dg.MetadataValue.md("\n".join(
                f"- {'✅' if r.passed else '❌'} **{r.rule}**: {r.description}" for r in rules)),
            "failing_rows": dg.MetadataValue.json({r.rule: r.failures[:20] for r in broken}),
        },
    )
