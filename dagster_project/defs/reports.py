"""Reports group: what people read after a publish, written by the run that published. Scorecards (HTML with
plotly charts), the GX validation results as a page, and the dbt docs catalog, all under data/reports/. They
read the published file (a reader, never blocking a build), except dbt docs, which reads the build
database's catalog while holding the build lock."""

import dagster as dg

from dagster_project.defs.resources import DataDirResource
from dagster_project.defs.update import PUBLISHED_KEY

REPORTS_GROUP = "reports"


@dg.asset(
    group_name=REPORTS_GROUP,
    kinds={"html", "plotly"},
    deps=[PUBLISHED_KEY],
    description=(
        "Static scorecards in data/reports/scorecards/: a national page per year (predikat distribution, ranking "
        "with uncertainty intervals, groups, trend against targets) and a page per institution (index and "
        "domains over time, rank with interval, gap to targets, next steps, verification gap, mentors). "
        "plotly.js is written beside the pages: nothing is fetched at view time. Published by a symlink swap."
    ),
)
def scorecards(context: dg.AssetExecutionContext, data_dir: DataDirResource) -> dg.MaterializeResult:
    import plotly.offline

    from dagster_project.lib.scorecards import page_name, render_site

    paths = data_dir.paths()
    site = render_site(paths.published_db, paths.reports, plotly.offline.get_plotlyjs())
    context.log.info(f"{site.n_national} national and {site.n_institutions} institution pages ({site.n_rendered} "
                     f"rendered anew, the others unchanged), {site.n_charts} charts drawn")
    return dg.MaterializeResult(metadata={
        "index": dg.MetadataValue.path(str(site.root / "index.html")),
        "example": dg.MetadataValue.path(str(site.root / "institutions" / page_name("32.11"))),
        "national_pages": site.n_national,
        "institution_pages": site.n_institutions,
        "institution_pages_rendered": site.n_rendered,
        "charts": site.n_charts,
    })


@dg.asset(
    group_name=REPORTS_GROUP,
    kinds={"html", "great_expectations"},
    deps=[PUBLISHED_KEY],
    description=("The Great Expectations results of every file received, as data/reports/validation.html: counts "
                 "per dataset and status, and for each file with failed expectations its rules, row counts and "
                 "sample rows (from the file's JSON report)."),
)
def validation_results(context: dg.AssetExecutionContext, data_dir: DataDirResource) -> dg.MaterializeResult:
    from dagster_project.lib.scorecards.validation import render_validation

    path, counts = render_validation(data_dir.paths())
    return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(path)), **counts})


@dg.asset(
    group_name=REPORTS_GROUP,
    kinds={"dbt", "html"},
    deps=[PUBLISHED_KEY],
    description=("`dbt docs generate --static`: the catalog of every model and column with lineage, as one "
                 "self-contained file, data/reports/dbt-docs.html."),
)
def dbt_docs(context: dg.AssetExecutionContext, data_dir: DataDirResource) -> dg.MaterializeResult:
    from dagster_project.lib.archive import write_atomically
    from dagster_project.lib.dbt_project import run_dbt
    from dagster_project.lib.warehouse import build_lock, code_fingerprint

    paths = data_dir.paths()
    target, stamp = paths.reports / "dbt-docs.html", paths.reports / "dbt-docs.fingerprint"
    # The catalog describes models and columns: a function of the code and the reference tables, not of the
    # data. When neither changed, the page on disk is current and dbt need not run (8 s saved per publish).
    fingerprint = code_fingerprint()
    if target.exists() and stamp.exists() and stamp.read_text(encoding="utf-8") == fingerprint:
        context.log.info("dbt docs are current (same code and reference tables): not regenerated")
    else:
        out = paths.state / "dbt_docs"
        with build_lock(paths, context.run.run_id):  # dbt opens the build database to read its catalog
            outcome = run_dbt(["docs", "generate", "--static"], paths.root, out)
        if not outcome.success:
            raise dg.Failure(f"dbt docs generate failed: {outcome.error}")
        paths.reports.mkdir(parents=True, exist_ok=True)
        write_atomically(target, (out / "static_index.html").read_bytes())
        write_atomically(stamp, fingerprint.encode())
    return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(target)),
                                          "bytes": target.stat().st_size, "code_fingerprint": fingerprint})

