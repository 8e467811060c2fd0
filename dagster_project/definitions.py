"""The code location: assembles assets, checks, jobs, sensors and resources. Nothing else lives here."""

import dagster as dg

from dagster_project.defs.automation import (
    build_warehouse_job,
    ingest_release_job,
    ingest_submissions_job,
    publish_reports_job,
    warehouse_automation,
)
from dagster_project.defs.publish import build_publish_asset
from dagster_project.defs.recovery import abandoned_runs_sensor
from dagster_project.defs.reference import reference_tables
from dagster_project.defs.releases import ingest_log, official_release, release_source_sensor
from dagster_project.defs.reports import REPORT_ASSETS
from dagster_project.defs.resources import ReleaseSourceResource, dbt_resource, executor_from_env
from dagster_project.defs.submissions import inbox_sensor, submission_files, work_unit_files
from dagster_project.defs.warehouse import warehouse_dbt_assets
from dagster_project.defs.windows import submission_window_schedule, window_completeness_report
from dagster_project.lib.sources import source_config_from_env


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[reference_tables, official_release, ingest_log, submission_files, work_unit_files,
                warehouse_dbt_assets(), build_publish_asset(), window_completeness_report, *REPORT_ASSETS],
        jobs=[ingest_release_job, ingest_submissions_job, build_warehouse_job, publish_reports_job],
        sensors=[release_source_sensor, inbox_sensor, warehouse_automation, abandoned_runs_sensor],
        schedules=[submission_window_schedule],
        executor=executor_from_env(),
        resources={
            "dbt": dbt_resource(),
            "release_source": ReleaseSourceResource.from_config(source_config_from_env()),
        },
    )
