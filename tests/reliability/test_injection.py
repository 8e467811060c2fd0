"""Promise: text from outside is data, never code. Quotes, semicolons, SQL keywords, template syntax and
path-like strings in file names and fields reach the marts byte for byte, and nothing runs or moves; markup in
names and free text never leaves its context in the pages, and no script of the data runs in a browser.

One real `spbe build` (the update_warehouse job: inbox landing, dbt build, publish and reports in one run) on a
copy of the built data directory and of the repository whose reference tables give hostile names to
institutions, a province and an indicator. Its inbox holds a submission whose free-text fields and file name
carry the SQL-hostile strings, a second one carrying one as its institution code, and submissions with markup
in their fields and file name. One build serves every test here: it is a full one (the reference tables
changed), the dearest in the suite.
"""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import duckdb
import plotly.offline
import pytest

from dagster_project.lib import samples
from dagster_project.lib.ingest_log import read_lines
from dagster_project.lib.samples import generate
from dagster_project.lib.scorecards import page_name, single_file, single_file_name
from dagster_project.paths import REPO_ROOT, DataPaths
from tests.test_scorecards import HOSTILE as MARKUP
from tests.test_scorecards import SPEC, drawn_charts, open_page

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
ESCAPES = (Path("/tmp/evil.duckdb"), Path("/tmp/leak.csv"))  # where the hostile SQL would write, were it run


class Hostile(NamedTuple):
    paths: DataPaths  # the data directory the hostile build published
    names: dict  # {institution id: its hostile name}
    province: str  # the hostile name of province 32
    tables_before: set  # the published tables before the build
    written_outside: set  # files the build created outside the data dir, its Dagster home and dbt's target


def _write_sql_hostile_files(inbox: Path) -> None:
    """Kab. Sumedang's 2023 final file, its explanations and evidence hostile, under a hostile name; the same
    rows under the hostile institution code (refused)."""
    doc = json.loads(generate(["32.11"], years=(2023,), stages=("final",))[0].content)
    for i, row in enumerate(doc["rows"]):
        row["explanation"] = HOSTILE[i % len(HOSTILE)]
        row["evidence"] = HOSTILE[(i + 3) % len(HOSTILE)]
    (inbox / HOSTILE_NAME).write_text(json.dumps(doc), encoding="utf-8")
    for row in doc["rows"]:
        row["institution_code"] = HOSTILE_CODE
    (inbox / "kode_jahat.json").write_text(json.dumps(doc), encoding="utf-8")


def _files_outside(root: Path, paths: DataPaths) -> set[Path]:
    """Every file under ``root`` but outside the data dir, the Dagster home, dbt's target and logs and Python's
    caches, and the files the hostile SQL names."""
    kept = (paths.root, root / "dagster_home", root / "repo" / "dbt" / "target", root / "repo" / "dbt" / "logs")
    return {p for p in root.rglob("*") if p.is_file() and not any(k in p.parents for k in kept)
            and "__pycache__" not in p.parts} | {p for p in ESCAPES if p.exists()}


REPO_PARTS = ("dagster_project", "dbt", "expectations", "dagster.yaml", "pyproject.toml", "data/reference",
              "data/releases", "data/samples", "data/templates")


