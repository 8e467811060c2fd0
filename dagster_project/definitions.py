"""The code location: every definition in ``dagster_project/defs/``, found by Dagster's loader (assets,
checks, the job, sensors, the schedule, and ``defs/resources.py``'s resources and executor). Nothing else
lives here; a new module in ``defs/`` is picked up without being listed."""

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).resolve().parent)
