"""Jobs and automation: ingestion per release year, the warehouse build, and the automation sensor."""


import dagster as dg

from dagster_project.defs.releases import official_release

INGEST_JOB = "ingest_release"
BUILD_JOB = "build_warehouse"

ingest_release_job = dg.define_asset_job(
    INGEST_JOB, selection=dg.AssetSelection.assets(official_release),
    description="Fetch, archive, validate and land one official release (one year partition).",
)
build_warehouse_job = dg.define_asset_job(
    BUILD_JOB, selection=dg.AssetSelection.all() - dg.AssetSelection.assets(official_release),
    description="Validate reference tables, run dbt build (seeds, models, tests) and publish spbe.duckdb.",
)

# Evaluates the assets' automation conditions: the marts and the publish follow a landed release.
warehouse_automation = dg.AutomationConditionSensorDefinition(
    "warehouse_automation",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Rebuilds the marts and publishes when a release lands or reference data changes.",
)
