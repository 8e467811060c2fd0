"""Shared set-up for the tests that run the real `spbe` command in a subprocess."""

import hashlib
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from dagster_project.lib.samples import generate
from dagster_project.paths import DataPaths

SPBE = Path(sys.executable).parent / "spbe"


@dataclass
class CliCase:
    paths: DataPaths  # a copy of the built warehouse's data dir
    env: dict[str, str]  # for `spbe` on that copy, with a Dagster home of its own
    received: Path  # a new submission (Kab. Sumedang, 2023, final), not yet landed
    content: bytes
    sha256: str


@pytest.fixture
def cli_case(built_warehouse, tmp_path) -> CliCase:
    paths = DataPaths(tmp_path / "data")
    shutil.copytree(built_warehouse[0].root, paths.root)
    env = {**os.environ, "SPBE_DATA_DIR": str(paths.root), "DAGSTER_HOME": str(tmp_path / "home")}
    new = generate(["32.11"], years=(2023,), stages=("final",))[0]
    received = tmp_path / new.name
    received.write_bytes(new.content)
    return CliCase(paths, env, received, new.content, hashlib.sha256(new.content).hexdigest())
