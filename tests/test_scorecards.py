"""The reports group for real: the run that publishes the warehouse (update_warehouse) then writes the
scorecards, the validation page and the dbt docs from the published file; headless Chromium (Debian's,
driven by Playwright) opens the pages, checks that every chart renders without a console error and that
nothing is fetched from the network, and saves screenshots (to $SPBE_SCREENSHOT_DIR when set, else a temp
dir)."""

import json
import os
import re
import shutil
import subprocess
import time
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import plotly.graph_objects as go
import pytest

from dagster_project.lib import scorecards
from dagster_project.lib.scorecards import inline, page_name, render_site, script_json
from tests.conftest import VENV_BIN

SPEC = re.compile(r'<script type="application/json" id="(chart-\d+)-spec">(.*?)</script>', re.S)


def page(reports, *parts) -> str:
    return (reports[0] / "scorecards").joinpath(*parts).read_text(encoding="utf-8")


def test_the_job_writes_scorecards_validation_results_and_the_dbt_catalog(reports, published):
    root, result = reports
    order = [m.asset_key.to_user_string() for m in result.get_asset_materialization_events()]
    assert {"scorecards", "validation_results", "dbt_docs"} <= set(order)
    # Each report step ran once, after the publish of the same run.
    assert all(order.count(r) == 1 and order.index(r) > order.index("published_warehouse")
               for r in ("scorecards", "validation_results", "dbt_docs"))
    n_institutions = published.execute("select count(*) from dim_institution where n_years_evaluated > 0").fetchone()[0]
    pages = list((root / "scorecards" / "institutions").glob("*.html"))
    assert len(pages) == n_institutions and (root / "scorecards" / "national-2024.html").exists()
    assert (root / "scorecards").is_symlink()
    assert (root / "scorecards" / "assets" / "plotly.min.js").stat().st_size > 1e6
    docs = (root / "dbt-docs.html").read_text(encoding="utf-8")
    assert "fct_rank_uncertainty" in docs and "fct_target_steps" in docs
    validation = (root / "validation.html").read_text(encoding="utf-8")
    assert "Validation results (Great Expectations)" in validation
    # The 2023 release's flagged services value: its rule in plain language (the suite's meta), with the row.
    assert "spbe_results_2023.csv" in validation and "index below 1, the lowest maturity level" in validation
    assert "Pemerintah Kab. Banyuasin" in validation and '"services_index": 0.3' in validation


def test_every_chart_is_a_valid_plotly_figure(reports):
    for html in (page(reports, "national-2024.html"), page(reports, "institutions", page_name("32.11"))):
        specs = SPEC.findall(html)
        assert len(specs) >= 4
        for chart_id, text in specs:
            assert f'id="{chart_id}"' in html
            go.Figure(json.loads(text))  # raises on any property plotly does not know


def test_sumedangs_page_shows_what_the_marts_hold(reports, published):
    html = page(reports, "institutions", page_name("32.11"))
    p5, p95, rank = published.execute("""select rank_p5, rank_p95, published_rank from fct_rank_uncertainty
        where institution_id = '32.11' and year = 2024 and scope = 'national'""").fetchone()
    steps = [n for (n,) in published.execute("""select item_name from fct_target_steps where institution_id = '32.11'
        and target_id = 'sumedang-2025' and basis = 'indicator_levels' order by step_no""").fetchall()]
    assert "Kabupaten Sumedang" in html and ">4.51<" in html and ">4.14<" in html
    assert f"<td>{rank}</td><td>{p5}–{p95}</td>" in html
    assert all(name in html for name in steps) and "sumedang-2025" in html and "4.60" in html
    assert "from fct_rank_uncertainty\nwhere institution_id = &#39;32.11&#39;" in html  # the query to reproduce it


def test_every_query_shown_on_sumedangs_page_runs_and_answers(reports, published):
    html = page(reports, "institutions", page_name("32.11"))
    queries = [unescape(q) for q in re.findall(r'<details class="sql"><summary>[^<]*</summary><pre>(.*?)</pre>', html,
                                                re.S)]
    assert len(queries) >= 8
    for sql in queries:
        assert published.execute(sql).fetchall(), sql


