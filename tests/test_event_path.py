"""The event path: one exact way from a dropped file to published data.

Each defect found on the earlier design has its test here (long names, slow writers, a landing during a
build, demo samples landed again, a killed run with a waiting command, claims of a dead command, odd inbox
entries, two commands at once, a UI start that launched runs), with the rules that replaced it: the ingest
log is the commit log, a build publishes exactly the log position it read, and nothing moves without new
data.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import dagster as dg
import duckdb

from dagster_project import cli
from dagster_project.defs.resources import DataDirResource
from dagster_project.defs.sensors import inbox_sensor, reference_sensor, release_source_sensor
from dagster_project.defs.update import STEP
from dagster_project.lib.inbox import PROCESSING, open_for_writing
from dagster_project.lib.ingest_log import read_lines
from dagster_project.lib.samples import generate
from dagster_project.lib.warehouse import plan_build, read_manifest
from dagster_project.paths import DataPaths
from tests.conftest import VENV_BIN, run_update

SPBE = str(VENV_BIN / "spbe")


def submission(institution: str = "73.17", level: int | None = None, drop_rows: int = 0) -> bytes:
    """A valid final-stage file for 2024 (levels as generated, or all set to ``level``); ``drop_rows`` leaves
    indicators out (an incomplete file: it still loads, with its coverage)."""
    doc = json.loads(generate([institution], years=(2024,), stages=("final",))[0].content)
    if level is not None:
        for row in doc["rows"]:
            row["level"] = level
    doc["rows"] = doc["rows"][: len(doc["rows"]) - drop_rows]
    return json.dumps(doc).encode()


def tick(instance, sensor=inbox_sensor, cursor=None, **resources):
    return sensor(dg.build_sensor_context(instance=instance, cursor=cursor,
                                          resources={"data_dir": DataDirResource(), **resources}))


def published_rows(paths: DataPaths, sql: str, params=()) -> list[tuple]:
    with duckdb.connect(str(paths.published_db), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def run_requested(instance, request):
    from dagster_project.definitions import defs
    from dagster_project.defs.update import JOB

    return defs().resolve_job_def(JOB).execute_in_process(instance=instance, run_config=request.run_config,
                                                         tags=request.tags)


# ---- the inbox ------------------------------------------------------------------------------------------------

def test_a_name_too_long_to_prefix_lands_beside_a_good_file(copy_of_built):
    """Defect 1: a claim renamed the file to <uuid>__<name>, past the 255-byte limit, and the batch failed for
    ever. Claims are now named by a random id; the name stays in the log."""
    paths = copy_of_built
    long_name = "laporan_" + "x" * 238 + ".json"  # 251 bytes: fits the file system, not with a prefix
    (paths.inbox / long_name).write_bytes(submission("73.17"))
    (paths.inbox / "good.json").write_bytes(submission("12.25"))
    with dg.DagsterInstance.ephemeral() as instance:
        (request,) = tick(instance).run_requests
        assert run_requested(instance, request).success
    lines = {line["original_name"]: line["status"] for line in read_lines(paths.ingest_log)}
    assert lines[long_name] == "loaded" and lines["good.json"] == "loaded"
    assert [p.name for p in paths.inbox.iterdir() if p.name != PROCESSING] == []
    assert published_rows(paths, "select count(*) from fct_ingest_log where original_name = ?", [long_name]) == [(1,)]


WRITER = """
import sys, time
rows = open(sys.argv[1], 'rb').read()
half = len(rows) // 2
with open(sys.argv[2], 'wb') as f:
    f.write(rows[:half]); f.flush()
    print('half', flush=True)
    time.sleep(float(sys.argv[3]))
    f.write(rows[half:])
