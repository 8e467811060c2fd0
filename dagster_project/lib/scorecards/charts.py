"""Plotly figures for the scorecards, as plain figure specs (data + layout) that plotly.js draws in the page.

Plain dicts, not ``plotly.graph_objects``: validating 2,000 figures through graph_objects costs far more than
rendering the pages; tests/test_scorecards.py validates every figure of a page through graph_objects instead.
"""

from __future__ import annotations

import math

import pandas as pd

from dagster_project.lib.framework import DOMAIN_COLUMNS, domain_names, predikat_bands

# Band colours, best first: a sequential green-to-red scale readable in print.
PREDIKAT_COLOURS = {"Memuaskan": "#1a9850", "Sangat Baik": "#91cf60", "Baik": "#d9ef8b", "Cukup": "#fc8d59",
                    "Kurang": "#d73027"}
INDEX_COLOUR, TARGET_COLOUR, MUTED = "#2c3e91", "#c0392b", "#7f8c8d"
DOMAIN_COLOURS = ("#8e44ad", "#16a085", "#d35400", "#2980b9")


def _layout(title: str, **extra) -> dict:
    layout = {"title": {"text": title, "x": 0, "font": {"size": 15}}, "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
              "height": 360, "font": {"family": "system-ui, sans-serif", "size": 12}, "hovermode": "closest",
              "plot_bgcolor": "#ffffff", "paper_bgcolor": "#ffffff",
              "legend": {"orientation": "h", "y": -0.2}}
    layout.update(extra)
    return layout


# Where a trace carries text from the data: plotly draws these as its own HTML subset (<b>, <br>, <a href>) and
# decodes entities, so "&", "<" and ">" written as entities show as themselves.
_DATA_TEXT = ("x", "y", "text", "name", "customdata")
_ENTITIES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def literal(figure: dict) -> dict:
    """``figure`` with every string of the data shown as written (hover templates and titles are ours)."""
    def text(value):
        if isinstance(value, str):
            return value.translate(_ENTITIES)
        return [text(v) for v in value] if isinstance(value, list) else value

    return {**figure, "data": [{k: text(v) if k in _DATA_TEXT else v for k, v in trace.items()}
                               for trace in figure["data"]]}


def _values(series: pd.Series) -> list:
    """JSON-ready values: NaN becomes null (a gap in the line), numpy scalars become Python ones."""
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) else
            (v.item() if hasattr(v, "item") else v) for v in series.tolist()]


def predikat_distribution(groups: pd.DataFrame, year: int) -> dict:
    national = groups[(groups["year"] == year) & (groups["group_type"] == "national")]
    names = list(PREDIKAT_COLOURS)
    counts = [int(national[f"n_{p.lower().replace(' ', '_')}"].sum()) for p in names]
    return {"data": [{"type": "bar", "x": names, "y": counts, "text": counts, "textposition": "outside",
                      "marker": {"color": [PREDIKAT_COLOURS[p] for p in names]},
                      "hovertemplate": "%{x}: %{y} institutions<extra></extra>"}],
            "layout": _layout(f"Institutions per predikat, {year}", yaxis={"title": {"text": "institutions"}})}


def ranking_with_intervals(rows: list[dict], title: str) -> dict:
    """Median rank with the 5th-95th percentile interval, and the published rank, one row per entry (each with
    name, published_rank, rank_p5, rank_p50, rank_p95), drawn best at the top."""
    rows = rows[::-1]
    labels = [r["name"] for r in rows]
    return {"data": [
        {"type": "scatter", "mode": "markers", "name": "median rank, 5th-95th percentile", "y": labels,
         "x": [r["rank_p50"] for r in rows], "marker": {"color": MUTED, "size": 7},
         "error_x": {"type": "data", "symmetric": False, "array": [r["rank_p95"] - r["rank_p50"] for r in rows],
                     "arrayminus": [r["rank_p50"] - r["rank_p5"] for r in rows], "color": MUTED, "thickness": 2},
         "hovertemplate": "%{y}: median %{x}<extra></extra>"},
        {"type": "scatter", "mode": "markers", "name": "published rank", "y": labels,
         "x": [r["published_rank"] for r in rows], "marker": {"color": INDEX_COLOUR, "symbol": "diamond", "size": 9},
         "hovertemplate": "%{y}: published rank %{x}<extra></extra>"},
    ], "layout": _layout(title, height=max(320, 22 * len(rows) + 140), margin={"l": 260, "r": 20, "t": 50, "b": 100},
                         xaxis={"title": {"text": "rank (1 = highest index)"}, "rangemode": "tozero"},
                         yaxis={"automargin": True},
                         # below the axis title whatever the chart's height: placed on the whole figure
                         legend={"orientation": "h", "yref": "container", "y": 0.01, "yanchor": "bottom"})}


