"""The `spbe` command on the published warehouse."""

import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from dagster_project import cli
from tests.conftest import VENV_BIN


@pytest.fixture
def on_built(built_warehouse, monkeypatch):
    monkeypatch.setenv("SPBE_DATA_DIR", str(built_warehouse[0].root))
    return built_warehouse[0]


def test_query_answers_from_the_published_file(on_built, capsys):
    sql = "select * from fct_rankings where year = 2024 and scope = 'national' order by rank limit 10"
    assert cli.main(["query", sql, "--format", "csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("institution_id,year,scope") and len(lines) == 11
    assert lines[1].startswith("35.10,2024,national,Indonesia,1,615")


def test_query_prints_a_table_by_default(on_built, capsys):
    assert cli.main(["query", "select name from dim_institution where institution_id = '32.11'"]) == 0
    assert "Kabupaten Sumedang" in capsys.readouterr().out


def test_bad_sql_is_a_clear_error(on_built, capsys):
    assert cli.main(["query", "select * from no_such_mart"]) == 2
    assert "no_such_mart" in capsys.readouterr().err


@pytest.mark.parametrize("sql", ["create table x as select 1", "copy fct_index to '/tmp/leak.csv'",
                                 "select * from read_csv('/etc/passwd')"])
def test_query_is_read_only_and_cannot_touch_files(on_built, sql, capsys):
    assert cli.main(["query", sql]) == 2


def test_summary_shows_the_top_10_and_predikat_counts(on_built, capsys):
    assert cli.main(["summary"]) == 0
    out = capsys.readouterr().out
    assert str(on_built.published_db) in out and "Kabupaten Banyuwangi" in out and "Memuaskan" in out


def test_build_with_nothing_changed_only_prints_the_summary(copy_of_built, capsys):
    assert cli.main(["build"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("nothing changed since the last publish") and "Kabupaten Banyuwangi" in out


def test_console_script_is_installed(on_built):
    done = subprocess.run([str(VENV_BIN / "spbe"), "query", "select count(*) as n from dim_institution",
                           "--format", "json"], capture_output=True, text=True, check=True)
    assert '"n":646' in done.stdout.replace(" ", "")


def test_a_reader_that_leaves_early_is_no_error(on_built):
    """`spbe summary | head -1`: the pipe closes while spbe writes; that is the reader's choice, not a failure."""
    proc = subprocess.Popen([str(VENV_BIN / "spbe"), "summary"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0 and "could not write" not in err, err


def test_query_as_of_reads_the_snapshot_published_by_then(on_built, capsys):
    assert cli.main(["snapshots"]) == 0
    assert "1 published warehouses kept" in capsys.readouterr().out
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert cli.main(["query", "--as-of", tomorrow, "--format", "csv",
                     "select count(*) as n from fct_rankings where scope = 'national' and year = 2024"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ["n", "615"] and "as of" in captured.err
    with pytest.raises(SystemExit, match="no published warehouse as of 2020-01-01"):
        cli.main(["query", "--as-of", "2020-01-01", "select 1"])
