"""Regional submissions end to end: the inbox sensor, landing batches, quarantine, revisions, the marts."""

import json
import os
import shutil
import subprocess
import sys
import time

import dagster as dg
import duckdb
import pytest

from dagster_project import cli
from dagster_project.defs.resources import DataDirResource
from dagster_project.defs.sensors import inbox_sensor
from dagster_project.defs.update import STEP, SUBMISSIONS_SUITE
from dagster_project.lib.inbox import claim_all, inbox_path, look, readable_name, return_orphans
from dagster_project.lib.samples import bundled_samples, generate, published_domains
from dagster_project.paths import BUNDLED_DATA_DIR, DataPaths
from tests.conftest import land_files

SAMPLES = BUNDLED_DATA_DIR / "samples"


def land_one(paths: DataPaths, path, name: str):
    from dagster_project.lib.ingest import SUBMISSIONS, Arrival, land

    return land(paths, SUBMISSIONS, [Arrival(path, name)]).results[0]


def files_of(request) -> list[str]:
    return request.run_config["ops"][STEP]["config"]["inbox_files"]


def drop(inbox, name: str, content: bytes, age: float = 60) -> None:
    path = inbox / name
    path.write_bytes(content)
    past = time.time() - age
    os.utime(path, (past, past))


def tick(instance, cursor=None):
    return inbox_sensor(dg.build_sensor_context(instance=instance, cursor=cursor), data_dir=DataDirResource())


def test_sensor_batches_new_files_and_asks_again_only_when_a_file_changes(data_dir):
    inbox = data_dir.inbox
    drop(inbox, "a.json", b'{"rows": []}')
    drop(inbox, "b.csv", b"x")
    drop(inbox, ".b.csv.swp", b"x")  # a temporary name: left alone while it may still be written
    drop(inbox, "c.csv.part", b"x")
    with dg.instance_for_test() as instance:
        first = tick(instance)
        (request,) = first.run_requests
        assert files_of(request) == ["a.json", "b.csv"]
        again = tick(instance, first.cursor)
        assert not again.run_requests and "no new settled file" in again.skip_reason.skip_message
        drop(inbox, "b.csv", b"new content, same name")
        (changed,) = tick(instance, again.cursor).run_requests
        assert files_of(changed) == ["b.csv"]
        assert changed.run_key != request.run_key


@pytest.mark.parametrize("name", ["../escape.csv", "/etc/passwd", ".env", "a/b.csv", "..", "x\x00.csv"])
def test_names_from_outside_never_become_paths(data_dir, name):
    with pytest.raises(ValueError):
        inbox_path(data_dir.inbox, name)


def test_a_look_sees_files_temporary_names_and_odd_entries_without_opening_them(data_dir):
    drop(data_dir.inbox, "s.json", b"abc")
    drop(data_dir.inbox, "t.json.tmp", b"abc")
    (data_dir.inbox / "folder").mkdir()
    seen = look(data_dir.inbox)
    assert (list(seen.files), seen.files["s.json"].size) == (["s.json"], 3)
    assert list(seen.temporary) == ["t.json.tmp"] and seen.odd == {"folder": "a directory"}


def test_generator_is_deterministic_and_reproduces_the_published_indices():
    assert [f.content for f in generate(["32.11"], years=(2024,))] == \
        [f.content for f in generate(["32.11"], years=(2024,))]
    assert {f.name: f.content for f in bundled_samples()} == \
        {p.name: p.read_bytes() for p in SAMPLES.glob("*.json")}
    published = published_domains((2024,)).set_index("institution_id")
    for f in generate(years=(2024,), stages=("final",)):
        doc = json.loads(f.content)
        assert doc["meta"]["synthetic"] is True
        inst = doc["rows"][0]["institution_code"]
        domains = published.loc[inst, ["policy_index", "governance_index", "management_index", "services_index"]]
        if (domains < 1).any():
            continue  # a published domain under 1 cannot be reached with levels 1-5
        from dagster_project.lib.framework import FRAMEWORK_2020, indicators
        weights = {i.number: i.weight_pct for i in indicators(FRAMEWORK_2020)}
        computed = sum(r["level"] * weights[r["indicator"]] for r in doc["rows"]) / 100
        assert abs(computed - doc["meta"]["reproduces"]["official_index"]) <= 0.03, inst


