"""Storage bounded: a refused file is kept once, the archive and the quarantine stay within their caps by
evicting refused files only (oldest first, recorded), and a file that does not fit is not taken and loses
nothing. Real files, real landings; no build."""

import json
import multiprocessing
import os
import re
import stat

import dagster as dg
import pytest

from dagster_project import cli
from dagster_project.lib import ingest
from dagster_project.lib.ingest import SUBMISSIONS, Arrival, land_release
from dagster_project.lib.ingest_log import read_lines
from dagster_project.lib.samples import generate
from dagster_project.lib.sources import ReleaseEntry, SourceConfig
from dagster_project.lib.storage_caps import (
    ARCHIVE_CAP_ENV,
    EVICTED_LOG,
    QUARANTINE_CAP_ENV,
    Kept,
    human_bytes,
    parse_bytes,
    plan_eviction,
)
from dagster_project.lib.submissions import MAX_FILE_BYTES
from dagster_project.paths import BUNDLED_RELEASES_DIR, DataPaths


def submission(institution: str, level: int | None = None, pad_to: int = 0) -> bytes:
    """A final-stage 2024 file (level 9 makes it refused), padded with spaces to ``pad_to`` bytes."""
    doc = json.loads(generate([institution], years=(2024,), stages=("final",))[0].content)
    if level is not None:
        doc["rows"][0]["level"] = level
    content = json.dumps(doc).encode()
    assert len(content) <= pad_to or not pad_to
    return content + b" " * max(0, pad_to - len(content))


def write(folder, name: str, content: bytes):
    path = folder / name
    path.write_bytes(content)
    return path


def land(paths: DataPaths, *files, run_id: str = ""):
    return ingest.land(paths, SUBMISSIONS, [Arrival(f, f.name) for f in files], run_id=run_id)


def kept_bytes(paths: DataPaths) -> int:
    """The bytes received files take on disk: archive and quarantine, each file (inode) counted once."""
    inodes = {}
    for folder in (paths.archive, paths.quarantine):
        for p in folder.iterdir():
            if re.fullmatch(r"[0-9a-f]{64}\.(csv|json|xlsx|bin)", p.name) and not p.is_symlink():
                inodes[p.stat().st_ino] = p.stat().st_size
    return sum(inodes.values())


def archive_bytes(paths: DataPaths) -> int:
    return sum(p.stat().st_size for p in paths.archive.iterdir() if not p.name.startswith("."))


def test_sizes_and_the_eviction_plan():
    assert parse_bytes("X", None) is None and parse_bytes("X", " ") is None
    assert [parse_bytes("X", v) for v in ("2000000000", "2GB", "2 gb", "500M", "1.5kB", "0")] == \
        [2_000_000_000, 2_000_000_000, 2_000_000_000, 500_000_000, 1500, 0]
    with pytest.raises(ValueError, match="X must be a size in bytes"):
        parse_bytes("X", "two gigabytes")
    assert (human_bytes(2_000_000_000), human_bytes(1_234_567), human_bytes(999)) == ("2 GB", "1.23 MB", "999 bytes")
    old, mid, new = Kept("a.csv", 5), Kept("b.csv", 5), Kept("c.csv", 5)
    assert plan_eviction([old, mid, new], free=10, need=10) == []  # fits already: nothing evicted
    assert plan_eviction([old, mid, new], free=2, need=10) == [old, mid]  # oldest first, no more than needed
    assert plan_eviction([old, mid, new], free=-6, need=10) is None  # not even all of them: evict none