def test_pages_refer_only_to_files_beside_them(reports):
    """Nothing is loaded from elsewhere; the only links out are the source pages of secondary values."""
    for html in (page(reports, "index.html"), page(reports, "national-2023.html"),
                 page(reports, "institutions", page_name("32.11"))):
        parser = _References()
        parser.feed(html)
        assert parser.refs and not [ref for ref in parser.refs if re.match(r"^[a-z]+:", ref)], parser.refs


def test_sumedangs_page_marks_the_quoted_years_and_links_their_sources(reports, published):
    parser = _References()
    parser.feed(page(reports, "institutions", page_name("32.11")))
    urls = [u.strip() for (cell,) in published.execute(
        "select source_urls from fct_index where institution_id = '32.11' and source_tier = 'secondary' "
        "order by year, source_row_number").fetchall() for u in cell.split("|")]
    assert len(urls) >= 2 and parser.sources == urls
    specs = [json.loads(text) for _, text in SPEC.findall(page(reports, "institutions", page_name("32.11")))]
    quoted = next(t for spec in specs for t in spec["data"] if t.get("name") == "quoted by a page (secondary)")
    assert quoted["x"] == [2021, 2022] and quoted["y"] == [3.52, 3.84]


def test_a_new_site_replaces_the_old_one_by_a_link_swap(reports, built_warehouse, tmp_path, monkeypatch):
    paths = built_warehouse[0]
    out = tmp_path / "reports"
    first = render_site(paths.published_db, out, "/* plotly */")
    old_page = first.root.resolve() / "index.html"
    second = render_site(paths.published_db, out, "/* plotly */")
    assert old_page.exists()  # the previous site stays for a reader still on it
    assert (first.n_rendered, second.n_rendered) == (first.n_institutions, 0)  # same data: every page linked
    # Changed templates or code (a fix to the escaping) draw every page anew, whatever its data.
    monkeypatch.setattr(scorecards, "_renderer_fingerprint", lambda: "another renderer")
    third = render_site(paths.published_db, out, "/* plotly */")
    assert third.n_rendered == first.n_institutions
    assert not old_page.exists() and len(list(out.glob(".scorecards-*"))) == 2
    assert third.root.resolve().name.startswith(".scorecards-") and (third.root / "index.html").exists()
    # A copied data dir holds a folder where the link was: the next site moves it aside and links again.
    shutil.copytree(out / "scorecards", tmp_path / "copy" / "scorecards")
    render_site(paths.published_db, tmp_path / "copy", "/* plotly */")
    assert (tmp_path / "copy" / "scorecards").is_symlink()


@pytest.mark.parametrize("name", ["index.html", "national-2024.html", "institutions/32.11.html",
                                  "institutions/kementerian-pertanian.html", "institutions/35.10.html"])
