"""The event path: one exact way from a dropped file to published data.

Each defect found on the earlier design has its test here or beside it (long names, slow writers, a landing
during a build, demo samples landed again, odd inbox entries, a UI start that launched runs, the claims of a
command that died; two commands at once: test_ducklake.py; a killed command and one waiting for its build
lock: reliability/test_crash.py; a data directory that moves: test_moving_data_dir.py), with the
rules that replaced it: the ingest log is the commit log, a build publishes exactly the log position it
read, and nothing moves without new data.
"""

import json
import os
import shutil
import subprocess
import sys
import time

import dagster as dg
import duckdb

from dagster_project import cli
from dagster_project.defs.sensors import reference_sensor, release_source_sensor
from dagster_project.defs.update import STEP
from dagster_project.lib.inbox import PROCESSING, open_for_writing
from dagster_project.lib.ingest_log import read_lines
from dagster_project.lib.warehouse import absolute_source_paths, plan_build, read_manifest
from tests.conftest import run_update
from tests.events import published_rows, run_requested, submission, tick

# ---- the inbox ------------------------------------------------------------------------------------------------

def test_a_long_name_a_correction_and_a_dead_commands_claim_land_together_and_no_sample_comes_back(
        copy_of_built, tmp_path, capsys):
    """Defect 1: a claim renamed the file to <uuid>__<name>, past the 255-byte limit, and the batch failed for
    ever; claims are now named by a random id, and the name stays in the log. Defect 6: `spbe ingest` killed
    after claiming left the file in .processing/ for ever without a daemon; every entry point returns the
    claims of dead processes, and `spbe build` (here in this process) lands them with what waits in the inbox.
    Defect 4: `spbe build` landed the bundled samples again over a real correction; they land into an empty
    warehouse only."""
    paths = copy_of_built
    samples_before = sum(line["source"] == "sample" for line in read_lines(paths.ingest_log))
    assert samples_before == 11
    (paths.inbox / "sumedang_fix.json").write_bytes(submission("32.11", level=1))  # a correction of a sample
    long_name = "laporan_" + "x" * 238 + ".json"  # 251 bytes: fits the file system, not with a prefix
    (paths.inbox / long_name).write_bytes(submission("73.17"))
    (paths.inbox / "good.json").write_bytes(submission("12.25"))
    orphan = tmp_path / "orphan.json"
    orphan.write_bytes(submission("35.01", level=5))
    died = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                           "from dagster_project.lib.inbox import claim_copy; "
                           "claim_copy(Path(sys.argv[1]), Path(sys.argv[2]), 'orphan.json')",
                           str(paths.inbox), str(orphan)], check=True)
    assert died.returncode == 0 and list((paths.inbox / PROCESSING).rglob("*.name"))

    assert cli.main(["build"]) == 0
    out = capsys.readouterr().out
    assert all(f"{name}: loaded" in out for name in (long_name, "good.json", "orphan.json", "sumedang_fix.json")), out
    lines = {line["original_name"]: line["status"] for line in read_lines(paths.ingest_log)}
    assert lines[long_name] == lines["good.json"] == lines["orphan.json"] == lines["sumedang_fix.json"] == "loaded"
    assert [p.name for p in paths.inbox.iterdir() if p.name != PROCESSING] == []
    assert not [p for p in (paths.inbox / PROCESSING).rglob("*") if p.is_file()]
    assert published_rows(paths, "select count(*) from fct_ingest_log where original_name = ?", [long_name]) == [(1,)]
    assert sum(line["source"] == "sample" for line in read_lines(paths.ingest_log)) == samples_before
    assert published_rows(paths, "select original_name, index_value from fct_index join fct_submission_revisions "
                                 "using (institution_id, year, stage) where source = 'computed' and institution_id "
                                 "= '32.11' and year = 2024 and stage = 'final' and is_current") == \
        [("sumedang_fix.json", 1.0)]


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


