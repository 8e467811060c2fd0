"""What each dataset that arrives as files is: how its bytes are read, typed and judged, and what a file says
about itself. lib/ingest.py lands every dataset the same way; only these differ.

- official releases: one results table per evaluation year, from the release source;
- secondary releases: results quoted by news, regional and ministry pages (one file per year, each row with
  its sources), from the same release source, kept apart from the official series;
- regional submissions: one institution x year x stage per file, from the inbox (a work unit's own file lands
  in a dataset of its own, so that it never counts as its institution's submission).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from dagster_project.lib.registry import Registry
from dagster_project.lib.releases import ReleaseFormatError, normalize_release, read_release_csv
from dagster_project.lib.secondary import normalize_secondary, read_secondary_csv
from dagster_project.lib.sources import RELEASE_TIERS
from dagster_project.lib.submissions import (
    FILE_INDEX,
    MAX_FILE_BYTES,
    SubmissionFormatError,
    normalize_submissions,
    read_submission,
)


@dataclass(frozen=True)
class Arrival:
    """A file to land: where its bytes are now, the name it came with (only ever shown, never a path), and
    what its source says about it."""

    path: Path
    original_name: str
    year: int | None = None  # the year a release source lists the file under
    ext: str | None = None  # the file type the source declares; else taken from the name
    log: tuple[tuple[str, str], ...] = ()  # extra ingest-log fields from the source (a release's version)


@dataclass(frozen=True)
class Dataset:
    name: str  # lake folder, ingest-log dataset and GX suite name
    id_columns: tuple[str, ...]  # shown next to each failing value
    code: tuple[str, ...]  # lib modules a verdict depends on, besides the suite and the reference tables
    format_error: type[ValueError]  # raised by ``read`` or ``normalize`` for a file that is not this dataset
    max_bytes: int | None  # a larger file is refused unread (None: the source bounds it)
    # bytes, printable file name -> the file's cells (raises format_error)
    read: Callable[[bytes, str], Any]
    # [(cells, arrival)], registry, received -> one typed frame whose FILE_INDEX column says which file a row is
    normalize: Callable[[list[tuple[Any, Arrival]], Registry, datetime], pd.DataFrame]
    # typed frame, arrivals by file index -> per file index: rows, its one year, and what it is about
    facts: Callable[[pd.DataFrame, dict[int, Arrival]], dict[int, dict]]
    # Submissions keep a verdict per file type: the same bytes sent as .txt (refused), then as .csv, are two
    # questions. A release's type is the source's, so one verdict per content.
    verdict_per_file_type: bool
    waits: str  # where a file not taken waits, as its reason says it


def _normalize_per_year(normalize: Callable[[pd.DataFrame, int, Registry], pd.DataFrame]):
    """A release's rows are typed against the year its source lists it under."""
    def normalize_files(files: list[tuple[pd.DataFrame, Arrival]], registry: Registry,
                        received: datetime) -> pd.DataFrame:
        return pd.concat([normalize(cells, arrival.year, registry).assign(**{FILE_INDEX: i})
                          for i, (cells, arrival) in enumerate(files)], ignore_index=True)
    return normalize_files


def _release_facts(frame: pd.DataFrame, arrivals: dict[int, Arrival]) -> dict[int, dict]:
    """A release is about its year, as its source lists it; the suite checks every row says the same."""
    rows = frame.groupby(FILE_INDEX).size()
    return {int(i): {"rows": int(n), "year": arrivals[int(i)].year, "keys": {}} for i, n in rows.items()}


def _submission_facts(frame: pd.DataFrame, arrivals: dict[int, Arrival]) -> dict[int, dict]:
    """Per file: rows, its one year (None if several or none), and what it is about when it says so
    unambiguously."""
    g = frame.groupby(FILE_INDEX)
    stats = g.agg(rows=("row_number", "size"), years=("year", "nunique"), year=("year", "first"),
                  ids=("institution_id", "nunique"), institution_id=("institution_id", "first"),
                  stages=("stage", "nunique"), stage=("stage", "first"), is_late=("is_late", "any"),
                  units=("work_unit", "nunique"), work_unit=("work_unit", "first"), coverage=("coverage", "min"))
    out = {}
    for k, r in zip(stats.index, stats.itertuples(index=False), strict=True):
        out[int(k)] = {"rows": int(r.rows), "year": int(r.year) if r.years == 1 else None, "keys": {
            "institution_id": str(r.institution_id) if r.ids == 1 else None,
            "stage": str(r.stage) if r.stages == 1 else None, "is_late": bool(r.is_late),
            "work_unit": str(r.work_unit) if r.units == 1 else None,
            "coverage": float(r.coverage) if pd.notna(r.coverage) else None}}
    return out


RELEASES = Dataset(
    "official_results", ("row_number", "year", "institution_name", "kemendagri_code"),
    ("releases.py", "framework.py", "registry.py", "quality.py", "values.py"),
    ReleaseFormatError, max_bytes=None, read=read_release_csv,  # bounded by SPBE_RELEASE_MAX_BYTES
    normalize=_normalize_per_year(normalize_release),
    facts=_release_facts, verdict_per_file_type=False, waits="at its source")
SECONDARY = Dataset(
    "secondary_results", ("row_number", "year", "institution_name"),
    ("secondary.py", "releases.py", "framework.py", "registry.py", "quality.py", "values.py"),
    ReleaseFormatError, max_bytes=None, read=read_secondary_csv,
    normalize=_normalize_per_year(normalize_secondary),
    facts=_release_facts, verdict_per_file_type=False, waits="at its source")
# The dataset of each tier a release source's entry names (``tier`` in its manifest; official by default).
TIER_DATASETS = dict(zip(RELEASE_TIERS, (RELEASES, SECONDARY), strict=True))
SUBMISSIONS = Dataset(
    "submissions", ("row_number", "institution_code", "stage", "indicator"),
    ("submissions.py", "framework.py", "registry.py", "quality.py", "values.py"),
    SubmissionFormatError, max_bytes=MAX_FILE_BYTES, read=lambda content, name: read_submission(content, name).table,
    normalize=lambda files, registry, received: normalize_submissions([t for t, _ in files], registry, received),
    facts=_submission_facts, verdict_per_file_type=True, waits="in the inbox")
# Work units' (OPD) own self-assessments: the same contract and suite, their own lake folder and log dataset.
WORK_UNITS = "work_unit_submissions"


def lake_dataset(dataset: Dataset, keys: dict) -> str:
    """The lake folder and log dataset of an accepted file."""
    return WORK_UNITS if dataset is SUBMISSIONS and keys.get("work_unit") else dataset.name