def _rewrite_csv(path: Path, key: str, column: str, values: dict[str, str]) -> None:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert {r[key] for r in rows} >= set(values)
    for r in rows:
        r[column] = values.get(r[key], r[column])
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="module")
def hostile(built_warehouse, tmp_path_factory) -> Hostile:
    """`spbe build` once more, on a copy of the built data directory and of the repository whose reference tables
    give hostile names to Sumedang, the national top 3 of 2024, a province and an indicator (the reference
    tables changed: a full build), with a submission whose explanation and evidence hold hostile text and a
    refused one under a hostile file name, and the SQL-hostile files above."""
    con = duckdb.connect(str(built_warehouse[0].published_db), read_only=True)
    top = [i for (i,) in con.execute("select institution_id from fct_rankings where year = 2024 and scope = "
                                     "'national' and institution_id <> '32.11' order by rank, institution_id limit 3"
                                     ).fetchall()]
    con.close()
    root = tmp_path_factory.mktemp("hostile")
    repo = root / "repo"
    for part in REPO_PARTS:
        if (REPO_ROOT / part).is_dir():
            shutil.copytree(REPO_ROOT / part, repo / part,
                            ignore=shutil.ignore_patterns("__pycache__", "target", "logs"))
        else:
            shutil.copyfile(REPO_ROOT / part, repo / part)
    names = {"32.11": f"Kabupaten Sumedang {MARKUP[0]} {MARKUP[1]}", top[0]: f"{MARKUP[2]} {MARKUP[5]}",
             top[1]: f"Pemerintah {MARKUP[4]}{MARKUP[3]}{MARKUP[0]}", top[2]: MARKUP[0]}
    province = f'Jawa Barat <a href="javascript:window.__pwned=1">{MARKUP[5]}</a>'
    _rewrite_csv(repo / "data/reference/institutions.csv", "institution_id", "name", names)
    _rewrite_csv(repo / "data/reference/wilayah_provinsi.csv", "kode_kemendagri", "nama", {"32": province})
    _rewrite_csv(repo / "data/reference/spbe_indikator_permen59_2020.csv", "indikator_no", "indikator_nama",
                 {"33": f"Layanan Penganggaran {MARKUP[1]}"})
    paths = DataPaths(root / "data")
    shutil.copytree(built_warehouse[0].root, paths.root)
    for sample in samples.generate([top[0]], years=(2024,), stages=("self_assessment", "final")):
        doc = json.loads(sample.content)
        for n, row in enumerate(doc["rows"]):
            row["explanation"] = f"Fakta: {MARKUP[n % len(MARKUP)]} (hostile)"
            row["evidence"] = f"bukti {MARKUP[(n + 1) % len(MARKUP)]}.pdf"
        (paths.inbox / sample.name).write_text(json.dumps(doc), encoding="utf-8")
    doc["rows"][1]["stage"] = MARKUP[1]  # refused: the validation page shows the row, its stage included
    (paths.inbox / '"><img src=x onerror=window.__pwned=1>.json').write_text(json.dumps(doc), encoding="utf-8")
    _write_sql_hostile_files(paths.inbox)
    tables_before = set(json.loads(paths.published_manifest.read_text())["tables"])
    env = {**os.environ, "PYTHONPATH": str(repo), "SPBE_DATA_DIR": str(paths.root),
           "DAGSTER_HOME": str(root / "dagster_home")}
    before = _files_outside(root, paths)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "dagster_project.cli", "build"], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    print(f"hostile build: {time.monotonic() - started:.1f} s")
    return Hostile(paths, names, province, tables_before, _files_outside(root, paths) - before)


def test_hostile_strings_reach_the_marts_unchanged(hostile):
    paths, names, province, *_ = hostile
    con = duckdb.connect(str(paths.published_db), read_only=True)
    assert dict(con.execute("select institution_id, name from dim_institution where institution_id in ?",
                            [list(names)]).fetchall()) == names
    assert con.execute("select distinct province_name from dim_institution where province_code = '32'").fetchall() == [
        (province,)]
    assert {e for (e,) in con.execute("select distinct explanation from fct_indicator_levels").fetchall()} >= {
        f"Fakta: {h} (hostile)" for h in MARKUP}
    con.close()


def test_hostile_strings_never_leave_their_context_in_the_html(hostile):
    site = hostile.paths.reports / "scorecards"
    pages = [site / "index.html", *site.glob("national-*.html"), *(site / "institutions").glob("*.html"),
             hostile.paths.reports / "validation.html"]
    assert len(pages) > 600
    for path in pages:
        html = path.read_text(encoding="utf-8")
        assert not re.search(r"<!--|<img|<script>window|<a href=\"javascript", html), path.name
        for chart_id, spec in SPEC.findall(html):
            assert not set(spec) & set("<>&\u2028\u2029") and json.loads(spec), (path.name, chart_id)