"""


def test_a_file_still_being_written_is_not_taken_until_its_writer_is_done(data_dir, tmp_path):
    """Defect 2: a writer pausing longer than the settle time had its first 24 rows landed as the current
    revision, and the rest lost. A file open for writing is never taken, however long the pause."""
    source = tmp_path / "full.json"
    source.write_bytes(submission("73.17"))
    target = data_dir.inbox / "luwu.json"
    with dg.instance_for_test() as instance:
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(source), str(target), "10"],
                                  stdout=subprocess.PIPE, text=True)
        assert writer.stdout.readline().strip() == "half"
        time.sleep(1.5)  # the half file is older than the settle time: only the open writer tells
        assert open_for_writing(target) is True
        first = tick(instance)
        assert not first.run_requests and writer.poll() is None
        writer.wait(timeout=60)
        assert open_for_writing(target) is False
        (request,) = tick(instance, cursor=first.cursor).run_requests
        assert request.run_config["ops"][STEP]["config"]["inbox_files"] == ["luwu.json"]
    assert target.read_bytes() == source.read_bytes()  # what the run will claim is the whole file


def test_a_claim_gives_back_a_file_that_a_writer_opens_again(data_dir):
    from dagster_project.lib.inbox import claim_all

    target = data_dir.inbox / "again.csv"
    target.write_bytes(b"part one")
    with open(target, "ab") as writer:  # opened for writing between the sensor's look and the run's claim
        ((name, outcome),) = claim_all(data_dir.inbox, ["again.csv"])
        assert isinstance(outcome, BlockingIOError) and "open for writing" in str(outcome)
        writer.write(b", part two")
    assert target.read_bytes() == b"part one, part two"  # back under its name, untouched


def test_folders_fifos_links_and_abandoned_temporary_files_are_set_aside_and_logged(copy_of_built):
    """Defect 8: odd entries stayed in the inbox for ever with no log line, and a FIFO could hang a run."""
    paths = copy_of_built
    inbox = paths.inbox
    (inbox / "a folder").mkdir()
    os.mkfifo(inbox / "pipe.csv")  # opening it would block: it must never be opened
    (inbox / "link.json").symlink_to("/etc/passwd")
    stale = inbox / ".upload.json.part"
    stale.write_bytes(b"half")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    (inbox / ".fresh.json.part").write_bytes(b"being written")  # a young temporary name stays
    with dg.DagsterInstance.ephemeral() as instance:
        (request,) = tick(instance).run_requests
        assert sorted(request.run_config["ops"][STEP]["config"]["set_aside"]) == \
            [".upload.json.part", "a folder", "link.json", "pipe.csv"]
        result = run_requested(instance, request)
        assert result.success and instance.get_run_by_id(result.run_id).tags.get("quarantined") == "4"
    assert sorted(p.name for p in inbox.iterdir()) == [".fresh.json.part", PROCESSING]
    rejected = {line["original_name"]: line["reason"] for line in read_lines(paths.ingest_log)
                if line["status"] == "rejected"}
    assert set(rejected) == {".upload.json.part", "a folder", "link.json", "pipe.csv"}
    assert "a FIFO" in rejected["pipe.csv"] and "a symbolic link" in rejected["link.json"]
    assert len(list((paths.quarantine / "set_aside").glob("*.name"))) == 4
    assert published_rows(paths, "select count(*) from fct_ingest_log where status = 'rejected'") == [(4,)]


# ---- publishing exactly what was read ---------------------------------------------------------------------------

def test_a_refused_file_is_seen_at_once_in_plain_words_and_tagged_on_its_run(copy_of_built):
    paths = copy_of_built
    doc = json.loads(submission("73.17"))
    doc["rows"][4]["level"] = 9
    (paths.inbox / "luwu_bad.json").write_text(json.dumps(doc))
    with dg.DagsterInstance.ephemeral() as instance:
        result = run_update(instance, inbox_files=["luwu_bad.json"])
        tags = instance.get_run_by_id(result.run_id).tags
    assert tags["quarantined"] == "1" and tags["spbe/failed_check"] == "submissions_suite"
    ((reason,),) = published_rows(paths, "select reason from fct_ingest_log where original_name = 'luwu_bad.json'")
    assert reason == "luwu_bad.json: row 5, indicator 5: level 9; level is an integer 1-5"


def test_a_duplicate_starts_no_build_and_writes_no_snapshot(copy_of_built):
    paths = copy_of_built
    before = read_manifest(paths.published_manifest)
    snapshots = sorted(paths.snapshots.glob("*.duckdb"))
    landed = next(line for line in read_lines(paths.ingest_log) if line["dataset"] == "submissions")
    archived = next(paths.archive.glob(f"{landed['sha256']}.*"))
    shutil.copyfile(archived, paths.inbox / "again.json")
    with dg.DagsterInstance.ephemeral() as instance:
        result = run_update(instance, inbox_files=["again.json"])
        assert result.success
        built = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert built == {"submission_files", "ingest_log"}  # logged, nothing rebuilt or published
    assert read_manifest(paths.published_manifest) == before
    assert sorted(paths.snapshots.glob("*.duckdb")) == snapshots
    assert read_lines(paths.ingest_log)[-1]["status"] == "duplicate"


def test_an_incomplete_revision_never_replaces_a_complete_one(copy_of_built):
    """Defect 2's other half: coverage is only a warning, so half a file became the current revision."""
    paths = copy_of_built
    batch = {"complete.json": submission("73.17", level=3),
             "incomplete.json": submission("73.17", level=1, drop_rows=23),  # later, but half a file
             "first_of_12.25.json": submission("12.25", level=1, drop_rows=23)}  # no complete one yet: it counts
    for name, content in batch.items():
        (paths.inbox / name).write_bytes(content)
    with dg.DagsterInstance.ephemeral() as instance:
        assert run_update(instance, inbox_files=list(batch)).success
    effect = {line["original_name"]: line["takes_effect"] for line in read_lines(paths.ingest_log)
              if line["original_name"] in batch}
    assert effect == {"complete.json": True, "incomplete.json": False, "first_of_12.25.json": True}
    rows = published_rows(paths, "select original_name, coverage < 1, is_current from fct_submission_revisions "
                                 "where year = 2024 and stage = 'final' and institution_id in ('73.17', '12.25') "
                                 "order by institution_id desc, revision")
    assert rows == [("complete.json", False, True), ("incomplete.json", True, False),
                    ("first_of_12.25.json", True, True)]
    assert published_rows(paths, "select index_value from fct_index where source = 'computed' and "
                                 "institution_id = '73.17' and stage = 'final'") == [(3.0,)]


