"""Promise: text from outside is data, never code. Quotes, semicolons, SQL keywords, template syntax and
path-like strings in file names and fields reach the marts byte for byte, and nothing runs or moves.

A submission's free-text fields and its inbox file name carry the hostile strings; a second file carries
one as its institution code. Both go through the real update_warehouse job (inbox landing, dbt build and
publish, in one run as the inbox sensor starts it).
"""

import json

import dagster as dg
import duckdb

from dagster_project.lib.ingest_log import read_lines
from dagster_project.lib.samples import generate
from tests.conftest import land_files

HOSTILE = [
    "Robert'); DROP TABLE fct_index; --",
    '"; DELETE FROM main.fct_rankings; --',
    "' OR '1'='1",
    "$$; ATTACH '/tmp/evil.duckdb' AS evil; COPY fct_index TO '/tmp/leak.csv'; $$",
    "{{ run_query('drop table fct_index') }} {% do exceptions.raise_compiler_error('x') %}",
    "=HYPERLINK(\"http://evil.example\",\"klik\")",
    "../../../../etc/passwd",
    "\\'; SELECT 1; -- \\\\ backslashes",
    "%s %(name)s ? :1 $1",
    "Dinas Kominfo \u202eRTL\u202c – “kutip” ‘tunggal’ 中文 ✓",
    "line one\nline two\r\n\ttabbed",
]
HOSTILE_NAME = "laporan'; DROP TABLE fct_ingest_log; -- $$ {{x}}.json"
HOSTILE_CODE = "32.11'; DROP TABLE dim_institution; --"


def test_hostile_text_reaches_the_marts_unchanged(copy_of_built, tmp_path):
    paths = copy_of_built
    tables_before = set(json.loads(paths.published_manifest.read_text())["tables"])
    sample = generate(["32.11"], years=(2023,), stages=("final",))[0]
    doc = json.loads(sample.content)
    for i, row in enumerate(doc["rows"]):
        row["explanation"] = HOSTILE[i % len(HOSTILE)]
        row["evidence"] = HOSTILE[(i + 3) % len(HOSTILE)]
    good = tmp_path / HOSTILE_NAME
    good.write_text(json.dumps(doc), encoding="utf-8")
    for row in doc["rows"]:
        row["institution_code"] = HOSTILE_CODE
    bad = tmp_path / "kode_jahat.json"
    bad.write_text(json.dumps(doc), encoding="utf-8")
    outside_before = {p for p in tmp_path.parent.rglob("*") if paths.root not in p.parents}

    with dg.DagsterInstance.ephemeral() as instance:
        result = land_files(instance, [good, bad], build=True)
    assert result.success
    assert json.loads(paths.published_manifest.read_text())["run_id"] == result.run_id  # built and published

    log = {line["original_name"]: line for line in read_lines(paths.ingest_log)}
    assert log[HOSTILE_NAME]["status"] == "loaded"
    assert log["kode_jahat.json"]["status"] == "quarantined"
    with duckdb.connect(str(paths.published_db), read_only=True) as con:
        tables = {r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()}
        assert tables == tables_before | {"publish_manifest"}  # nothing dropped
        rows = con.execute(
            "select indicator, explanation, evidence from fct_indicator_levels "
            "where institution_id = ? and year = ? and stage = ? order by indicator",
            ["32.11", 2023, "final"]).fetchall()
        names = [r[0] for r in con.execute(
            "select original_name from fct_ingest_log where original_name = ?", [HOSTILE_NAME]).fetchall()]
        reason = con.execute("select reason from fct_ingest_log where original_name = ?",
                             ["kode_jahat.json"]).fetchone()[0]
    assert [(e, v) for _, e, v in rows] == [(HOSTILE[i % len(HOSTILE)], HOSTILE[(i + 3) % len(HOSTILE)])
                                            for i in range(47)]
    assert names == [HOSTILE_NAME]
    assert "institution" in reason
    report = json.loads((paths.quarantine / f"{log['kode_jahat.json']['sha256']}.report.json").read_text())
    sample_codes = {r.get("institution_code") for f in report["failed"] for r in f.get("sample_rows", [])}
    assert HOSTILE_CODE in sample_codes  # the report quotes the code as sent
    outside_after = {p for p in tmp_path.parent.rglob("*") if paths.root not in p.parents}
    assert outside_after - outside_before == set()  # nothing was written outside the data dir
