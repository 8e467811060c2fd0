"""As-of history: published warehouses kept by hard link with their manifests, pruned to N, queried by date."""

import os
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from dagster_project.lib.publish import publish_marts
from dagster_project.lib.snapshots import (
    KEEP_ENV,
    keep_setting,
    list_snapshots,
    parse_as_of,
    snapshot_as_of,
)
from dagster_project.paths import DataPaths


def publish(tmp_path, value: int, keep: int):
    paths = DataPaths(tmp_path).ensure()
    with duckdb.connect(str(paths.build_db)) as con:
        con.execute("create or replace table fct_x as select ? as value", [value])
    return publish_marts(paths, f"run-{value}", ["fct_x"], 0, "fp", keep)  # log position 0: no log here


def value_in(path) -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("select value from fct_x").fetchone()[0]


def test_the_last_n_publishes_are_kept_each_with_its_own_content(tmp_path):
    results = [publish(tmp_path, v, keep=2) for v in (1, 2, 3)]
    kept = list_snapshots(tmp_path / "warehouse" / "history")
    assert [s.run_id for s in kept] == ["run-2", "run-3"]
    assert [value_in(s.path) for s in kept] == [2, 3]  # a hard link keeps the old file when publish replaces it
    assert all(s.manifest_path.exists() for s in kept)
    assert len(list((tmp_path / "warehouse" / "history").iterdir())) == 4  # two files each, nothing else
    assert os.stat(kept[-1].path).st_ino == os.stat(results[-1].path).st_ino  # a link, not a copy


def test_as_of_picks_the_newest_snapshot_published_by_then(tmp_path):
    for v in (1, 2):
        publish(tmp_path, v, keep=5)
    history = tmp_path / "warehouse" / "history"
    first, second = list_snapshots(history)
    assert snapshot_as_of(history, first.published_at).run_id == "run-1"
    assert snapshot_as_of(history, second.published_at + timedelta(days=1)).run_id == "run-2"
    with pytest.raises(LookupError, match="no published warehouse as of"):
        snapshot_as_of(history, first.published_at - timedelta(seconds=1))


def test_keep_zero_keeps_none(tmp_path):
    publish(tmp_path, 1, keep=3)
    publish(tmp_path, 2, keep=0)
    assert list_snapshots(tmp_path / "warehouse" / "history") == []


def test_a_date_means_the_end_of_that_day_in_jakarta():
    moment = parse_as_of("2025-01-15")
    assert moment.astimezone(UTC) == datetime(2025, 1, 15, 16, 59, 59, 999999, tzinfo=UTC)
    assert parse_as_of("2025-01-15T08:00:00").tzinfo == UTC
    with pytest.raises(ValueError, match="--as-of wants a date"):
        parse_as_of("15/01/2025")


def test_the_keep_setting_is_checked(monkeypatch):
    monkeypatch.setenv(KEEP_ENV, "3")
    assert keep_setting() == 3
    monkeypatch.setenv(KEEP_ENV, "-1")
    with pytest.raises(ValueError, match=KEEP_ENV):
        keep_setting()