def test_a_partial_build_and_a_full_build_publish_identical_marts(copy_of_built):
    """The event path rebuilds only what a file affects; a full build of the same log must agree, mart by
    mart, row by row (checksums of every published table)."""
    paths = copy_of_built
    (paths.inbox / "luwu.json").write_bytes(submission("73.17", level=4))
    (paths.inbox / "bad.json").write_bytes(b"{}")
    with dg.DagsterInstance.ephemeral() as instance:
        assert run_update(instance, inbox_files=["luwu.json", "bad.json"]).success
        partial = read_manifest(paths.published_manifest)
        assert run_update(instance, full_build=True).success
        full = read_manifest(paths.published_manifest)
    assert partial["log_position"] == full["log_position"]
    assert partial["tables"] == full["tables"]


def test_samples_land_into_an_empty_warehouse_only(copy_of_built):
    """Defect 4: `spbe build --force` landed the bundled samples again over a real correction."""
    paths = copy_of_built
    (paths.inbox / "sumedang_fix.json").write_bytes(submission("32.11", level=1))
    with dg.DagsterInstance.ephemeral() as instance:
        assert run_update(instance, inbox_files=["sumedang_fix.json"]).success
        samples_before = sum(line["source"] == "sample" for line in read_lines(paths.ingest_log))
        assert samples_before == 11
        assert run_update(instance, changed_releases=True, samples="if_empty").success  # what `spbe build` asks
    assert sum(line["source"] == "sample" for line in read_lines(paths.ingest_log)) == samples_before
    assert published_rows(paths, "select original_name, index_value from fct_index join fct_submission_revisions "
                                 "using (institution_id, year, stage) where source = 'computed' and institution_id "
                                 "= '32.11' and year = 2024 and stage = 'final' and is_current") == \
        [("sumedang_fix.json", 1.0)]


# ---- two commands, killed commands ----------------------------------------------------------------------------