def group_means(groups: pd.DataFrame, year: int, group_type: str, labels: dict[str, str], national: float | None,
                title: str) -> dict:
    rows = groups[(groups["year"] == year) & (groups["group_type"] == group_type)].sort_values("mean_index")
    names = [labels.get(v, v) for v in rows["group_value"]]
    shapes = [] if national is None else [{"type": "line", "x0": national, "x1": national, "yref": "paper",
                                           "y0": 0, "y1": 1, "line": {"color": TARGET_COLOUR, "dash": "dot"}}]
    return {"data": [{"type": "bar", "orientation": "h", "y": names, "x": _values(rows["mean_index"]),
                      "marker": {"color": INDEX_COLOUR}, "customdata": _values(rows["n_institutions"]),
                      "hovertemplate": "%{y}: mean %{x:.2f} over %{customdata} institutions<extra></extra>"}],
            "layout": _layout(title, height=max(300, 18 * len(rows) + 110), shapes=shapes,
                              margin={"l": 200, "r": 20, "t": 50, "b": 50},
                              xaxis={"title": {"text": "mean index (dotted: national mean)"}, "range": [0, 5]})}


def trend_against_targets(trend: pd.DataFrame, targets: pd.DataFrame) -> dict:
    data = []
    for (entity_type, entity_id), rows in trend.groupby(["entity_type", "entity_id"], sort=True):
        name = "published national index" if entity_type == "national_published" else f"mean of {entity_id}"
        data.append({"type": "scatter", "mode": "lines+markers", "name": name, "x": _values(rows["year"]),
                     "y": _values(rows["index_value"]),
                     "line": {"color": INDEX_COLOUR if entity_type == "national_published" else None}})
    for subject, rows in targets.groupby("subject_id", sort=True):
        label = "national targets" if subject == "indonesia" else f"target for the {subject} average"
        data.append({"type": "scatter", "mode": "markers", "name": label, "x": _values(rows["target_year"]),
                     "y": _values(rows["target_value"]), "text": _values(rows["target_id"]),
                     "marker": {"symbol": "star" if subject != "indonesia" else "x", "size": 12,
                                "color": TARGET_COLOUR},
                     "hovertemplate": "%{text}: %{y} by %{x}<extra></extra>"})
    return {"data": data, "layout": _layout("Index over time against targets",
                                            yaxis={"title": {"text": "index"}, "range": [1, 5]},
                                            xaxis={"dtick": 1})}


BASIS_MARKERS = {"published_series": ("published national series", "circle"),
                 "quoted": ("quoted by a page", "diamond-open"),
                 "computed": ("computed from the official results", "square"),
                 "target_baseline": ("target baseline", "star-open"), "target": ("target", "star")}


def national_story(story: pd.DataFrame) -> dict:
    """The national index since 2018 and the regional (pemda) average against its target, each point of each
    basis apart, its source on hover (fct_national_story)."""
    data = []
    series = [("national", "national_index", INDEX_COLOUR, "national index"),
              ("pemda", "mean_index", TARGET_COLOUR, "regional (pemda) average")]
    for scope, metric, colour, label in series:
        rows = story[(story["scope"] == scope) & (story["metric"] == metric)]
        for basis, (basis_label, symbol) in BASIS_MARKERS.items():
            part = rows[rows["basis"] == basis].sort_values("year")
            if part.empty:
                continue
            data.append({"type": "scatter", "mode": "lines+markers" if basis == "published_series" else "markers",
                         "name": f"{label}: {basis_label}", "x": _values(part["year"]), "y": _values(part["value"]),
                         "text": _values(part["source"]), "hovertemplate": "%{x}: %{y}<br>%{text}<extra></extra>",
                         "line": {"color": colour}, "marker": {"symbol": symbol, "size": 11, "color": colour}})
    return {"data": data, "layout": _layout("The national story: index since 2018, regional average against its "
                                            "target", yaxis={"title": {"text": "index"}, "range": [1, 5]},
                                            xaxis={"dtick": 1}, height=420)}


def share_baik_or_better(story: pd.DataFrame) -> dict:
    """The share of institutions rated Baik or better per year and scope, where known, each bar of one basis."""
    rows = story[story["metric"] == "share_baik_or_better"].sort_values(["scope", "basis", "year"])
    data = [{"type": "bar", "name": f"{scope} ({BASIS_MARKERS[basis][0]})", "x": _values(part["year"]),
             "y": _values(part["value"]), "text": _values(part["source"]), "textposition": "none",
             "hovertemplate": "%{x}: %{y} %<br>%{text}<extra></extra>"}
            for (scope, basis), part in rows.groupby(["scope", "basis"], sort=True)]
    return {"data": data, "layout": _layout("Share of institutions rated Baik or better, where known",
                                            yaxis={"title": {"text": "percent"}, "range": [0, 100]},
                                            xaxis={"dtick": 1}, barmode="group")}


