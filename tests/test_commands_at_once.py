"""Two `spbe` commands at once, and commands killed half way: each reports its own files, a killed build
blocks no one and loses no file, and the claims of a command that died land with the next one."""

import os
import signal
import subprocess
import sys
import time

from dagster_project import cli
from dagster_project.lib.inbox import PROCESSING
from dagster_project.lib.warehouse import read_manifest
from tests.events import published_rows, spbe, submission, wait_for_build_lock

# ---- two commands, killed commands ----------------------------------------------------------------------------


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
