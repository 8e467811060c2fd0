"""Resources: the release source (configurable in the launchpad) and the dbt CLI."""


import dataclasses
import importlib.metadata
import os
import sys
from functools import cached_property
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource
from packaging import version

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


class SpbeDbtCliResource(DbtCliResource):
    """dagster-dbt's resource without two costs it pays on every run (docs/performance.md, measured 10.7 s
    of a 24 s build step): `dbt --version` in a subprocess to learn a version the lock file already pins,
    and an in-process dbt adapter that only serves `fetch_row_counts` and `fetch_column_metadata`, which
    this project does not use. Both override private members of dagster-dbt 0.29 (pinned);
    tests/test_definitions.py checks them against the installed versions.
    """

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args):  # noqa: ARG002 (dagster-dbt's signature)
        return None


def dbt_resource() -> DbtCliResource:
    # The venv's dbt, found next to this interpreter: PATH may not include the venv (stack.md P4).
    dbt = Path(sys.executable).parent / "dbt"
    return SpbeDbtCliResource(project_dir=str(DBT_PROJECT_DIR), profiles_dir=str(DBT_PROJECT_DIR),
                          dbt_executable=str(dbt) if dbt.exists() else "dbt")