def test_a_refused_file_is_kept_once_and_read_only(data_dir, tmp_path):
    """The quarantine names the archived bytes (a hard link), for a file refused for its size, a file refused
    for its rows, and a refused release."""
    oversize = write(tmp_path, "huge.csv", b"a," * (MAX_FILE_BYTES // 2 + 1))
    bad = write(tmp_path, "bad.json", submission("73.17", level=9))
    big, wrong = land(data_dir, oversize, bad).results
    real = (BUNDLED_RELEASES_DIR / "spbe_results_2024.csv").read_text(encoding="utf-8")
    source = tmp_path / "source"
    source.mkdir()
    write(source, "r2024.csv", real.replace("Kementerian Pertanian", "Kementerian Fiktif", 1).encode())
    release = land_release(SourceConfig(kind="local", location=str(source)), ReleaseEntry(2024, "r2024.csv"), data_dir)

    assert (big.status, wrong.status, release.status) == ("quarantined",) * 3
    for result, ext, original in ((big, "csv", oversize), (wrong, "json", bad), (release, "csv", source / "r2024.csv")):
        archived = data_dir.archive / f"{result.sha256}.{ext}"
        quarantined = data_dir.quarantine / f"{result.sha256}.{ext}"
        assert os.path.samefile(archived, quarantined) and archived.stat().st_nlink == 2
        assert quarantined.read_bytes() == original.read_bytes()
        assert stat.S_IMODE(quarantined.stat().st_mode) == 0o444  # nobody edits the archive through it
        assert (data_dir.quarantine / f"{result.sha256}.report.json").exists()
    received = sum(f.stat().st_size for f in (oversize, bad, source / "r2024.csv"))
    assert kept_bytes(data_dir) == received  # once, not twice


def test_refused_files_are_evicted_oldest_first_to_keep_the_quarantine_cap(data_dir, tmp_path, monkeypatch):
    size = 20_000
    good = write(tmp_path, "good.json", submission("35.01", pad_to=size))
    bad = [write(tmp_path, f"bad{i}.json", submission(code, level=9, pad_to=size))
           for i, code in enumerate(("73.17", "12.25", "11"), start=1)]
    monkeypatch.setenv(QUARANTINE_CAP_ENV, str(2 * size))  # room for two refused files
    land(data_dir, good, run_id="r0")
    shas = [land(data_dir, f, run_id=f"r{i}").results[0].sha256 for i, f in enumerate(bad, start=1)]

    def held() -> list[bool]:
        return [(data_dir.archive / f"{s}.json").exists() for s in shas]

    assert held() == [False, True, True]  # the oldest refused file made room for the third
    assert not (data_dir.quarantine / f"{shas[0]}.json").exists()  # under both names: the bytes are gone
    assert (data_dir.quarantine / f"{shas[0]}.report.json").exists()  # the verdict stays
    (record,) = [json.loads(line) for line in (data_dir.quarantine / EVICTED_LOG).read_text().splitlines()]
    assert (record["sha256"], record["original_name"], record["run_id"], record["setting"]) == \
        (shas[0], "bad1.json", "r3", QUARANTINE_CAP_ENV)
    assert "bad1.json (20 kB, refused) evicted to keep refused files within 40 kB" in record["why"]
    # The ingest log keeps one line per arrival: an eviction is not an arrival.
    assert [line["status"] for line in read_lines(data_dir.ingest_log)] == ["loaded"] + ["quarantined"] * 3

    again = land(data_dir, bad[0], run_id="r4").results[0]  # sent again: the newest refusal now
    assert again.status == "quarantined"
    assert held() == [True, False, True]  # bad2 is now the oldest refused file
    assert os.path.samefile(data_dir.archive / f"{shas[0]}.json", data_dir.quarantine / f"{shas[0]}.json")
    good_sha = read_lines(data_dir.ingest_log)[0]["sha256"]
    assert (data_dir.archive / f"{good_sha}.json").read_bytes() == good.read_bytes()  # accepted: never evicted


def test_refused_files_make_room_for_a_new_file_under_the_archive_cap(data_dir, tmp_path, monkeypatch):
    size = 20_000
    first, second = (write(tmp_path, f"{c}.json", submission(c, pad_to=size)) for c in ("35.01", "35.02"))
    bad = write(tmp_path, "bad.json", submission("73.17", level=9, pad_to=size))
    monkeypatch.setenv(ARCHIVE_CAP_ENV, str(2 * size + 100))
    assert [r.status for r in land(data_dir, first, bad).results] == ["loaded", "quarantined"]

    (result,) = land(data_dir, second, run_id="later").results
    assert result.status == "loaded"
    assert sorted(p.read_bytes() for p in data_dir.archive.iterdir() if not p.name.startswith(".")) == \
        sorted([first.read_bytes(), second.read_bytes()])
    (record,) = [json.loads(line) for line in (data_dir.quarantine / EVICTED_LOG).read_text().splitlines()]
    assert (record["original_name"], record["setting"], record["run_id"]) == ("bad.json", ARCHIVE_CAP_ENV, "later")
    assert archive_bytes(data_dir) <= 2 * size + 100


def test_when_accepted_files_fill_the_archive_a_new_file_is_not_taken_and_waits_in_the_inbox(
        data_dir, tmp_path, monkeypatch, capsys):
    """Through `spbe ingest`: the file that does not fit is refused with the cap and what to do, in the ingest
    log, the run log and the command's output; it waits in the inbox whole; the good file beside it that fits
    lands, and so does a copy of bytes already kept (it needs no room)."""
    kept = write(tmp_path, "kept.json", submission("35.01"))
    land(data_dir, kept)
    small = write(tmp_path, "small.json", submission("35.02"))
    large = write(tmp_path, "large.json", submission("73.17", pad_to=200_000))
    again = write(tmp_path, "kept_again.json", kept.read_bytes())
    accepted = archive_bytes(data_dir)
    cap = accepted + small.stat().st_size + 1000
    monkeypatch.setenv(ARCHIVE_CAP_ENV, str(cap))

    assert cli.main(["ingest", str(large), str(small), str(again), "--no-build"]) == 1
    out = capsys.readouterr().out
    lines = {line["original_name"]: line for line in read_lines(data_dir.ingest_log)[1:]}
    assert {n: line["status"] for n, line in lines.items()} == \
        {"large.json": "rejected", "small.json": "loaded", "kept_again.json": "duplicate"}
    reason = lines["large.json"]["reason"]
    assert reason == (f"large.json: not taken, archive full: {human_bytes(accepted)} of the {human_bytes(cap)} cap "
                      f"({ARCHIVE_CAP_ENV}) holds accepted files, which are never evicted, and "
                      f"{human_bytes(large.stat().st_size)} more does not fit; raise the cap; it waits in the inbox")
    assert f"large.json: rejected, 0 rows - {reason}" in out
    assert (data_dir.inbox / "large.json").read_bytes() == large.read_bytes()  # nothing lost
    assert archive_bytes(data_dir) <= cap and not (data_dir.quarantine / EVICTED_LOG).exists()
    with dg.DagsterInstance.get() as instance:
        messages = [e.user_message for e in instance.all_logs(lines["large.json"]["run_id"])]
    assert any("not landed: large.json (StorageFull: archive full" in m for m in messages)

    # The inbox sensor offers it again: refused again, but logged once, so that no build or publish follows
    before = read_lines(data_dir.ingest_log)
    outcome = land(data_dir, data_dir.inbox / "large.json", run_id="retry")
    assert [(r.status, r.changes_data) for r in outcome.results] == [("rejected", False)]
    assert outcome.results[0].reason.startswith("large.json: not taken, archive full: ")
    assert read_lines(data_dir.ingest_log) == before and (data_dir.inbox / "large.json").exists()


def test_a_release_that_does_not_fit_is_not_taken_and_not_kept(data_dir, tmp_path, monkeypatch):
    """As an inbox file: refused with the reason in the log once, nothing archived; it waits at its source."""
    source = tmp_path / "source"
    source.mkdir()
    (source / "r2024.csv").write_bytes((BUNDLED_RELEASES_DIR / "spbe_results_2024.csv").read_bytes())
    monkeypatch.setenv(ARCHIVE_CAP_ENV, "10kB")
    cfg, entry = SourceConfig(kind="local", location=str(source)), ReleaseEntry(2024, "r2024.csv")
    refused = land_release(cfg, entry, data_dir)
    again = land_release(cfg, entry, data_dir)

    assert (refused.status, again.status, refused.year) == ("rejected", "rejected", 2024)
    assert refused.reason.startswith("r2024.csv: not taken, archive full: 0 bytes of the 10 kB cap")
    assert refused.reason.endswith("; it waits at its source")
    assert archive_bytes(data_dir) == 0 and list(data_dir.archive.iterdir()) == [data_dir.archive / ".lock"]
    assert [(line["dataset"], line["status"]) for line in read_lines(data_dir.ingest_log)] == [
        ("official_results", "rejected")]  # logged once while it lasts


def _land_at_once(paths: DataPaths, path, start, statuses) -> None:
    start.wait()  # both processes hold everything imported: their landings overlap
    statuses.put(land(paths, path).results[0].status)


def test_two_landings_at_once_never_both_take_the_last_free_bytes(data_dir, tmp_path, monkeypatch):
    size = 20_000
    files = [write(tmp_path, f"{c}.json", submission(c, pad_to=size)) for c in ("35.01", "35.02")]
    monkeypatch.setenv(ARCHIVE_CAP_ENV, str(size + size // 2))  # room for one of them
    land(data_dir)  # imports everything before the fork
    fork = multiprocessing.get_context("fork")  # as the warm worker runs every run
    start, statuses = fork.Barrier(2), fork.Queue()
    landers = [fork.Process(target=_land_at_once, args=(data_dir, f, start, statuses)) for f in files]
    for p in landers:
        p.start()
    for p in landers:
        p.join(timeout=120)
    assert [p.exitcode for p in landers] == [0, 0]
    assert sorted(statuses.get(timeout=5) for _ in landers) == ["loaded", "rejected"]
    assert archive_bytes(data_dir) == size