def spbe(*args, env=None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([SPBE, *args], env=env or os.environ.copy(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, **kwargs)


def wait_for_build_lock(paths: DataPaths, process: subprocess.Popen, timeout: float = 300) -> dict:
    """Until ``process`` holds the build lock; its holder record."""
    lock = paths.warehouse / ".build.lock"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"the command ended (exit {process.returncode}) before it built:\n{out}\n{err}")
        try:
            holder = json.loads(lock.read_text() or "null")
        except (OSError, ValueError):
            holder = None
        if holder:
            return holder
        time.sleep(0.1)
    raise AssertionError("no build took the lock")


def test_two_commands_at_once_each_report_their_own_files(copy_of_built, tmp_path):
    """Defect 7: each printed the other's files, and one exited 1 for the other's quarantined file. Both run
    with a plain PATH, the environment not activated: dbt runs in process, found beside the running Python
    (with `dagster dev` it once was "not found on PATH"; tests/test_entry_points.py)."""
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_bytes(submission("73.17", level=2))
    bad.write_bytes(b"not json")
    plain = {**os.environ, "PATH": "/usr/bin:/bin"}
    first, second = spbe("ingest", str(good), env=plain), spbe("ingest", str(bad), env=plain)
    out_good, err_good = first.communicate(timeout=600)
    out_bad, _ = second.communicate(timeout=600)
    assert first.returncode == 0, err_good
    assert second.returncode == 1
    assert "good.json: loaded" in out_good and "bad.json" not in out_good
    assert "bad.json: quarantined" in out_bad and "good.json" not in out_bad


def test_a_killed_build_neither_blocks_a_waiting_command_nor_loses_its_file(copy_of_built, tmp_path):
    """Defects 3 and 5: a command waiting on a killed run's pool slot waited for ever, and a file landed during
    another build was never published. The build lock dies with its holder, and the next build publishes
    everything after the published position."""
    paths = copy_of_built
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    first.write_bytes(submission("73.17", level=2))
    second.write_bytes(submission("12.25", level=4))
    killed = spbe("ingest", str(first))
    holder = wait_for_build_lock(paths, killed)
    waiting = spbe("ingest", str(second))
    time.sleep(3)  # the second command lands its file and waits for the lock
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    out, err = waiting.communicate(timeout=600)
    assert waiting.returncode == 0, err
    assert "second.json: loaded" in out
    published = published_rows(paths, "select original_name from fct_ingest_log where original_name in "
                                       "('first.json', 'second.json') order by 1")
    assert published == [("first.json",), ("second.json",)]  # the killed command's file was landed: published too
    assert read_manifest(paths.published_manifest)["run_id"] != holder["run_id"]


def test_a_claim_of_a_command_that_died_lands_with_the_next_command(copy_of_built, tmp_path, capsys):
    """Defect 6: `spbe ingest` killed after claiming left the file in .processing/ for ever without a daemon.
    Every entry point returns the claims of dead processes; `spbe build` (here in this process) lands what
    waits in the inbox."""
    paths = copy_of_built
    source = tmp_path / "orphan.json"
    source.write_bytes(submission("73.17", level=5))
    died = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                           "from dagster_project.lib.inbox import claim_copy; "
                           "claim_copy(Path(sys.argv[1]), Path(sys.argv[2]), 'orphan.json')",
                           str(paths.inbox), str(source)], check=True)
    assert died.returncode == 0 and list((paths.inbox / PROCESSING).rglob("*.name"))
    assert cli.main(["build"]) == 0
    assert "orphan.json: loaded" in capsys.readouterr().out
    assert not [p for p in (paths.inbox / PROCESSING).rglob("*") if p.is_file()]


# ---- nothing moves without new data ----------------------------------------------------------------------------

def test_starting_the_ui_after_a_build_launches_no_run(built_warehouse, monkeypatch):
    """Every sensor starts from an empty cursor when the UI starts: each must know what is already landed and
    published (it was: both releases landed again and a new snapshot was published)."""
    from dagster_project.defs.resources import ReleaseSourceResource
    from dagster_project.lib.sources import source_config_from_env

    paths = built_warehouse[0]
    monkeypatch.setenv("SPBE_DATA_DIR", str(paths.root))
    source = ReleaseSourceResource.from_config(source_config_from_env())
    with dg.instance_for_test() as instance:
        for result in (tick(instance), tick(instance, release_source_sensor, release_source=source),
                       tick(instance, reference_sensor)):
            assert isinstance(result, dg.SkipReason) or not result.run_requests
    assert plan_build(paths).mode == "none"


# ---- a data directory that moves (copied, or moved with mv) ----------------------------------------------------