def test_a_batch_with_one_bad_file_lands_the_good_ones(built_warehouse, tmp_path, monkeypatch):
    paths = DataPaths(tmp_path / "data")
    shutil.copytree(built_warehouse[0].root, paths.root)
    monkeypatch.setenv("SPBE_DATA_DIR", str(paths.root))
    good = [f for f in generate(["73.17", "12.25"], years=(2024,), stages=("final",))]
    bad = json.loads(good[0].content)
    bad["rows"][3]["level"] = 6
    files = []
    for name, content in [(good[0].name, good[0].content), (good[1].name, good[1].content),
                          ("bad_level.json", json.dumps(bad).encode())]:
        (tmp_path / name).write_bytes(content)
        files.append(tmp_path / name)
    with dg.DagsterInstance.ephemeral() as instance:
        result = land_files(instance, files)
    (check,) = [c for c in result.get_asset_check_evaluations() if c.check_name == SUBMISSIONS_SUITE]
    assert not check.passed and "bad_level.json" in check.description
    failing = check.metadata["failing_rows"].value
    assert failing[0]["column"] == "level" and failing[0]["file"] == "bad_level.json"
    assert [p for p in paths.inbox.rglob("*") if p.is_file()] == []  # all archived, so all left the inbox
    # The 11 bundled samples landed by an earlier batch, the 2 good files by this one: one lake file each.
    assert len(list(paths.lake.glob("submissions/year=2024/*.parquet"))) == 2
    with duckdb.connect() as con:
        assert con.execute("select count(distinct source_sha256) from read_parquet(?)",
                           [str(paths.lake / "submissions/year=2024/*.parquet")]).fetchone() == (11 + 2,)
    assert len(list(paths.quarantine.glob("*.report.json"))) == 1


def test_spbe_ingest_updates_the_published_marts(built_warehouse, tmp_path, monkeypatch, capsys):
    paths = DataPaths(tmp_path / "data")
    shutil.copytree(built_warehouse[0].root, paths.root)
    monkeypatch.setenv("SPBE_DATA_DIR", str(paths.root))
    first, = generate(["35.01"], years=(2024,), stages=("final",))
    revised = json.loads(first.content)
    for r in revised["rows"]:
        r["level"] = 5  # a corrected file: same institution, year and stage, new content
    late = json.loads(generate(["35.01"], years=(2024,), stages=("self_assessment",))[0].content)
    for r in late["rows"]:
        r["submitted_at"] = "2024-08-15T10:00:00+07:00"  # the self-assessment window closed 2024-07-31
    (tmp_path / "pacitan.json").write_bytes(first.content)
    (tmp_path / "pacitan_v2.json").write_text(json.dumps(revised))
    (tmp_path / "pacitan_self.json").write_text(json.dumps(late))
    (tmp_path / "broken.xlsx").write_bytes(b"not a workbook")

    # Landed only (the next command builds and publishes it): a build here would add nothing this test checks.
    assert cli.main(["ingest", "--no-build", str(tmp_path / "pacitan.json"), str(tmp_path / "broken.xlsx")]) == 1
    out = capsys.readouterr().out
    assert "pacitan.json: loaded, 47 rows" in out and "broken.xlsx: quarantined" in out
    # Work units' (OPD) own self-assessments of the same institution land in the same batch.
    units = {"DISKOMINFO": 4, "BAPPEDA": 2, "DINKES": 3}
    for unit, level in units.items():
        rows = [{**r, "kode_opd": unit, "level": level} for r in late["rows"]]  # the Indonesian header works too
        (tmp_path / f"opd_{unit}.json").write_text(json.dumps({**late, "rows": rows}))
    assert cli.main(["ingest", str(tmp_path / "pacitan_v2.json"), str(tmp_path / "pacitan_self.json"),
                     *(str(tmp_path / f"opd_{unit}.json") for unit in units)]) == 0

    with duckdb.connect(str(paths.published_db), read_only=True) as con:
        revisions = con.execute("select revision, is_current, original_name from fct_submission_revisions "
                                "where institution_id = '35.01' and stage = 'final' order by revision").fetchall()
        assert revisions == [(1, False, "pacitan.json"), (2, True, "pacitan_v2.json")]
        ((index, stage),) = con.execute("select index_value, stage from fct_index where source = 'computed' "
                                        "and institution_id = '35.01' and stage = 'final'").fetchall()
        assert (index, stage) == (5.0, "final")
        levels = con.execute("select count(*) filter (where is_current), count(*) from fct_indicator_levels "
                             "where institution_id = '35.01' and stage = 'final'").fetchall()
        assert levels == [(47, 94)]  # the first revision stays queryable
        ranked = con.execute("select work_unit, index_value, rank_in_institution, n_work_units, official_index = "
                             "(select index_value from fct_index where source = 'official' and institution_id = "
                             "'35.01' and year = 2024) from fct_work_unit_index order by rank_in_institution"
                             ).fetchall()
        assert ranked == [("DISKOMINFO", 4.0, 1, 3, True), ("DINKES", 3.0, 2, 3, True), ("BAPPEDA", 2.0, 3, 3, True)]
        assert con.execute("select count(*) from fct_submission_revisions where original_name like 'opd_%'"
                           ).fetchone() == (0,)  # never the institution's own submission
        assert con.execute("select is_late from fct_submission_revisions where institution_id = '35.01' "
                           "and stage = 'self_assessment'").fetchall() == [(True,)]
        gap = con.execute("select count(*), max(over_claim) from fct_verification_gap "
                          "where institution_id = '35.01'").fetchall()
        assert gap[0][0] == 47 and gap[0][1] <= 0  # everything was raised to 5 at the final stage
        quarantined = con.execute("select original_name, reason from fct_ingest_log where status = 'quarantined'")
        ((name, reason),) = quarantined.fetchall()
        assert name == "broken.xlsx" and reason.startswith("broken.xlsx: ") and "xlsx_is_zip" in reason


