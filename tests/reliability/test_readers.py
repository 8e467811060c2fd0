"""Promise: readers are never broken by writers. A separate process queries the published file in a loop
while a real rebuild (a file lands in the inbox: dbt build and publish, through Dagster) and then rapid
publishes replace it; every query succeeds and every answer comes from one version."""

import dataclasses
import json
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import duckdb

from dagster_project.lib.publish import publish_marts
from dagster_project.paths import DataPaths
from tests.conftest import land_files
from tests.events import submission

MIN_QUERIES = 300

READER = textwrap.dedent("""
    import json, os, sys, time
    import duckdb
    path, stop, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    answers, errors = [], []
    while len(answers) + len(errors) < n or not os.path.exists(stop):
        try:
            con = duckdb.connect(path, read_only=True)
            # One statement reads the version stamp and the data: both must come from the same file.
            row = con.execute(
                "select (select value from publish_manifest where key = 'run_id'), count(*), sum(index_value) "
                "from fct_index").fetchall()[0]
            con.close()
            answers.append([row[0], row[1], round(row[2], 6)])
        except Exception as e:
            errors.append(repr(e))
        time.sleep(0.02)  # with the connect (27 ms of CPU: the file's catalog), about 20 queries a second
    print(json.dumps({"answers": answers, "errors": errors}))
""")


@dataclasses.dataclass(frozen=True)
class _OtherBuildDb(DataPaths):
    """The same data directory, with its build database elsewhere."""

    build_folder: Path = Path()

    @property
    def build_db(self) -> Path:
        return self.build_folder / "build.duckdb"


def _with_build_db(paths: DataPaths, folder: Path) -> DataPaths:
    return _OtherBuildDb(**{f.name: getattr(paths, f.name) for f in dataclasses.fields(paths)}, build_folder=folder)


def test_readers_see_whole_versions_while_rebuilds_and_publishes_run(built_warehouse, tmp_path, monkeypatch):
    paths = DataPaths(tmp_path / "data")
    shutil.copytree(built_warehouse[0].root, paths.root)
    monkeypatch.setenv("SPBE_DATA_DIR", str(paths.root))
    manifest = json.loads(paths.published_manifest.read_text())
    marts = manifest["tables"]
    # Two alternating builds with different content, so that a mixed answer would show. The smaller one is
    # the same data directory seen with another build database (publish_marts reads paths.build_db).
    smaller_dir = tmp_path / "smaller"
    smaller_dir.mkdir()
    shutil.copyfile(paths.build_db, smaller_dir / paths.build_db.name)
    with duckdb.connect(str(smaller_dir / paths.build_db.name)) as con:
        con.execute("delete from main.fct_index where year = 2023")
    smaller = _with_build_db(paths, smaller_dir)
    stop = tmp_path / "stop"
    arriving = tmp_path / "luwu.json"  # a new final submission for 2024: one row more in fct_index
    arriving.write_bytes(submission("73.17", level=4))

    reader = subprocess.Popen([sys.executable, "-c", READER, str(paths.published_db), str(stop), str(MIN_QUERIES)],
                              stdout=subprocess.PIPE, text=True)
    try:
        with dg.DagsterInstance.ephemeral() as instance:  # dbt writes build.duckdb (what the file affects), publish
            rebuild = land_files(instance, [arriving], build=True)
        assert rebuild.success
        time.sleep(1.0)  # the rebuild's version stays up a moment, so the readers meet it
        publishes = 0
        while publishes < 3 or reader.poll() is None:
            publish_marts(smaller if publishes % 2 else paths, f"run-{publishes}", sorted(marts),
                          manifest["log_position"], manifest["build_fingerprint"])
            publishes += 1
            if publishes >= 3:
                stop.touch()
    finally:
        stop.touch()
        out, _ = reader.communicate(timeout=120)
    result = json.loads(out)

    print(f"RELIABILITY readers: {len(result['answers'])} queries, {len(result['errors'])} errors, "
          f"1 rebuild + {publishes} publishes")
    assert result["errors"] == []
    assert len(result["answers"]) >= MIN_QUERIES
    versions: dict[str, tuple] = {}
    for run_id, count, total in result["answers"]:
        versions.setdefault(run_id, (count, total))
        assert versions[run_id] == (count, total), "an answer mixed two published versions"
    assert json.dumps(rebuild.run_id) in versions  # readers saw the rebuild's own publish, and at least 3 more
    assert len(versions) >= 3
    # 1236 official, 11 computed and 101 secondary rows and the new file's; the smaller one without 2023's
    expected = {0: 1348 + 1, 1: 1348 - 621}
    for run_id, (count, _) in versions.items():
        number = int(json.loads(run_id).split("-")[1]) if run_id.startswith('"run-') else None
        if number is not None:
            assert count == expected[number % 2]