def test_pages_render_in_headless_chromium(reports, browser, name, tmp_path_factory):
    errors, remote = [], []
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    web = context.new_page()
    web.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    web.on("pageerror", lambda e: errors.append(str(e)))
    web.route(re.compile(r"^(?!file:).*"), lambda route: (remote.append(route.request.url), route.abort()))
    web.goto((reports[0] / "scorecards" / name).resolve().as_uri())
    web.wait_for_selector("body[data-charts-done='true']", timeout=30_000)
    charts = web.locator(".chart")
    assert errors == [] and remote == []
    assert charts.count() == int(web.locator("body").get_attribute("data-charts-total"))
    for i in range(charts.count()):
        chart = charts.nth(i)
        assert chart.get_attribute("data-rendered") == "true" and chart.get_attribute("data-render-error") is None
        assert chart.locator("svg.main-svg").count() >= 1
    if name == "index.html":
        web.fill("#filter", "sumedang")
        assert web.locator("#institutions tbody tr:visible").count() == 1
    shots = Path(os.environ.get("SPBE_SCREENSHOT_DIR") or tmp_path_factory.mktemp("screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    shot = shots / (name.replace("/", "_").removesuffix(".html") + ".png")
    web.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")
    context.close()


def open_page(browser, url: str, allowed: str | None = None, charts: bool = True):
    """A page with every request but ``allowed`` (default: any file:) refused and recorded, and its console errors,
    uncaught errors and dialogs recorded, once its charts are drawn: (page, context, problems)."""
    problems = {"errors": [], "requests": [], "dialogs": []}
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    web = context.new_page()
    web.on("console", lambda m: problems["errors"].append(m.text) if m.type == "error" else None)
    web.on("pageerror", lambda e: problems["errors"].append(str(e)))
    web.on("dialog", lambda d: (problems["dialogs"].append(d.message), d.dismiss()))

    def route(r):
        if r.request.url == allowed or (allowed is None and r.request.url.startswith("file:")):
            return r.continue_()
        problems["requests"].append(r.request.url)
        return r.abort()

    web.route("**/*", route)
    web.goto(url)
    if charts:
        web.wait_for_selector("body[data-charts-done='true']", timeout=30_000)
    return web, context, problems


def drawn_charts(web) -> int:
    """How many charts the page has, each drawn by plotly (an svg, no error) or the assertion fails."""
    charts = web.locator(".chart")
    assert charts.count() == int(web.locator("body").get_attribute("data-charts-total"))
    for i in range(charts.count()):
        chart = charts.nth(i)
        assert chart.get_attribute("data-rendered") == "true" and chart.get_attribute("data-render-error") is None
        assert chart.locator("svg.main-svg").count() >= 1
    return charts.count()


# ---- any string, escaped for where it lands (issue 13, part 3) --------------------------------------------------

HOSTILE = ("<!--<script>", "</script><script>window.__pwned=1</script>", '"><img src=x onerror="window.__pwned=1">',
           "\u2028", "&amp;", "{{7*7}}")


def test_chart_json_is_inert_in_a_script_element_and_parses_back():
    value = {"names": list(HOSTILE), "quote": "it's", "line": "a\u2029b"}
    text = str(script_json(value))
    assert not set(text) & set("<>&'\u2028\u2029")
    assert json.loads(text) == value


def test_inlined_scripts_and_styles_end_only_where_they_should(browser):
    script = inline('window.s = "</script><!--<script>"; // </SCRIPT> in a comment\nwindow.t = `</Script>`;',
                    "script")
    style = inline('p::after { content: "</style>"; }', "style")
    assert "</script" not in script.lower() and "<!--" not in script and "</style" not in style
    context = browser.new_context()
    web = context.new_page()
    web.set_content(f"<style>{style}</style><p></p><script>{script}</script><b id=after>after</b>")
    assert web.evaluate("[window.s, window.t, document.getElementById('after').textContent]") == [
        "</script><!--<script>", "</Script>", "after"]
    assert web.evaluate("getComputedStyle(document.querySelector('p'), '::after').content") == '"</style>"'
    context.close()


# pyproject.toml: the code location finds its defs folder through it (definitions.py).
class _References(HTMLParser):
    """Every attribute that can load or link to something else, and every url() or @import of a stylesheet."""

    def __init__(self):
        super().__init__()
        self.refs, self.sources, self.tags, self._in_style = [], [], set(), False

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self._in_style = tag == "style"
        found = dict(attrs)
        if tag == "a" and found.get("rel") == "noopener noreferrer" and re.match(r"https?://", found.get("href", "")):
            self.sources.append(found["href"])  # a secondary value's source page: followed on a click, never loaded
            return
        self.refs += [v for k, v in attrs if k in ("src", "href", "srcset", "action", "formaction", "poster", "data",
                                                   "background", "manifest")]

    def handle_data(self, data):
        if self._in_style:
            self.refs += re.findall(r"url\(\s*['\"]?([^'\")]*)", data) + re.findall(r"@import\s+['\"]?([^'\";]*)", data)


@pytest.fixture(scope="module")
def sent(built_warehouse, tmp_path_factory):
    """`spbe report --institution 32.11 --single-file --out DIR` on the built warehouse: (the file, stdout)."""
    out = tmp_path_factory.mktemp("sent")
    started = time.monotonic()
    done = subprocess.run([str(VENV_BIN / "spbe"), "report", "--institution", "32.11", "--single-file", "--out",
                           str(out)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "SPBE_DATA_DIR": str(built_warehouse[0].root)})
    assert done.returncode == 0, done.stderr
    print(f"spbe report --single-file: {time.monotonic() - started:.1f} s")
    return out / "scorecard-32.11.html", done.stdout


def test_spbe_report_prints_the_path_and_size_of_the_file_it_wrote(sent):
    path, stdout = sent
    size = path.stat().st_size
    assert stdout == f"{path}  {size / 1e6:.1f} MB, 4 charts, opens offline\n"
    assert size > 4e6 and list(path.parent.iterdir()) == [path]
    print(f"single file: {size:,} bytes")


def test_spbe_report_writes_under_the_reports_folder_by_default_named_by_the_id(built_warehouse, monkeypatch, capsys):
    from dagster_project import cli

    paths = built_warehouse[0]
    monkeypatch.setenv("SPBE_DATA_DIR", str(paths.root))
    expected = paths.reports / "single" / "scorecard-32.11-2023.html"
    try:
        assert cli.main(["report", "--institution", "32.11", "--single-file", "--year", "2023"]) == 0
        assert capsys.readouterr().out.startswith(f"{expected}  ")
        html = expected.read_text(encoding="utf-8")
        assert "As of 2023: the results of later years are left out." in html and ">4.14<" in html
        assert ">4.51<" not in html  # Sumedang's 2024 index
    finally:
        shutil.rmtree(paths.reports / "single", ignore_errors=True)
    assert cli.main(["report", "--institution", "sumedang", "--single-file"]) == 2
    assert "32.11 (Kabupaten Sumedang)" in capsys.readouterr().err
    assert cli.main(["report", "--institution", "32.11", "--single-file", "--year", "2019"]) == 2
    assert "years are 2023, 2024" in capsys.readouterr().err
    assert cli.main(["report", "--institution", "32.11"]) == 0  # without --single-file: the site's page
    assert capsys.readouterr().out.strip() == str(paths.reports / "scorecards" / "institutions" / "32.11.html")


def test_the_single_file_refers_to_no_other_file(sent, reports):
    site_page = _References()  # the parser finds what a page of the site refers to
    site_page.feed(page(reports, "institutions", page_name("32.11")))
    assert {"../assets/report.css", "../assets/plotly.min.js", "../assets/report.js", "../index.html"} <= set(
        site_page.refs)
    parser = _References()
    parser.feed(sent[0].read_text(encoding="utf-8"))
    assert {"style", "script"} <= parser.tags and "link" not in parser.tags
    assert all(r.startswith(("#", "data:")) for r in parser.refs), parser.refs


def test_the_single_file_opens_offline_and_prints_to_a4(sent, browser, tmp_path):
    alone = tmp_path / "mail" / sent[0].name  # as received: no other file beside it
    alone.parent.mkdir()
    shutil.copyfile(sent[0], alone)
    url = alone.as_uri()
    started = time.monotonic()
    web, context, problems = open_page(browser, url, allowed=url)
    print(f"single file drawn in {time.monotonic() - started:.2f} s")
    assert problems == {"errors": [], "requests": [], "dialogs": []}
    assert drawn_charts(web) == 4 and web.locator("header nav, header a").count() == 0
    # Before printing, every chart is redrawn at the width of the A4 page less its margins (186 mm), and back after.
    widths = "[...document.querySelectorAll('.chart svg.main-svg:first-child')].map(s => s.getBBox().width)"
    screen = web.evaluate(widths)
    web.evaluate("dispatchEvent(new Event('beforeprint'))")
    assert all(abs(w - 186 * 96 / 25.4) < 1 for w in web.evaluate(widths)), web.evaluate(widths)
    web.evaluate("dispatchEvent(new Event('afterprint'))")
    assert web.evaluate(widths) == screen
    started = time.monotonic()
    pdf = web.pdf(format="A4")
    n_pages = len(re.findall(rb"/Type\s*/Page\b", pdf))  # not /Pages
    print(f"A4 PDF: {n_pages} pages, {len(pdf):,} bytes, {time.monotonic() - started:.2f} s")
    assert pdf.startswith(b"%PDF") and 3 <= n_pages <= 12
    assert all(abs(float(w) - 595.9) < 1 and abs(float(h) - 842.9) < 1
               for w, h in re.findall(rb"/MediaBox\s*\[0 0 ([\d.]+) ([\d.]+)\]", pdf))
    context.close()