def test_odd_entries_are_set_aside_and_a_refused_file_is_seen_at_once_in_plain_words(copy_of_built):
    """Defect 8: odd entries (folders, FIFOs, links, abandoned temporary files) stayed in the inbox for ever
    with no log line, and a FIFO could hang a run. A refused file beside them: its run is tagged with what
    was refused and which check failed, and the published log says why in plain words, row and rule."""
    paths = copy_of_built
    inbox = paths.inbox
    (inbox / "a folder").mkdir()
    os.mkfifo(inbox / "pipe.csv")  # opening it would block: it must never be opened
    (inbox / "link.json").symlink_to("/etc/passwd")
    stale = inbox / ".upload.json.part"
    stale.write_bytes(b"half")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    (inbox / ".fresh.json.part").write_bytes(b"being written")  # a young temporary name stays
    doc = json.loads(submission("73.17"))
    doc["rows"][4]["level"] = 9
    (inbox / "luwu_bad.json").write_text(json.dumps(doc))
    with dg.DagsterInstance.ephemeral() as instance:
        (request,) = tick(instance).run_requests
        assert sorted(request.run_config["ops"][STEP]["config"]["set_aside"]) == \
            [".upload.json.part", "a folder", "link.json", "pipe.csv"]
        result = run_requested(instance, request)
        tags = instance.get_run_by_id(result.run_id).tags
    assert result.success and tags["quarantined"] == "5" and tags["spbe/failed_check"] == "submissions_suite"
    assert sorted(p.name for p in inbox.iterdir()) == [".fresh.json.part", PROCESSING]
    rejected = {line["original_name"]: line["reason"] for line in read_lines(paths.ingest_log)
                if line["status"] == "rejected"}
    assert set(rejected) == {".upload.json.part", "a folder", "link.json", "pipe.csv"}
    assert "a FIFO" in rejected["pipe.csv"] and "a symbolic link" in rejected["link.json"]
    assert len(list((paths.quarantine / "set_aside").glob("*.name"))) == 4
    assert published_rows(paths, "select count(*) from fct_ingest_log where status = 'rejected'") == [(4,)]
    ((reason,),) = published_rows(paths, "select reason from fct_ingest_log where original_name = 'luwu_bad.json'")
    assert reason == "luwu_bad.json: row 5, indicator 5: level 9; level is an integer 1-5"


# ---- publishing exactly what was read ---------------------------------------------------------------------------

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


def test_an_incomplete_revision_stays_aside_and_a_full_rebuild_forced_by_an_absolute_path_agrees(
        copy_of_built, monkeypatch, capsys):
    """Defect 2's other half: coverage is only a warning, so half a file became the current revision. The event
    path rebuilds only what a batch affects: a full build of the same log must agree, mart by mart, row by row
    (checksums of every published table). The full build here is one the plan asks for itself: a view of the
    build database reads a file by absolute path (as a build of the earlier design left it, and as a data
    directory moved elsewhere would then read another directory's file); `spbe doctor` says so, and the full
    build writes the view anew, relative."""
    paths = copy_of_built
    batch = {"complete.json": submission("73.17", level=3),
             "incomplete.json": submission("73.17", level=1, drop_rows=23),  # later, but half a file
             "first_of_12.25.json": submission("12.25", level=1, drop_rows=23)}  # no complete one yet: it counts
    for name, content in batch.items():
        (paths.inbox / name).write_bytes(content)
    (paths.inbox / "bad.json").write_bytes(b"{}")
    with dg.DagsterInstance.ephemeral() as instance:
        assert run_update(instance, inbox_files=[*batch, "bad.json"]).success
        partial = read_manifest(paths.published_manifest)
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

        with duckdb.connect(str(paths.build_db)) as con:
            view = f"select * from read_json_auto('{paths.ingest_log}', format = 'newline_delimited')"  # noqa: S608
            con.execute("create or replace view staging.stg_state__ingest_log as " + view)
        assert absolute_source_paths(paths.build_db) == [f"staging.stg_state__ingest_log reads {paths.ingest_log}"]
        assert plan_build(paths).mode == "full"
        monkeypatch.setenv("PATH", os.environ["PATH"])  # restored after: the command puts the venv first
        assert cli.main(["doctor"]) == 1
        assert "reads files by absolute path" in capsys.readouterr().out
        assert run_update(instance).success  # no event: the plan's full build
        full = read_manifest(paths.published_manifest)
    assert absolute_source_paths(paths.build_db) == []
    assert partial["log_position"] == full["log_position"]
    assert partial["tables"] == full["tables"]


# ---- nothing moves without new data ----------------------------------------------------------------------------

def test_starting_the_ui_after_a_build_launches_no_run(copy_of_built):
    """Every sensor starts from an empty cursor when the UI starts: each must know what is already landed and
    published (it was: both releases landed again and a new snapshot was published)."""
    from dagster_project.defs.resources import ReleaseSourceResource
    from dagster_project.lib.sources import source_config_from_env

    paths = copy_of_built  # the sensors return claims of dead processes: they write
    source = ReleaseSourceResource.from_config(source_config_from_env())
    with dg.instance_for_test() as instance:
        for result in (tick(instance), tick(instance, release_source_sensor, release_source=source),
                       tick(instance, reference_sensor)):
            assert isinstance(result, dg.SkipReason) or not result.run_requests
    assert plan_build(paths).mode == "none"


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
