"""Every path the project uses, derived from one setting: ``SPBE_DATA_DIR`` (default ``<repo>/data``).

Bundled, versioned inputs (reference tables, the default release folder, templates) live in the
repository's ``data/``; everything a run writes lives under ``SPBE_DATA_DIR``, so tests use a temp dir.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_DATA_DIR = REPO_ROOT / "data"
REFERENCE_DIR = BUNDLED_DATA_DIR / "reference"
BUNDLED_RELEASES_DIR = BUNDLED_DATA_DIR / "releases"
DBT_PROJECT_DIR = REPO_ROOT / "dbt"
EXPECTATIONS_DIR = REPO_ROOT / "expectations"


DATA_DIR_ENV = "SPBE_DATA_DIR"  # the one setting; dbt's profile reads it too (dbt/profiles.yml)


@dataclass(frozen=True)
class DataPaths:
    """The writable layout under one data directory (docs/architecture.md, "The flow")."""

    root: Path
    inbox_dir: Path | None = None  # SPBE_INBOX_DIR: where people and sync jobs drop submissions

    @property
    def inbox(self) -> Path:
        return self.inbox_dir or self.root / "inbox"

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse"

    @property
    def build_db(self) -> Path:
        return self.warehouse / "build.duckdb"

    @property
    def published_db(self) -> Path:
        return self.warehouse / "spbe.duckdb"

    @property
    def published_manifest(self) -> Path:
        return self.warehouse / "spbe.manifest.json"

    @property
    def snapshots(self) -> Path:
        return self.warehouse / "history"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def ingest_log(self) -> Path:
        return self.state / "ingest_log.jsonl"

    @property
    def http_cache(self) -> Path:
        return self.state / "http_cache.json"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster_home"

    @property
    def postgres(self) -> Path:
        """`spbe postgres start`'s server: the default DuckLake catalog (lib/ducklake.py)."""
        return self.root / "postgres"

    @property
    def ducklake_files(self) -> Path:
        """The DuckLake catalog's Parquet files, unless SPBE_DUCKLAKE_DATA_PATH names another folder."""
        return self.root / "ducklake"

    @property
    def duckdb_extensions(self) -> Path:
        """Where DuckDB extensions are installed from their wheels (lib/extensions.py)."""
        return self.state / "duckdb_extensions"

    def lake_dataset(self, dataset: str) -> Path:
        return self.lake / dataset

    def ensure(self) -> DataPaths:
        for d in (self.inbox, self.archive, self.quarantine, self.lake, self.state, self.warehouse):
            d.mkdir(parents=True, exist_ok=True)
        return self


def data_paths() -> DataPaths:
    """The configured data directory, resolved to an absolute path (dbt runs with another cwd)."""
    inbox = os.environ.get("SPBE_INBOX_DIR")
    return DataPaths(Path(os.environ.get(DATA_DIR_ENV, BUNDLED_DATA_DIR)).resolve(),
                     Path(inbox).resolve() if inbox else None)
