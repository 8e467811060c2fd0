"""SPBE_WAREHOUSE=ducklake against a real PostgreSQL catalog (Debian's server, started here as
`spbe postgres start` starts it): each publish is one DuckLake snapshot holding exactly the published file's
marts; `spbe query`, `spbe export` and the DuckDB CLI attach the catalog read-only, and `--as-of` answers
from an earlier snapshot; commands at once lose nothing, and nothing is ever downloaded (they run with no
network at all)."""

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from dagster_project import cli
from dagster_project.lib import ducklake, extensions
from tests.conftest import land_files
from tests.events import submission

SPBE = Path(sys.executable).parent / "spbe"


@pytest.fixture
def catalog(postgres_server, request):
    """A new DuckLake catalog (a database of its own) for one test: its connection string."""
    return "postgres:" + postgres_server.create_database(f"lake_{request.node.name[:40].lower()}")


def marts_differ(file_db: Path, lake: ducklake.DuckLakeSetting, tables: list[str]) -> dict[str, int]:
    """Rows in one and not the other (EXCEPT ALL, both ways), per table; only tables that differ."""
    con = ducklake.connect(lake, read_only=True)
    try:
        con.execute(f"attach '{file_db}' as published (read_only)")
        differ = {}
        for t in tables:
            a, b = f'published.main."{t}"', f'spbe.main."{t}"'  # our own table names
            n = con.execute(f"select (select count(*) from (from {a} except all from {b})) + "  # noqa: S608
                            f"(select count(*) from (from {b} except all from {a}))").fetchone()[0]
            if n:
                differ[t] = n
        return differ
    finally:
        con.close()


READER = """
import json, os, sys, time
from pathlib import Path
from dagster_project.lib import ducklake
from dagster_project.paths import data_paths
# One session, as an analyst's: each statement is a transaction of its own, so it reads the newest snapshot.
# A query every 0.3 s: which snapshot a statement reads is decided by the catalog, not by timing, so a faster
# loop checks nothing more and only takes CPU (each query also works PostgreSQL) from the commands it watches.
lake, stop, answers, errors = ducklake.setting(data_paths()), Path(sys.argv[1]), [], []
con = ducklake.connect(lake, read_only=True)
while not stop.exists() or len(answers) < 20:
    try:
        answers.append(con.execute(
            "select (select value from publish_manifest where key = 'run_id'), count(*), sum(index_value) "
            "from fct_index").fetchone())  # one statement: one snapshot
    except Exception as e:
        errors.append(repr(e))
    time.sleep(0.3)
print(json.dumps({"answers": answers, "errors": errors}, default=str))
"""