def test_a_copied_then_moved_data_directory_publishes_what_lands_in_its_own_inbox(built_warehouse, tmp_path,
                                                                                  monkeypatch):
    """Issue "a data directory that can move": the views of the build database read the data directory
    through a relative path, so a copied or moved directory reads its own files. The copy gets a file
    through the sensor's own run request (as the daemon runs it, a partial rebuild); the same directory,
    then moved with `mv`, gets one through `spbe ingest`."""
    copied = DataPaths(tmp_path / "copied")
    shutil.copytree(built_warehouse[0].root, copied.root, symlinks=True)
    monkeypatch.setenv("SPBE_DATA_DIR", str(copied.root))
    (copied.inbox / "luwu_4.json").write_bytes(submission("73.17", level=4))
    with dg.DagsterInstance.ephemeral() as instance:
        (request,) = tick(instance).run_requests
        result = run_requested(instance, request)
        assert result.success
        built = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {"fct_ingest_log", "fct_index", "published_warehouse"} <= built and "fct_rankings" not in built
    assert published_rows(copied, "select status, is_current from fct_ingest_log where original_name = "
                                  "'luwu_4.json'") == [("loaded", True)]

    moved = DataPaths(tmp_path / "elsewhere" / "data")
    moved.root.parent.mkdir()
    shutil.move(copied.root, moved.root)
    monkeypatch.setenv("SPBE_DATA_DIR", str(moved.root))
    source = tmp_path / "luwu_5.json"
    source.write_bytes(submission("73.17", level=5))
    done = subprocess.run([SPBE, "ingest", str(source)], capture_output=True, text=True, env=os.environ.copy())
    assert done.returncode == 0, done.stderr
    assert published_rows(moved, "select original_name, is_current from fct_ingest_log where original_name like "
                                 "'luwu_%' order by seq") == [("luwu_4.json", False), ("luwu_5.json", True)]
    assert published_rows(moved, "select index_value from fct_index where source = 'computed' and "
                                 "institution_id = '73.17' and stage = 'final'") == [(5.0,)]
    assert read_manifest(moved.published_manifest)["data_dir"] == str(moved.root)
    doctor = subprocess.run([SPBE, "doctor"], capture_output=True, text=True, env=os.environ.copy())
    assert doctor.returncode == 0 and "all agree" in doctor.stdout, doctor.stdout


def test_a_view_that_reads_an_absolute_path_is_noticed_rebuilt_and_never_published(copy_of_built):
    from dagster_project.lib.warehouse import absolute_source_paths

    paths = copy_of_built
    with duckdb.connect(str(paths.build_db)) as con:  # as a build of the earlier design left it
        view = f"select * from read_json_auto('{paths.ingest_log}', format = 'newline_delimited')"  # noqa: S608
        con.execute("create or replace view staging.stg_state__ingest_log as " + view)
    assert absolute_source_paths(paths.build_db) == [f"staging.stg_state__ingest_log reads {paths.ingest_log}"]
    assert plan_build(paths).mode == "full"
    doctor = subprocess.run([SPBE, "doctor"], capture_output=True, text=True, env=os.environ.copy())
    assert doctor.returncode == 1 and "reads files by absolute path" in doctor.stdout
    with dg.DagsterInstance.ephemeral() as instance:
        assert run_update(instance).success  # the full build writes the view anew, relative
    assert absolute_source_paths(paths.build_db) == []


LANDER = """
import sys
from pathlib import Path
from dagster_project.lib.ingest import SUBMISSIONS, Arrival, land
from dagster_project.paths import DataPaths
paths = DataPaths(Path(sys.argv[1]))
print(land(paths, SUBMISSIONS, [Arrival(Path(sys.argv[2]), 'same.json')]).results[0].status)
"""


def test_two_landings_of_the_same_content_at_once_keep_its_rows_once(data_dir, tmp_path):
    """Two runs may land at once; the same bytes sent twice must not put their rows in the lake twice (the
    revision's levels would double and every build after would fail its uniqueness test)."""
    content = submission("73.17", level=2)
    copies = []
    for i in range(2):
        copies.append(tmp_path / f"copy{i}.json")
        copies[-1].write_bytes(content)
    landers = [subprocess.Popen([sys.executable, "-c", LANDER, str(data_dir.root), str(c)], stdout=subprocess.PIPE,
                                text=True) for c in copies]
    statuses = sorted(p.communicate(timeout=300)[0].strip() for p in landers)
    assert all(p.returncode == 0 for p in landers)
    assert statuses in (["duplicate", "loaded"], ["loaded", "loaded"])  # judged at once by both, or one after
    with duckdb.connect() as con:
        (rows,) = con.execute("select count(*) from read_parquet(?)",
                              [str(data_dir.lake / "submissions" / "*" / "*.parquet")]).fetchone()
    assert rows == 47


def test_a_build_database_left_by_other_code_is_rebuilt_whole(copy_of_built):
    """A full build that failed half way under other code (then changed back) left models of that code: the
    next build is full, whatever the published manifest says."""
    from dagster_project.lib.warehouse import code_fingerprint, mark_build

    mark_build(copy_of_built, code_fingerprint())
    assert plan_build(copy_of_built).mode == "none"
    mark_build(copy_of_built, "the fingerprint of other code")
    assert plan_build(copy_of_built).mode == "full"