def _column(rows: list[dict], key: str) -> list:
    return [r[key] for r in rows]


def index_and_domains(index: list[dict], computed: list[dict], secondary: list[dict] = ()) -> dict:
    years = _column(index, "year")
    data = [{"type": "scatter", "mode": "lines+markers", "name": "Indeks SPBE (official)", "x": years,
             "y": _column(index, "index_value"), "line": {"color": INDEX_COLOUR, "width": 4}}]
    for column, name, colour in zip(DOMAIN_COLUMNS, domain_names(), DOMAIN_COLOURS, strict=True):
        data.append({"type": "scatter", "mode": "lines+markers", "name": name, "x": years,
                     "y": _column(index, column), "line": {"color": colour, "dash": "dot"}})
    final = [r for r in computed if r["stage"] == "final"]
    if final:
        data.append({"type": "scatter", "mode": "markers", "name": "computed from submitted final levels",
                     "x": _column(final, "year"), "y": _column(final, "index_value"),
                     "marker": {"symbol": "circle-open", "size": 12, "color": INDEX_COLOUR}})
    quoted = [r for r in secondary if r["index_value"] is not None]
    if quoted:  # before (or beside) the decree: marked apart, the source named on hover and listed below the chart
        data.append({"type": "scatter", "mode": "markers", "name": "quoted by a page (secondary)",
                     "x": _column(quoted, "year"), "y": _column(quoted, "index_value"),
                     "text": [f"secondary: {r['source_urls']}" for r in quoted], "hoverinfo": "x+y+text",
                     "marker": {"symbol": "diamond-open", "size": 12, "color": MUTED}})
    bands = [{"type": "rect", "xref": "paper", "x0": 0, "x1": 1, "y0": b.lower, "y1": b.upper, "layer": "below",
              "fillcolor": PREDIKAT_COLOURS.get(b.predikat, "#eeeeee"), "opacity": 0.12, "line": {"width": 0}}
             for b in predikat_bands()]
    return {"data": data, "layout": _layout("Index and domains over time (shaded: predikat bands)", shapes=bands,
                                            yaxis={"title": {"text": "index"}, "range": [0, 5]},
                                            xaxis={"dtick": 1})}


SCOPE_LABELS = {"national": "national", "government_level": "pusat / pemda", "category": "category",
                "province": "province", "cohort": "cohort", "previous_predikat": "same predikat last year"}


def rank_intervals(ranks: list[dict], year: int) -> dict:
    rows = [{**r, "name": f"{SCOPE_LABELS.get(r['scope'], r['scope'])}: {r['scope_value']} (of {r['n']})"}
            for r in ranks if r["year"] == year]
    figure = ranking_with_intervals(rows, f"Rank in every scope, {year}, with its 90% interval")
    figure["layout"]["margin"]["l"] = 280
    return figure


def target_path(index: list[dict], targets: list[dict]) -> dict:
    data = [{"type": "scatter", "mode": "lines+markers", "name": "official index", "x": _column(index, "year"),
             "y": _column(index, "index_value"), "line": {"color": INDEX_COLOUR, "width": 3}}]
    for t in targets:
        data.append({"type": "scatter", "mode": "markers", "name": f"target {t['target_id']}",
                     "x": [t["target_year"]], "y": [t["target_value"]],
                     "marker": {"symbol": "star", "size": 14, "color": TARGET_COLOUR}})
        if t["projected_value"] is not None and t["latest_year"] is not None:
            data.append({"type": "scatter", "mode": "lines", "name": f"projection ({t['target_id']})",
                         "x": [t["latest_year"], t["target_year"]], "y": [t["latest_value"], t["projected_value"]],
                         "line": {"color": MUTED, "dash": "dash"}})
    return {"data": data, "layout": _layout("Gap to targets", yaxis={"title": {"text": "index"}, "range": [1, 5]},
                                            xaxis={"dtick": 1})}


def verification_gap(verification: list[dict], year: int) -> dict:
    rows = [r for r in verification if r["year"] == year]
    indicators, names = _column(rows, "indicator"), _column(rows, "indicator_name")
    return {"data": [
        {"type": "bar", "name": "self-assessed level", "x": indicators, "y": _column(rows, "self_assessed_level"),
         "marker": {"color": "#f39c12"}, "text": names, "hovertemplate": "%{x}. %{text}: %{y}<extra>self</extra>"},
        {"type": "bar", "name": "final level", "x": indicators, "y": _column(rows, "final_level"),
         "marker": {"color": INDEX_COLOUR}, "text": names, "hovertemplate": "%{x}. %{text}: %{y}<extra>final</extra>"},
    ], "layout": _layout(f"Self-assessed vs final level per indicator, {year}", barmode="group",
                         xaxis={"title": {"text": "indicator"}, "dtick": 1}, yaxis={"range": [0, 5.2]})}