# Every page is checked as text above; in the browser, one page of each kind (the suite's time is shared).
@pytest.mark.parametrize("name", ["index.html", "national-2024.html", "validation.html", "single-file", 0])
def test_hostile_names_show_as_written_and_every_chart_renders(hostile, browser, name, tmp_path):
    """Each page opens with no script of the data run (no window.__pwned, no dialog, no request), every chart
    drawn, and the names shown exactly as in the reference tables, in the text and in the charts."""
    paths, names, province, *_ = hostile
    iid = list(names)[name] if isinstance(name, int) else "32.11"
    page = {"validation.html": paths.reports / "validation.html",
            "single-file": tmp_path / single_file_name(iid)}.get(name)
    if name == "single-file":
        with duckdb.connect(str(paths.published_db), read_only=True) as con:
            page.write_text(single_file(con, iid, plotly.offline.get_plotlyjs()).html, encoding="utf-8")
    elif isinstance(name, int):
        page = paths.reports / "scorecards" / "institutions" / page_name(iid)
    page = page or paths.reports / "scorecards" / name
    web, context, problems = open_page(browser, page.resolve().as_uri(), charts=name != "validation.html")
    assert web.evaluate("typeof window.__pwned") == "undefined"
    assert problems == {"errors": [], "requests": [], "dialogs": []}
    n_charts = drawn_charts(web) if name != "validation.html" else 0
    assert web.locator(".chart svg a").count() == 0  # no link made by plotly from a label
    text = web.evaluate("document.body.textContent")
    ticks = web.evaluate("[...document.querySelectorAll('.ytick text')].map(t => t.textContent)")
    if str(name).startswith("national"):
        assert n_charts == 7 and province in ticks  # the national story: two of them
        if name == "national-2024.html":  # the top 3 of 2024, in the ranking chart
            assert {names[i] for i in list(names)[1:]} <= set(ticks)
    elif name == "index.html":
        assert all(n in text for n in names.values()) and province in text
    elif name == "validation.html":
        assert '"><img src=x onerror=window.__pwned=1>.json' in text
        assert MARKUP[1] in web.evaluate("[...document.querySelectorAll('td code')].map(c => c.textContent).join()")
    else:
        assert n_charts >= 2 and web.evaluate("document.querySelector('h1').textContent") == names[iid]
        assert names[iid] in web.title()
    if name in (0, "single-file"):  # Sumedang: its province, and a hostile indicator name in its next steps
        assert province in text and f"Layanan Penganggaran {MARKUP[1]}" in text
    context.close()


# ---- one page to send (issue 13, part 4) -------------------------------------------------------------------------


def test_hostile_text_reaches_the_marts_unchanged(hostile):
    paths = hostile.paths
    log = {line["original_name"]: line for line in read_lines(paths.ingest_log)}
    assert log[HOSTILE_NAME]["status"] == "loaded"
    assert log["kode_jahat.json"]["status"] == "quarantined"
    with duckdb.connect(str(paths.published_db), read_only=True) as con:
        tables = {r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()}
        rows = con.execute(
            "select indicator, explanation, evidence from fct_indicator_levels "
            "where institution_id = ? and year = ? and stage = ? and is_current order by indicator",
            ["32.11", 2023, "final"]).fetchall()
        names = [r[0] for r in con.execute(
            "select original_name from fct_ingest_log where original_name = ?", [HOSTILE_NAME]).fetchall()]
        reason = con.execute("select reason from fct_ingest_log where original_name = ?",
                             ["kode_jahat.json"]).fetchone()[0]
    assert tables == hostile.tables_before | {"publish_manifest"}  # nothing dropped
    assert [(e, v) for _, e, v in rows] == [(HOSTILE[i % len(HOSTILE)], HOSTILE[(i + 3) % len(HOSTILE)])
                                            for i in range(47)]
    assert names == [HOSTILE_NAME]
    assert "institution" in reason
    report = json.loads((paths.quarantine / f"{log['kode_jahat.json']['sha256']}.report.json").read_text())
    sample_codes = {r.get("institution_code") for f in report["failed"] for r in f.get("sample_rows", [])}
    assert HOSTILE_CODE in sample_codes  # the report quotes the code as sent
    assert hostile.written_outside == set()  # nothing was written outside the data dir
