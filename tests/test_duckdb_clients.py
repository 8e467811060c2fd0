"""The published file opens in the DuckDB clients analysts have: the CLI from PyPI (duckdb-cli, a dev
dependency) and older Python packages, each in an isolated environment (`make clients`), with the same
answers to the README's analyst guide as our own DuckDB."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from dagster_project.lib.publish import STORAGE_VERSION
from dagster_project.paths import REPO_ROOT
from tests.test_readme import guide_queries

CLI = Path(sys.executable).parent / "duckdb"
OLD_CLIENTS = sorted((REPO_ROOT / ".tools").glob("duckdb-*/bin/python"))

# Runs in the old client: every table read whole (cast to text, so no Python type of a newer DuckDB is needed),
# then the guide's queries, answers as JSON lines.
CLIENT_SCRIPT = """
import json, sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
tables = [t for (t,) in con.execute("select table_name from information_schema.tables").fetchall()]
for t in tables:
    con.execute('select count(*), max(length(cast(x as varchar))) from "%s" x' % t.replace('"', '""')).fetchall()
print(json.dumps({"version": duckdb.__version__, "tables": sorted(tables)}))
for sql in json.load(sys.stdin):
    print(json.dumps(sorted(json.dumps(r, default=str) for r in con.execute(sql).fetchall())))
"""


def answers(python: str, db: Path) -> tuple[dict, list[list[str]]]:
    proc = subprocess.run([python, "-c", CLIENT_SCRIPT, str(db)], input=json.dumps(guide_queries()), text=True,
                          capture_output=True, timeout=120, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    first, *rest = proc.stdout.splitlines()
    return json.loads(first), [json.loads(line) for line in rest]


def test_the_manifest_records_the_storage_format(published):
    manifest = dict(published.execute("select key, value from publish_manifest").fetchall())
    assert json.loads(manifest["storage_compatibility_version"]) == STORAGE_VERSION


def test_every_table_and_column_of_the_dbt_yaml_is_described_in_the_file(published):
    """Descriptions travel with the file (COMMENT ON): DBeaver, duckdb_columns() and `spbe export` show them."""
    missing = published.execute("select table_name || '.' || column_name from duckdb_columns() "
                                "where schema_name = 'main' and coalesce(comment, '') = '' "
                                "and table_name in (select table_name from duckdb_tables())").fetchall()
    assert not missing
    undescribed = published.execute("select count(*) from duckdb_tables() where coalesce(comment, '') = ''")
    assert undescribed.fetchall() == [(0,)]


def test_old_clients_are_installed():
    assert len(OLD_CLIENTS) >= 2, "run `make clients`: older DuckDB Python packages in .tools/duckdb-<version>/"


@pytest.mark.parametrize("python", OLD_CLIENTS, ids=lambda p: p.parent.parent.name)
def test_an_older_python_duckdb_opens_the_file_and_answers_the_guide_alike(built_warehouse, published, python):
    info, old = answers(str(python), built_warehouse[0].published_db)
    assert not info["version"].startswith("2.")
    assert set(info["tables"]) == {t for (t,) in published.execute("show tables").fetchall()}
    ours = [sorted(json.dumps(r, default=str) for r in published.execute(sql).fetchall()) for sql in guide_queries()]
    assert old == ours


def test_the_cli_from_pypi_runs_the_readmes_example_as_written(built_warehouse, tmp_path):
    assert subprocess.run([CLI, "--version"], capture_output=True, text=True).stdout.startswith("v1.")
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    examples = re.findall(r"```bash\n(duckdb -readonly .*?)```", readme, re.S)
    assert examples, "the README shows no DuckDB CLI example"
    (tmp_path / "data").symlink_to(built_warehouse[0].root)  # the example's relative path, from the repo root
    for example in examples:
        proc = subprocess.run(["bash", "-c", example], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                              env={**os.environ, "PATH": f"{CLI.parent}:/usr/bin:/bin"})
        assert proc.returncode == 0, proc.stderr
        assert "Sumedang" in proc.stdout, proc.stdout


def test_the_newest_format_would_not_open_in_an_older_client(tmp_path):
    """The reason for STORAGE_VERSION: a file in our DuckDB's newest format is refused by the oldest client."""
    newest = tmp_path / "newest.duckdb"
    con = duckdb.connect(str(newest), config={"storage_compatibility_version": "latest"})
    con.execute("create table t as select 1 as x")
    con.close()
    oldest = min(OLD_CLIENTS, key=lambda p: [int(n) for n in p.parent.parent.name.split("-")[1].split(".")])
    proc = subprocess.run([oldest, "-c", "import duckdb, sys; duckdb.connect(sys.argv[1], read_only=True)", newest],
                          capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode != 0 and "version" in proc.stderr.lower(), proc.stderr
