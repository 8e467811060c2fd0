"""Resources: the data directory and the release source (each configurable in the launchpad for one run), and
the executor setting. This module's ``defs`` gives them to every asset and sensor of the code location."""


import dataclasses
import os
from pathlib import Path

import dagster as dg

from dagster_project.lib.sources import SourceConfig, source_config_from_env
from dagster_project.paths import DataPaths, data_paths


class DataDirResource(dg.ConfigurableResource):
    """Where runs read and write: everything under one data directory (inbox, archive, lake, warehouse,
    reports). Unset fields follow the environment when the run starts: SPBE_DATA_DIR (default: the
    repository's data/) and SPBE_INBOX_DIR (default: the data directory's inbox/)."""

    root: str | None = None
    inbox_dir: str | None = None

    def paths(self) -> DataPaths:
        configured = data_paths()
        return DataPaths(Path(self.root).resolve() if self.root else configured.root,
                         Path(self.inbox_dir).resolve() if self.inbox_dir else configured.inbox_dir)


class ReleaseSourceResource(dg.ConfigurableResource):
    """Where official releases come from: the bundled folder, an HTTP manifest, or a CKAN portal.

    Unset fields follow the SPBE_RELEASE_* environment when the run or the sensor's tick starts
    (lib/sources.py); each can be set in the launchpad for one run. The fields are those of SourceConfig.
    """

    kind: str | None = None
    location: str | None = None
    package_id: str | None = None
    allowed_hosts: list[str] | None = None
    timeout_seconds: float | None = None
    max_seconds: float | None = None
    max_bytes: int | None = None
    retries: int | None = None
    backoff_seconds: float | None = None

    @classmethod
    def from_config(cls, cfg: SourceConfig) -> "ReleaseSourceResource":
        return cls(**{**dataclasses.asdict(cfg), "allowed_hosts": list(cfg.allowed_hosts)})

    def config(self) -> SourceConfig:
        set_here = {f.name: getattr(self, f.name) for f in dataclasses.fields(SourceConfig)
                    if getattr(self, f.name) is not None}
        if "allowed_hosts" in set_here:
            set_here["allowed_hosts"] = tuple(set_here["allowed_hosts"])
        return dataclasses.replace(source_config_from_env(), **set_here)


def executor_from_env() -> dg.ExecutorDefinition:
    """In-process by default: the job's steps run one after another anyway (the reports need the publish),
    and a process per step costs a code-location import each. SPBE_EXECUTOR=multiprocess where needed."""
    kind = os.environ.get("SPBE_EXECUTOR", "in_process")
    if kind not in ("in_process", "multiprocess"):
        raise ValueError(f"SPBE_EXECUTOR={kind!r}: expected in_process or multiprocess")
    return dg.in_process_executor if kind == "in_process" else dg.multiprocess_executor


defs = dg.Definitions(
    resources={"data_dir": DataDirResource(), "release_source": ReleaseSourceResource()},
    executor=executor_from_env(),
)
