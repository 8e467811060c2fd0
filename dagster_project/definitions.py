"""The code location: assembles assets, checks, jobs, sensors and resources. Nothing else lives here."""

import dagster as dg

from dagster_project.defs.recovery import abandoned_runs_sensor
from dagster_project.defs.reports import REPORT_ASSETS
from dagster_project.defs.resources import ReleaseSourceResource, executor_from_env
from dagster_project.defs.sensors import inbox_sensor, reference_sensor, release_source_sensor
from dagster_project.defs.update import build_update_asset, update_warehouse_job
from dagster_project.defs.warehouse import build_dbt_models
from dagster_project.defs.windows import submission_window_schedule
from dagster_project.lib.sources import source_config_from_env


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[build_update_asset(), build_dbt_models(), *REPORT_ASSETS],
        jobs=[update_warehouse_job],
        sensors=[inbox_sensor, release_source_sensor, reference_sensor, abandoned_runs_sensor],
        schedules=[submission_window_schedule],
        executor=executor_from_env(),
        resources={"release_source": ReleaseSourceResource.from_config(source_config_from_env())},
    )
