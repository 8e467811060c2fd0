"""Scorecards: static HTML pages (a national page per year, a page per institution) with plotly charts.

The site is self-contained: plotly.js comes from the plotly wheel and is written beside the pages, so nothing
is fetched at view time (pages open from file://). A new site is written into a fresh folder and published
by swapping the ``scorecards`` symlink, so a reader never sees a half-written site.

An institution's page is a function of its own rows of the marts (and of the years covered). Each site keeps
a fingerprint of those rows per page; the next site re-renders only the pages whose rows changed and hard-
links the others from the previous site (one dropped file re-renders a page or two, not 629).

Any string from the data (a name in a reference table, a submission's text) reaches a page only escaped for
where it lands: HTML by Jinja's autoescape (on for every template), chart JSON in a <script> element by
``script_json``, chart labels by ``charts.literal``. ``single_file`` writes one institution's scorecard as one
HTML file with the CSS and every script inlined, to send by mail or print to PDF.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup

from dagster_project.lib.archive import utc_now
from dagster_project.lib.scorecards import charts
from dagster_project.lib.scorecards.data import (
    NATIONAL_RANKS_SQL,
    NATIONAL_TARGETS_SQL,
    SECTIONS,
    STORY_SQL,
    TREND_SQL,
    ScorecardData,
    as_of,
    load,
)

HERE = Path(__file__).parent
SITE_LINK = "scorecards"  # data/reports/scorecards -> data/reports/.scorecards-<stamp>
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


FINGERPRINTS = ".fingerprints.json"


@dataclass(frozen=True)
class Site:
    root: Path  # the published link
    n_national: int
    n_institutions: int
    n_charts: int
    n_rendered: int = 0  # institution pages rendered anew (the others were unchanged)


def page_name(institution_id: str) -> str:
    """A file name for an institution's page: registry ids are plain already, but nothing outside [A-Za-z0-9._-]
    ever reaches a path."""
    return f"{_SAFE.sub('_', institution_id)}.html"


def single_file_name(institution_id: str, year: int | None = None) -> str:
    """The default name of a single-file scorecard: from the registry id, never from a name in the data."""
    return f"scorecard-{page_name(institution_id).removesuffix('.html')}{f'-{year}' if year else ''}.html"


# In a <script> element, "</script" ends it, and "<!--" followed by "<script" makes the parser skip the real end
# tag: the rest of the page, plotly included, becomes script text and every chart stays blank. JSON may write
# any character of a string as an escape, so none of these ever appears; U+2028/U+2029 end a line in older
# JavaScript.
_SCRIPT_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "'": "\\u0027",
                                 "\u2028": "\\u2028", "\u2029": "\\u2029"})


def script_json(value) -> Markup:
    """``value`` as JSON that is inert inside a <script> element (Jinja's htmlsafe_json_dumps, plus U+2028/9)."""
    return Markup(json.dumps(value, separators=(",", ":"), ensure_ascii=False).translate(_SCRIPT_ESCAPES))


def inline(text: str, tag: str) -> Markup:
    """Our own CSS or JavaScript as the body of a <style> or <script> element. Only "</style" or "</script" ends
    it (and in a script, "<!--" can hide that end); escaped, each means the same inside a string, a regular
    expression or a comment, the only places a stylesheet or a minified library has them."""
    text = re.sub(f"</(?={tag})", lambda _: "<\\/", text, flags=re.IGNORECASE)
    return Markup(text.replace("<!--", "<\\!--") if tag == "script" else text)


def source_links(urls: str | None) -> list[str]:
    """The http(s) addresses of a ' | '-separated source cell, for links; anything else is never a link (the
    secondary suite refuses it at landing, and a page does not trust that alone)."""
    parts = [u.strip() for u in (urls or "").split("|")]
    return [u for u in parts if re.fullmatch(r"https?://[^\s\"'<>]+", u)]


def _environment() -> Environment:
    # Autoescape for every template, whatever its name: a page is HTML through and through.
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True, trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["num"] = lambda v, digits=2: "" if v is None or pd.isna(v) else f"{float(v):.{digits}f}"
    env.filters["page"] = page_name
    env.filters["script_json"] = script_json
    return env


class _Figures:
    """Collects figure specs for one page; each becomes a <script type="application/json"> beside its <div>."""

    def __init__(self):
        self.specs: list[tuple[str, dict]] = []

    def add(self, figure: dict) -> str:
        chart_id = f"chart-{len(self.specs) + 1}"
        self.specs.append((chart_id, charts.literal(figure)))
        return chart_id


def _records(frame: pd.DataFrame) -> list[dict]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _institution_page(data: ScorecardData, inst: dict, env: Environment, generated_at: str,
                      standalone: dict | None = None, year: int | None = None) -> tuple[str, int]:
    iid = inst["institution_id"]
    figures = _Figures()
    index, computed, ranks = data.of(iid, "index"), data.of(iid, "computed"), data.of(iid, "ranks")
    targets, steps, verification = data.of(iid, "targets"), data.of(iid, "steps"), data.of(iid, "verification")
    latest_year = max((r["year"] for r in index), default=None)
    verification_year = max((r["year"] for r in verification), default=None)
    # One plan per target and basis: indicator steps from submitted levels, domain steps from official results.
    keys = sorted({(s["target_id"], s["basis"]) for s in steps}, key=lambda k: (k[0], k[1] != "indicator_levels"))
    plans = [{"target_id": t, "basis": b, "steps": [s for s in steps if (s["target_id"], s["basis"]) == (t, b)]}
             for t, b in keys]
    html = env.get_template("institution.html").render(
        root="../", standalone=standalone, as_of=year, years=data.years, inst=inst, generated_at=generated_at,
        latest_year=latest_year,
        index=index, ranks=[r for r in ranks if r["year"] == latest_year], targets=targets, plans=plans,
        priorities=data.of(iid, "priorities"), mentors=data.of(iid, "mentors")[:12],
        methodology=data.of(iid, "methodology"), verification_year=verification_year,
        sql={name: section.sql_for(iid) for name, section in SECTIONS.items()},
        secondary=[{**r, "links": source_links(r["source_urls"])} for r in data.of(iid, "secondary")],
        chart_index=figures.add(charts.index_and_domains(index, computed, data.of(iid, "secondary")))
        if index or data.of(iid, "secondary") else None,
        chart_ranks=figures.add(charts.rank_intervals(ranks, latest_year)) if latest_year and ranks else None,
        chart_targets=figures.add(charts.target_path(index, targets)) if targets else None,
        chart_verification=figures.add(charts.verification_gap(verification, verification_year))
        if verification_year else None,
        figures=figures.specs,
    )
    return html, len(figures.specs)


def _national_page(data: ScorecardData, year: int, env: Environment, generated_at: str,
                   province_names: dict[str, str]) -> tuple[str, int]:
    figures = _Figures()
    groups = data.groups[data.groups["year"] == year]
    national = groups[groups["group_type"] == "national"]
    national_mean = float(national["mean_index"].iloc[0]) if not national.empty else None
    ranks = data.national_ranks[data.national_ranks["year"] == year]
    html = env.get_template("national.html").render(
        root="", year=year, years=data.years, generated_at=generated_at,
        national=_records(national), n_ranked=len(ranks),
        n_tied_groups=int(ranks["tied_group"].max()) if not ranks.empty else 0,
        cohorts=_records(groups[groups["group_type"] == "cohort"]),
        # shown on the page for readers to run; never executed here
        sql={"groups": "select * from agg_groups where year = " + str(year),  # noqa: S608
             "ranks": NATIONAL_RANKS_SQL + f" and u.year = {year}\norder by u.published_rank",
             "trend": TREND_SQL, "targets": NATIONAL_TARGETS_SQL, "story": STORY_SQL},
        chart_predikat=figures.add(charts.predikat_distribution(data.groups, year)),
        chart_ranking=figures.add(charts.ranking_with_intervals(
            _records(ranks.head(40)), f"Top 40 of {len(ranks)}, {year}: published rank and the 90% interval")),
        chart_categories=figures.add(charts.group_means(data.groups, year, "category", {}, national_mean,
                                                        "Mean index by category")),
        chart_provinces=figures.add(charts.group_means(data.groups, year, "province", province_names,
                                                       national_mean, "Mean index by province group")),
        chart_trend=figures.add(charts.trend_against_targets(data.trend, data.national_targets)),
        chart_story=figures.add(charts.national_story(data.story)),
        chart_shares=figures.add(charts.share_baik_or_better(data.story)),
        story=[{**r, "links": source_links(r["source_url"])} for r in _records(data.story.sort_values(
            ["metric", "scope", "year", "basis"]))],
        figures=figures.specs,
    )
    return html, len(figures.specs)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # never write through a hard link into the previous site
    path.write_text(text, encoding="utf-8")


def _renderer_fingerprint() -> str:
    """The code and templates that draw a page: a page of the previous site is reused only if they are the same
    (a fix to the escaping reaches every page, not only those whose data changed)."""
    h = hashlib.sha256()
    for path in sorted([*HERE.glob("*.py"), *(HERE / "templates").glob("*.html")]):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def _fingerprint(data: ScorecardData, institution: dict, renderer: str) -> str:
    """What a page shows, hashed. Pickled, not JSON: the rows come from the same queries in the same column
    order every run, and pickle is four times faster (0.23 -> 0.06 s for 631 pages, every run); a difference
    that does not matter can only make a page be drawn again, never kept stale."""
    rows = [data.of(institution["institution_id"], section) for section in SECTIONS]
    return hashlib.sha256(pickle.dumps((renderer, institution, data.years, rows), protocol=5)).hexdigest()


def _previous_site(reports_dir: Path) -> tuple[Path | None, dict[str, str]]:
    """The folder of the published site and its page fingerprints (none if unknown or unreadable)."""
    link = reports_dir / SITE_LINK
    if not link.is_symlink():
        return None, {}
    folder = reports_dir / os.readlink(link)
    try:
        return folder, json.loads((folder / FINGERPRINTS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return folder, {}


def render_site(published_db: Path, reports_dir: Path, plotly_js: str, reuse: bool = True) -> Site:
    """Write a new site into a new folder and swap the ``scorecards`` link to it; remove older folders. With
    ``reuse``, pages whose data did not change are hard-linked from the published site."""
    con = duckdb.connect(str(published_db), read_only=True)
    try:
        data = load(con)
    finally:
        con.close()
    reports_dir.mkdir(parents=True, exist_ok=True)
    generated_at = utc_now()
    stamp = generated_at.replace(":", "").replace("+", "_")  # folders sort by time: the last two are kept
    folder = reports_dir / f".scorecards-{stamp}-{os.getpid()}"
    env = _environment()
    n_charts = 0
    _write(folder / "assets" / "plotly.min.js", plotly_js)
    for asset in ("report.js", "report.css"):
        shutil.copyfile(HERE / "assets" / asset, folder / "assets" / asset)
    institutions = _records(data.institutions)
    regional = data.institutions.dropna(subset=["province_code", "province_name"])
    province_names = dict(zip(regional["province_code"], regional["province_name"], strict=True))
    for year in data.years:
        html, n = _national_page(data, year, env, generated_at, province_names)
        _write(folder / f"national-{year}.html", html)
        n_charts += n
    previous, known = _previous_site(reports_dir) if reuse else (None, {})
    fingerprints, rendered, renderer = {}, 0, _renderer_fingerprint()
    for inst in institutions:
        iid = inst["institution_id"]
        page = folder / "institutions" / page_name(iid)
        fingerprints[iid] = _fingerprint(data, inst, renderer)
        if previous is not None and known.get(iid) == fingerprints[iid] and _link(previous / page.relative_to(folder),
                                                                                  page):
            continue
        html, n = _institution_page(data, inst, env, generated_at)
        _write(page, html)
        n_charts += n
        rendered += 1
    _write(folder / FINGERPRINTS, json.dumps(fingerprints, sort_keys=True))
    latest = data.national_ranks.sort_values("year").groupby("institution_id").tail(1).set_index("institution_id")
    _write(folder / "index.html", env.get_template("index.html").render(
        root="", figures=[], years=data.years, generated_at=generated_at, institutions=[
            {**i, "index_value": latest["index_value"].get(i["institution_id"]),
             "predikat": latest["predikat"].get(i["institution_id"]),
             "year": latest["year"].get(i["institution_id"])} for i in institutions]))
    link = reports_dir / SITE_LINK
    tmp_link = reports_dir / f".{SITE_LINK}.link-{os.getpid()}"
    tmp_link.unlink(missing_ok=True)
    tmp_link.symlink_to(folder.name)
    if link.exists() and not link.is_symlink():  # a copy of the data dir turned the link into a folder
        os.rename(link, reports_dir / f".scorecards-{stamp}-copied")
    os.replace(tmp_link, link)  # atomic: a reader follows the old folder or the new one, never half of one
    # The previous site stays for a reader still on it; older ones go.
    for old in sorted(reports_dir.glob(".scorecards-*"))[:-2]:
        if old.name != folder.name:
            shutil.rmtree(old, ignore_errors=True)
    return Site(link, len(data.years), len(institutions), n_charts, rendered)


def _link(source: Path, target: Path) -> bool:
    """Hard-link an unchanged page of the previous site; False if that cannot be done (then it is rendered)."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(source, target)
        return True
    except OSError:
        return False


@dataclass(frozen=True)
class SingleFile:
    html: str
    institution_id: str
    year: int | None  # as of this year; None: every published year
    n_charts: int


def _unknown(institutions: pd.DataFrame, wanted: str) -> str:
    """Why there is no scorecard for ``wanted``, with the ids of institutions whose name or id contains it."""
    hits = institutions[institutions["name"].str.contains(wanted, case=False, regex=False)
                        | institutions["institution_id"].str.contains(wanted, case=False, regex=False)].head(8)
    hint = "".join(f"\n  {i} ({n})" for i, n in zip(hits["institution_id"], hits["name"], strict=True))
    return (f"no scorecard for institution id {wanted!r}: ids are Kemendagri codes (32.11) or slugs "
            "(kementerian-pertanian), as in dim_institution" + (f"; matching:{hint}" if hint else ""))


def single_file(con: duckdb.DuckDBPyConnection, institution_id: str, plotly_js: str,
                year: int | None = None) -> SingleFile:
    """One institution's scorecard as one HTML file that opens offline anywhere: the CSS and every script
    (plotly included) inlined, no link to another file. ``year``: as it stood after that year's results.
    Raises LookupError for an institution or a year the warehouse has no scorecard for."""
    data = load(con)
    match = data.institutions[data.institutions["institution_id"] == institution_id]
    if match.empty:
        raise LookupError(_unknown(data.institutions, institution_id))
    if year is not None:
        if year not in data.years:
            raise LookupError(f"no results published for {year}: years are {', '.join(map(str, data.years))}")
        data = as_of(data, year)
    asset = (HERE / "assets").joinpath
    standalone = {"css": inline(asset("report.css").read_text(encoding="utf-8"), "style"),
                  "scripts": [inline(plotly_js, "script"), inline(asset("report.js").read_text(encoding="utf-8"),
                                                                         "script")]}
    html, n_charts = _institution_page(data, _records(match)[0], _environment(), utc_now(), standalone, year)
    return SingleFile(html, institution_id, year, n_charts)
