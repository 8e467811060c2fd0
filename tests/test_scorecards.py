"""The reports group for real: the run that publishes the warehouse (update_warehouse) then writes the
scorecards, the validation page and the dbt docs from the published file; headless Chromium (Debian's,
driven by Playwright) opens the pages, checks that every chart renders without a console error and that
nothing is fetched from the network, and saves screenshots (to $SPBE_SCREENSHOT_DIR when set, else a temp
dir)."""

import json
import os
import re
import shutil
from html import unescape
from pathlib import Path

import plotly.graph_objects as go
import pytest

from dagster_project.lib.scorecards import page_name, render_site

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
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
    for html in (page(reports, "index.html"), page(reports, "national-2023.html"),
                 page(reports, "institutions", page_name("32.11"))):
        for ref in re.findall(r'(?:src|href)="([^"]+)"', html):
            assert not re.match(r"^[a-z]+:", ref), ref


def test_a_new_site_replaces_the_old_one_by_a_link_swap(reports, built_warehouse, tmp_path):
    paths = built_warehouse[0]
    out = tmp_path / "reports"
    first = render_site(paths.published_db, out, "/* plotly */")
    old_page = first.root.resolve() / "index.html"
    render_site(paths.published_db, out, "/* plotly */")
    assert old_page.exists()  # the previous site stays for a reader still on it
    third = render_site(paths.published_db, out, "/* plotly */")
    assert not old_page.exists() and len(list(out.glob(".scorecards-*"))) == 2
    assert third.root.resolve().name.startswith(".scorecards-") and (third.root / "index.html").exists()
    # A copied data dir holds a folder where the link was: the next site moves it aside and links again.
    shutil.copytree(out / "scorecards", tmp_path / "copy" / "scorecards")
    render_site(paths.published_db, tmp_path / "copy", "/* plotly */")
    assert (tmp_path / "copy" / "scorecards").is_symlink()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed: `make test` installs Debian's chromium package (as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        yield browser
        browser.close()


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
