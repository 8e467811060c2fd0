"""Resources: the release source (configurable in the launchpad), and the executor setting."""


import dataclasses
import os

import dagster as dg

from dagster_project.lib.sources import SourceConfig


class ReleaseSourceResource(dg.ConfigurableResource):
    """Where official releases come from: the bundled folder, an HTTP manifest, or a CKAN portal.

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
    """In-process by default: the job's steps run one after another anyway (the reports need the publish),
    and a process per step costs a code-location import each. SPBE_EXECUTOR=multiprocess where needed."""
    kind = os.environ.get("SPBE_EXECUTOR", "in_process")
    if kind not in ("in_process", "multiprocess"):
        raise ValueError(f"SPBE_EXECUTOR={kind!r}: expected in_process or multiprocess")
    return dg.in_process_executor if kind == "in_process" else dg.multiprocess_executor
