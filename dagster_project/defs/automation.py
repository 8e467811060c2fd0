"""Jobs and automation: ingestion per release year, the warehouse build, and the automation sensor."""


import dagster as dg

from dagster_project.defs.releases import official_release
from dagster_project.defs.reports import REPORTS_GROUP
from dagster_project.defs.submissions import submission_files

INGEST_JOB = "ingest_release"
SUBMISSIONS_JOB = "ingest_submissions"
BUILD_JOB = "build_warehouse"
REPORTS_JOB = "publish_reports"

ingest_release_job = dg.define_asset_job(
    INGEST_JOB, selection=dg.AssetSelection.assets(official_release),
    description="Fetch, archive, validate and land one official release (one year partition).",
)
ingest_submissions_job = dg.define_asset_job(
    SUBMISSIONS_JOB, selection=dg.AssetSelection.assets(submission_files),
    description="Archive, validate and land a batch of inbox files (the inbox sensor's job; `spbe ingest`).",
)
build_warehouse_job = dg.define_asset_job(
    BUILD_JOB, selection=dg.AssetSelection.all() - dg.AssetSelection.assets(official_release, submission_files)
    - dg.AssetSelection.groups(REPORTS_GROUP),
    description="Validate reference tables, run dbt build (seeds, models, tests) and publish spbe.duckdb.",
)
publish_reports_job = dg.define_asset_job(
    REPORTS_JOB, selection=dg.AssetSelection.groups(REPORTS_GROUP),
    description="Write the scorecards, the validation results page and the dbt docs catalog to data/reports/.",
)

# Evaluates the assets' automation conditions: the marts and the publish follow a landed release.
warehouse_automation = dg.AutomationConditionSensorDefinition(
    "warehouse_automation",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=15,
    description="Rebuilds the marts and publishes when a release or a submission lands, or reference data changes.",
)