def test_landings_and_a_full_rebuild_at_once_publish_snapshots_identical_to_the_file_that_queries_travel_back(
        copy_of_built, catalog, tmp_path, monkeypatch, capsys):
    """Three `spbe` commands at once, each in its own process with no network and a plain PATH (the environment
    not activated: dbt runs in process, found beside the running Python), two landing files, one rebuilding
    everything, and a fourth process querying the catalog in a loop: every command succeeds, both good files
    are in the last snapshot, every answer comes from one snapshot and no query fails. Each landing command
    reports its own files only and exits 1 only for its own refused file (defect 7: each printed the other's
    files, and one exited 1 for the other's quarantined file). With no network namespace (`unshare --net` needs
    root), the same runs with the network: then it proves no download.
    Then, on the catalog those commands left: each publish is one snapshot holding exactly the published file's
    marts, with their comments, read-only to readers; `spbe query`, `spbe export` and the DuckDB CLI read it,
    and `--as-of` answers from the first snapshot; a catalog that cannot be reached fails the next run before
    dbt starts, saying what to do, and changes nothing."""
    paths = copy_of_built
    monkeypatch.setenv(ducklake.BACKEND_ENV, "ducklake")
    monkeypatch.setenv(ducklake.CATALOG_ENV, catalog)
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home")}
    # No network at all: an extension that tried to download would fail the command.
    offline = ["unshare", "--net", "--"] if shutil.which("unshare") and subprocess.run(
        ["unshare", "--net", "true"], capture_output=True).returncode == 0 else []
    files = [tmp_path / "luwu.json", tmp_path / "pacitan.json", tmp_path / "bad.json", tmp_path / "sumedang_fix.json"]
    files[0].write_bytes(submission("73.17", level=2))
    files[1].write_bytes(submission("35.01", level=4))
    files[2].write_bytes(b"not json")
    files[3].write_bytes(submission("32.11", level=4))  # Kab. Sumedang's 2024 final: 4.5075 published, then 4.0
    lake = ducklake.setting(paths)  # the catalog's first snapshot, before the reader starts: what is published
    first = ducklake.publish_snapshot(lake, paths.published_db, [
        *json.loads(paths.published_manifest.read_text())["tables"], "publish_manifest"])
    between = datetime.now(UTC)
    time.sleep(0.05)
    stop = tmp_path / "stop"
    reader = subprocess.Popen([*offline, sys.executable, "-c", READER, str(stop)], env=env, stdout=subprocess.PIPE,
                              text=True)
    try:
        plain = {**env, "PATH": "/usr/bin:/bin"}
        commands = [subprocess.Popen([*offline, str(SPBE), *args], env=plain, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
                    for args in (["ingest", str(files[0]), str(files[3])], ["ingest", str(files[1]), str(files[2])],
                                 ["build", "--force"])]
        outcomes = [c.communicate(timeout=600) for c in commands]
    finally:
        stop.touch()
        out, _ = reader.communicate(timeout=120)
    assert [c.returncode for c in commands] == [0, 1, 0], [err for _, err in outcomes]
    (luwu, _), (pacitan, _), _ = outcomes
    assert "luwu.json: loaded" in luwu and "sumedang_fix.json: loaded" in luwu
    assert "pacitan.json" not in luwu and "bad.json" not in luwu
    assert "pacitan.json: loaded" in pacitan and "bad.json: quarantined" in pacitan and "luwu.json" not in pacitan
    result = json.loads(out)
    assert result["errors"] == []
    per_run: dict[str, tuple] = {}
    for run_id, count, total in result["answers"]:
        assert per_run.setdefault(run_id, (count, total)) == (count, total), "an answer mixed two snapshots"
    assert len(per_run) >= 2  # the reader saw publishes happen
    with ducklake.connect(lake) as con:
        landed = con.execute("select original_name from fct_ingest_log where original_name in "
                             "('luwu.json', 'pacitan.json') and status = 'loaded' order by 1").fetchall()
        snapshots = con.execute("select count(*) from spbe.snapshots()").fetchone()[0]
    assert landed == [("luwu.json",), ("pacitan.json",)]
    assert snapshots >= 3  # the first build's, then at least one per build that found something new
    manifest = json.loads(paths.published_manifest.read_text())
    assert first < manifest["ducklake"]["snapshot_id"]
    tables = [*manifest["tables"], "publish_manifest"]
    assert marts_differ(paths.published_db, lake, tables) == {}  # the file and the last snapshot: the same rows
    with ducklake.connect(lake) as con:
        assert {t for (t,) in con.execute("select table_name from duckdb_tables() where database_name = 'spbe'"
                                          ).fetchall()} == set(tables)
        assert con.execute("select count(*) from duckdb_columns() where database_name = 'spbe' and "
                           "coalesce(comment, '') = ''").fetchone() == (0,)  # the dbt descriptions travel too
        with pytest.raises(duckdb.Error, match="read.only|READ_ONLY|read-only"):
            con.execute("delete from fct_index")

    index = ("select index_value from fct_index where source = 'computed' and institution_id = '32.11' and "
             "year = 2024 and stage = 'final'")
    assert cli.main(["query", "--format", "json", index]) == 0
    assert json.loads(capsys.readouterr().out) == [{"index_value": 4.0}]
    assert cli.main(["query", "--as-of", between.isoformat(), "--format", "json", index]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == [{"index_value": 4.5075}]  # the snapshot current then
    assert f"DuckLake snapshot {first}" in err
    with pytest.raises(SystemExit, match="no DuckLake snapshot as of 2020-01-01T23:59:59.999999[+]07:00"):
        cli.main(["query", "--as-of", "2020-01-01", index])

    # An export reads the catalog too: a CSV folder with the institution's rows and an about file.
    assert cli.main(["export", "fct_index", "--institution", "32.11", "--format", "csv", "--out",
                     str(tmp_path / "export")]) == 0
    exported = (tmp_path / "export" / "fct_index.csv").read_text(encoding="utf-8").splitlines()
    assert len(exported) > 1 and all("32.11" in line for line in exported[1:])
    assert (tmp_path / "export" / "about.csv").exists()
    capsys.readouterr()

    # The DuckDB CLI from PyPI (the wheels' version) attaches it read-only with the wheels' extension files,
    # as the README shows.
    install = "; ".join(f"INSTALL '{extensions.wheel_file(name)}'; LOAD {name}" for name in ("ducklake", "postgres"))
    cli_run = subprocess.run([str(Path(sys.executable).parent / "duckdb"), "-csv", "-c",
                              f"SET autoinstall_known_extensions = false; SET extension_directory = "
                              f"'{tmp_path / 'cli-extensions'}'; {install}; ATTACH 'ducklake:{catalog}' AS spbe "
                              f"(READ_ONLY); USE spbe; {index}"], capture_output=True, text=True,
                             env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert cli_run.returncode == 0 and cli_run.stdout.split() == ["index_value", "4.0"], cli_run.stderr

    # A catalog that cannot be reached: the run fails before dbt starts, saying what to do; nothing changes.
    published = paths.published_db.read_bytes()
    monkeypatch.setenv(ducklake.CATALOG_ENV, f"postgres:dbname=spbe user=spbe password=s3cret host={tmp_path}")
    (tmp_path / "later.json").write_bytes(submission("73.17", level=3))
    with dg.DagsterInstance.ephemeral() as instance:
        failed = land_files(instance, [tmp_path / "later.json"], build=True, raise_on_error=False)
    assert not failed.success
    (failure,) = [e for e in failed.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    message = failure.step_failure_data.error.message
    assert "cannot be attached" in message and "spbe postgres start" in message and "s3cret" not in message
    assert paths.published_db.read_bytes() == published
    monkeypatch.setenv(ducklake.CATALOG_ENV, catalog)


def test_dbt_builds_the_local_file_never_the_catalog():
    """The thread setting's guard (docs/scaling.md, DuckLake issue #1404: a dbt build on DuckLake with more than
    one thread put objects in the wrong schema): dbt's profile targets the local build database only, so its
    two threads never write the catalog; only publish does, from one connection."""
    import yaml

    from dagster_project.paths import DBT_PROJECT_DIR

    profile = yaml.safe_load((DBT_PROJECT_DIR / "profiles.yml").read_text())["spbe_monitor"]
    (output,) = profile["outputs"].values()
    assert output["type"] == "duckdb" and output["path"].endswith("/warehouse/build.duckdb")
    assert "ducklake" not in json.dumps(profile).lower() and "attach" not in output
    assert output["threads"] == 2