def test_a_claimed_file_leaves_a_newer_upload_with_the_same_name_alone(data_dir):
    drop(data_dir.inbox, "sumedang.csv", b"version 1")
    ((_, claimed),) = claim_all(data_dir.inbox, ["sumedang.csv"])
    drop(data_dir.inbox, "sumedang.csv", b"version 2")  # the sync job writes again while the run works
    assert claimed.path.read_bytes() == b"version 1" and claimed.original_name == "sumedang.csv"
    assert look(data_dir.inbox).files["sumedang.csv"].size == len(b"version 2")


def test_the_same_bytes_under_a_supported_type_get_their_own_verdict(data_dir, tmp_path):
    content = next(f.content for f in generate(["32.11"], years=(2024,), stages=("final",), fmt="csv"))
    (tmp_path / "laporan.txt").write_bytes(content)
    (tmp_path / "laporan.csv").write_bytes(content)
    assert land_one(data_dir, tmp_path / "laporan.txt", "laporan.txt").status == "quarantined"
    assert land_one(data_dir, tmp_path / "laporan.csv", "laporan.csv").status == "loaded"


def test_odd_but_legal_names_are_landed(data_dir, tmp_path):
    content = next(f.content for f in generate(["32.11"], years=(2024,), stages=("final",)))
    drop(data_dir.inbox, "a\\laporan.json", content)
    raw = os.fsencode(str(data_dir.inbox)) + b"/laporan_\xe9.json"
    with open(raw, "wb") as f:
        f.write(b"{}")
    names = sorted(readable_name(data_dir.inbox, n) for n in look(data_dir.inbox).files)
    assert names == ["a\\laporan.json", "laporan_\ufffd.json"]  # renamed to readable UTF-8, nothing lost
    ((_, claim),) = claim_all(data_dir.inbox, [names[0]])
    assert land_one(data_dir, claim.path, claim.original_name).status == "loaded"


def test_a_file_claimed_by_a_process_that_died_goes_back_to_the_inbox(data_dir):
    drop(data_dir.inbox, "sumedang.csv", b"version 1")
    claimer = ("from pathlib import Path; import sys; from dagster_project.lib.inbox import claim_all; "
               "claim_all(Path(sys.argv[1]), ['sumedang.csv'])")
    subprocess.run([sys.executable, "-c", claimer, str(data_dir.inbox)], check=True)
    assert not (data_dir.inbox / "sumedang.csv").exists()  # the claimer exited without landing it
    drop(data_dir.inbox, "busy.csv", b"mine")
    ((_, mine),) = claim_all(data_dir.inbox, ["busy.csv"])  # a live process's claim is left alone
    (returned,) = return_orphans(data_dir.inbox)
    assert returned.name == "sumedang.csv" and returned.read_bytes() == b"version 1"
    assert mine.path.exists() and list(look(data_dir.inbox).files) == ["sumedang.csv"]


def test_owners_are_gone_only_when_certainly_dead():
    from dagster_project.lib.processes import owner_is_gone, owner_of

    finished = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])
    owner = owner_of(finished.pid)
    assert not owner_is_gone(owner) and not owner_is_gone(owner_of())
    finished.wait()
    assert owner_is_gone(owner)
    assert owner_is_gone(owner_of().rsplit(":", 1)[0] + ":1")  # a live pid with another start time: recycled
    assert not owner_is_gone("another-host:1:1") and not owner_is_gone("garbage")



def test_a_file_whose_writer_cannot_be_seen_is_taken_only_once_it_is_old(data_dir, monkeypatch):
    """Another user's file, or a network file system: no lease tells whether it is open for writing."""
    from dagster_project.lib import inbox

    drop(data_dir.inbox, "old.csv", b"x", age=120)
    drop(data_dir.inbox, "fresh.csv", b"x", age=5)
    monkeypatch.setattr(inbox, "open_for_writing", lambda path: None)
    seen = look(data_dir.inbox)
    assert [s.name for s in inbox.settled(seen, seen, data_dir.inbox)] == ["old.csv"]


def test_the_worker_client_speaks_only_to_a_private_folder_of_its_own_user(tmp_path):
    from dagster_project.worker import _private

    folder = tmp_path / "sock"
    folder.mkdir(mode=0o700)
    assert _private(folder)
    folder.chmod(0o755)
    assert not _private(folder)
