"""The ingest log as the commit log: numbering, the current-file rule and what counts as new data."""

import json
import subprocess
import sys

from dagster_project.lib.ingest_log import IngestLog, read_lines


def line(sha: str, status: str = "loaded", coverage: float | None = 1.0, institution: str = "32.11") -> dict:
    return {"dataset": "submissions", "sha256": sha, "status": status, "year": 2024, "institution_id": institution,
            "stage": "final", "coverage": coverage}


def decided(log: IngestLog, *records: tuple[dict, bool]) -> list[tuple[str, bool, bool]]:
    return [(r["sha256"], r["takes_effect"], r["changes_data"]) for r in log.append(records)]


def test_the_latest_accepted_file_is_current_and_an_older_one_sent_again_becomes_current_again(tmp_path):
    log = IngestLog(tmp_path / "log.jsonl")
    assert decided(log, (line("a"), True), (line("b"), True)) == [("a", True, True), ("b", True, True)]
    # a: sent again, judged before (duplicate): it becomes current again, which changes what is published
    assert decided(log, (line("a", "duplicate"), False)) == [("a", True, True)]
    # a again: already current, nothing changes and no build is needed
    assert decided(log, (line("a", "duplicate"), False)) == [("a", True, False)]
    assert log.current_line(("submissions", 2024, "32.11", "final", None))["sha256"] == "a"


def test_an_incomplete_file_never_replaces_a_complete_one(tmp_path):
    log = IngestLog(tmp_path / "log.jsonl")
    assert decided(log, (line("half", coverage=0.5), True)) == [("half", True, True)]  # nothing complete yet
    assert decided(log, (line("whole"), True), (line("half2", coverage=0.5), True)) == \
        [("whole", True, True), ("half2", False, True)]  # loaded and kept, not current
    assert decided(log, (line("half", "duplicate", coverage=0.5), False)) == [("half", False, False)]
    assert log.current_line(("submissions", 2024, "32.11", "final", None))["sha256"] == "whole"


def test_refused_files_change_data_once_and_are_never_current(tmp_path):
    log = IngestLog(tmp_path / "log.jsonl")
    assert decided(log, (line("bad", "quarantined"), True)) == [("bad", False, True)]
    assert decided(log, (line("bad", "quarantined"), False)) == [("bad", False, False)]  # judged before
    assert log.current_line(("submissions", 2024, "32.11", "final", None)) is None


def test_lines_are_numbered_in_one_order_across_processes(tmp_path):
    path = tmp_path / "log.jsonl"
    writer = ("import sys; from pathlib import Path; from dagster_project.lib.ingest_log import IngestLog; "
              "log = IngestLog(Path(sys.argv[1])); "
              "[log.append([({'dataset': 'submissions', 'sha256': f'{sys.argv[2]}{i}', 'status': 'quarantined'}, "
              "True)]) for i in range(50)]")
    procs = [subprocess.Popen([sys.executable, "-c", writer, str(path), p]) for p in "xyz"]
    assert all(p.wait() == 0 for p in procs)
    seqs = [line["seq"] for line in read_lines(path)]
    assert sorted(seqs) == list(range(1, 151)) and seqs == sorted(seqs)  # written in the order numbered


def test_a_torn_line_of_a_killed_writer_is_skipped_and_closed_off(tmp_path):
    path = tmp_path / "log.jsonl"
    IngestLog(path).append([(line("a"), True)])
    with open(path, "ab") as f:
        f.write(b'{"seq": 2, "sha256": "to')  # killed in the middle of a write
    assert [r["sha256"] for r in read_lines(path)] == ["a"]
    assert [r["seq"] for r in IngestLog(path).append([(line("b"), True)])] == [2]
    assert [r["sha256"] for r in read_lines(path)] == ["a", "b"]


def test_lines_written_before_numbering_count_in_file_order(tmp_path):
    path = tmp_path / "log.jsonl"
    old = {"dataset": "submissions", "sha256": "old", "status": "loaded", "year": 2024, "institution_id": "32.11",
           "stage": "final"}  # no seq, no takes_effect: the earlier format
    path.write_text(json.dumps(old) + "\n")
    log = IngestLog(path)
    assert log.position() == 1
    assert decided(log, (line("old", "duplicate"), False)) == [("old", True, False)]  # already current
    assert [r.get("seq") for r in read_lines(path)] == [None, 2]
    assert [r["sha256"] for r in read_lines(path, after=0)] == ["old"]  # seq 2 only
