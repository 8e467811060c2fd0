"""Resources: the release source (configurable in the launchpad) and the dbt CLI."""


import dataclasses
import os
import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

from dagster_project.lib.sources import SourceConfig
from dagster_project.paths import DBT_PROJECT_DIR


class ReleaseSourceResource(dg.ConfigurableResource):
    """Where official releases come from (DESIGN.md): the bundled folder, an HTTP manifest, or CKAN.

    Defaults come from the SPBE_RELEASE_* environment (lib/sources.py); each field can be changed in the
    launchpad for one run. The fields are those of SourceConfig.
    """

    kind: str
    location: str
    package_id: str
    allowed_hosts: list[str]
    timeout_seconds: float
    max_seconds: float
    max_bytes: int
    retries: int
    backoff_seconds: float

    @classmethod
    def from_config(cls, cfg: SourceConfig) -> "ReleaseSourceResource":
        return cls(**{**dataclasses.asdict(cfg), "allowed_hosts": list(cfg.allowed_hosts)})

    def config(self) -> SourceConfig:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(SourceConfig)}
        return SourceConfig(**{**values, "allowed_hosts": tuple(self.allowed_hosts)})


def executor_from_env() -> dg.ExecutorDefinition:
    """In-process by default: every step touches the one DuckDB writer in turn anyway, and a process per step
    costs a code-location import (seconds) each. SPBE_EXECUTOR=multiprocess for deployments that need it."""
    kind = os.environ.get("SPBE_EXECUTOR", "in_process")
    if kind not in ("in_process", "multiprocess"):
        raise ValueError(f"SPBE_EXECUTOR={kind!r}: expected in_process or multiprocess")
    return dg.in_process_executor if kind == "in_process" else dg.multiprocess_executor


def dbt_resource() -> DbtCliResource:
    # The venv's dbt, found next to this interpreter: PATH may not include the venv (stack.md P4).
    dbt = Path(sys.executable).parent / "dbt"
    return DbtCliResource(project_dir=str(DBT_PROJECT_DIR), profiles_dir=str(DBT_PROJECT_DIR),
                          dbt_executable=str(dbt) if dbt.exists() else "dbt")
