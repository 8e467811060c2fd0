"""Reports group: what people read after a publish. Scorecards (HTML with plotly charts), the GX validation
results as a page, and the dbt docs catalog, all under data/reports/. They read the published file (a reader,
never blocking a run), except dbt docs, which reads the build database's catalog inside the DuckDB pool."""

import dagster as dg
from dagster_dbt import DbtCliResource

from dagster_project.defs.publish import PUBLISHED_KEY
from dagster_project.defs.warehouse import DUCKDB_POOL
from dagster_project.paths import data_paths

REPORTS_GROUP = "reports"
AFTER_PUBLISH = dg.AutomationCondition.eager().with_label("after each publish")


@dg.asset(
    group_name=REPORTS_GROUP,
    kinds={"html", "plotly"},
    deps=[PUBLISHED_KEY],
    automation_condition=AFTER_PUBLISH,
    description=(
        "Static scorecards in data/reports/scorecards/: a national page per year (predikat distribution, ranking "
        "with uncertainty intervals, groups, trend against targets) and a page per institution (index and "
        "domains over time, rank with interval, gap to targets, next steps, verification gap, mentors). "
        "plotly.js is written beside the pages: nothing is fetched at view time. Published by a symlink swap."
    ),
)
def scorecards(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    import plotly.offline

    from dagster_project.lib.scorecards import page_name, render_site

    paths = data_paths()
    site = render_site(paths.published_db, paths.reports, plotly.offline.get_plotlyjs())
    context.log.info(f"{site.n_national} national and {site.n_institutions} institution pages, {site.n_charts} charts")
    return dg.MaterializeResult(metadata={
        "index": dg.MetadataValue.path(str(site.root / "index.html")),
        "example": dg.MetadataValue.path(str(site.root / "institutions" / page_name("32.11"))),
        "national_pages": site.n_national,
        "institution_pages": site.n_institutions,
        "charts": site.n_charts,
    })


@dg.asset(
    group_name=REPORTS_GROUP,
    kinds={"html", "great_expectations"},
    deps=[PUBLISHED_KEY],
    automation_condition=AFTER_PUBLISH,
    description=("The Great Expectations results of every file received, as data/reports/validation.html: counts "
                 "per dataset and status, and for each file with failed expectations its rules, row counts and "
                 "sample rows (from the file's JSON report)."),
)
def validation_results(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    from dagster_project.lib.scorecards.validation import render_validation

    path, counts = render_validation(data_paths())
    return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(path)), **counts})


@dg.asset(
    group_name=REPORTS_GROUP,
    kinds={"dbt", "html"},
    deps=[PUBLISHED_KEY],
    pool=DUCKDB_POOL,
    automation_condition=AFTER_PUBLISH,
    description=("`dbt docs generate --static`: the catalog of every model and column with lineage, as one "
                 "self-contained file, data/reports/dbt-docs.html."),
)
def dbt_docs(context: dg.AssetExecutionContext, dbt: DbtCliResource) -> dg.MaterializeResult:
    from dagster_project.lib.archive import write_atomically
    from dagster_project.lib.publish import build_fingerprint, input_hashes

    paths = data_paths()
    target, stamp = paths.reports / "dbt-docs.html", paths.reports / "dbt-docs.fingerprint"
    # The catalog describes models and columns: a function of the code and the reference tables, not of the
    # data. When neither changed, the page on disk is current and dbt need not run (8 s saved per publish).
    fingerprint = build_fingerprint({k: v for k, v in input_hashes(paths).items() if k.startswith("reference/")})
    if target.exists() and stamp.exists() and stamp.read_text(encoding="utf-8") == fingerprint:
        context.log.info("dbt docs are current (same code and reference tables): not regenerated")
    else:
        invocation = dbt.cli(["docs", "generate", "--static"], raise_on_error=True).wait()
        paths.reports.mkdir(parents=True, exist_ok=True)
        write_atomically(target, (invocation.target_path / "static_index.html").read_bytes())
        write_atomically(stamp, fingerprint.encode())
    return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(target)),
                                          "bytes": target.stat().st_size, "code_fingerprint": fingerprint})


REPORT_ASSETS = [scorecards, validation_results, dbt_docs]
