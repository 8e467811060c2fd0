"""Promise: readers are never broken by writers. A separate process queries the published file in a loop
while full publishes replace it; every query succeeds and every answer comes from one version."""

import json
import shutil
import subprocess
import sys
import textwrap

from dagster_project.lib.publish import publish_marts
from dagster_project.paths import DataPaths

QUERIES = 300

READER = textwrap.dedent("""
    import json, sys, time
    import duckdb
    path, n = sys.argv[1], int(sys.argv[2])
    answers, errors = [], []
    for _ in range(n):
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
    print(json.dumps({"answers": answers, "errors": errors}))
""")


def test_readers_see_whole_versions_while_publishes_run(built_warehouse, tmp_path):
    paths = DataPaths(tmp_path / "data")
    shutil.copytree(built_warehouse[0].root, paths.root)
    marts = json.loads(paths.published_manifest.read_text())["tables"]
    # Two alternating builds with different content, so that a mixed answer would show.
    smaller = tmp_path / "smaller.duckdb"
    shutil.copyfile(paths.build_db, smaller)
    import duckdb

    with duckdb.connect(str(smaller)) as con:
        con.execute("delete from main.fct_index where year = 2023")

    reader = subprocess.Popen([sys.executable, "-c", READER, str(paths.published_db), str(QUERIES)],
                              stdout=subprocess.PIPE, text=True)
    publishes = 0
    while reader.poll() is None:
        build = smaller if publishes % 2 else paths.build_db
        publish_marts(build, paths.published_db, paths.published_manifest, f"run-{publishes}", sorted(marts), {}, "")
        publishes += 1
    result = json.loads(reader.stdout.read())

    assert result["errors"] == []
    assert len(result["answers"]) == QUERIES and publishes >= 3
    versions: dict[str, tuple] = {}
    for run_id, count, total in result["answers"]:
        versions.setdefault(run_id, (count, total))
        assert versions[run_id] == (count, total), "an answer mixed two published versions"
    expected = {0: 1247, 1: 1247 - 621}
    for run_id, (count, _) in versions.items():
        number = int(json.loads(run_id).split("-")[1]) if run_id.startswith('"run-') else None
        if number is not None:
            assert count == expected[number % 2]
