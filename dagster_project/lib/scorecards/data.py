"""The marts a scorecard shows, read once from the published warehouse and split per institution.

One query per mart (not per page): 620 institution pages come from about a dozen queries. Each section of a
page shows the one query that reproduces it (``Section.sql_for``), runnable as is in the DuckDB CLI.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import duckdb
import pandas as pd


@dataclass(frozen=True)
class Section:
    columns: str
    table: str
    where: str = ""
    order: str = ""
    id_column: str = "institution_id"

    def sql_for(self, institution_id: str) -> str:
        """The query an analyst runs for one institution (the id is a registry id, shown as a literal)."""
        where = " and ".join(w for w in (f"{self.id_column} = '{institution_id}'", self.where) if w)
        return f"select {self.columns}\nfrom {self.table}\nwhere {where}" + (f"\norder by {self.order}" if self.order
                                                                              else "")

    def bulk_sql(self) -> str:
        return (f"select {self.id_column} as _institution_id, {self.columns} from {self.table}"  # noqa: S608
                + (f" where {self.where}" if self.where else "") + (f" order by {self.order}" if self.order else ""))


SECTIONS = {
    "index": Section("year, index_value, predikat, policy_index, governance_index, management_index, services_index",
                     "fct_index", "source = 'official'", "year"),
    "computed": Section("year, stage, index_value, coverage", "fct_index", "source = 'computed'", "year, stage"),
    # Values quoted by news, regional and ministry pages (source_tier secondary), each with its pages.
    "secondary": Section("year, index_value, predikat, index_decimals, source_urls, source_note", "fct_index",
                         "source_tier = 'secondary'", "year, source_row_number"),
    "ranks": Section("year, scope, scope_value, published_rank, rank_p5, rank_p50, rank_p95, n, tied_group_size",
                     "fct_rank_uncertainty", "", "year, scope, scope_value"),
    "targets": Section("target_id, applies_as, target_value, target_year, latest_year, latest_value, gap, "
                       "required_annual_gain, projected_value, status, source_status",
                       "fct_target_gap", "subject_type = 'institution'", "applies_as, target_id", "subject_id"),
    "steps": Section("target_id, basis, year, stage, step_no, item_type, item_no, item_name, from_value, to_value, "
                     "gain, index_after, n_steps, is_reachable", "fct_target_steps", "",
                     "target_id, basis, step_no"),
    "priorities": Section("year, basis, stage, priority_rank, item_type, item_no, item_name, current_value, "
                          "gain_per_step, steps_available", "fct_improvement_priorities", "priority_rank <= 10",
                          "year desc, basis, priority_rank, item_no"),
    "verification": Section("year, indicator, indicator_name, self_assessed_level, final_level, over_claim",
                            "fct_verification_gap", "", "year, indicator"),
    "mentors": Section("year, peer_scope, peer_group, item_type, item_no, item_name, own_value, peer_median, "
                       "mentor_name, mentor_value, advantage", "fct_mentors", "mentor_rank = 1",
                       "year desc, advantage desc, peer_scope, item_no"),
    "methodology": Section("year, basis, methodology_id, index_as_published, index_rescored, rank_as_published, "
                           "rank_rescored, rank_difference", "fct_methodology_comparison", "",
                           "year, basis desc, methodology_id"),
}


@dataclass(frozen=True)
class ScorecardData:
    institutions: pd.DataFrame
    per_institution: dict[str, dict[str, list[dict]]]  # plain records: 620 pages of pandas indexing is slow
    years: list[int]
    groups: pd.DataFrame  # agg_groups, every year
    national_ranks: pd.DataFrame  # fct_rank_uncertainty, national scope, with names, index and predikat
    trend: pd.DataFrame  # fct_trends: the published national series and the government-level means
    national_targets: pd.DataFrame
    story: pd.DataFrame  # fct_national_story: every figure since 2018 with its basis and source

    def of(self, institution_id: str, section: str) -> list[dict]:
        return self.per_institution.get(institution_id, {}).get(section, [])


NATIONAL_RANKS_SQL = """select u.year, u.institution_id, d.name, u.published_rank, u.rank_p5, u.rank_p50, u.rank_p95,
       u.tied_group, u.tied_group_size, u.n, r.index_value, r.predikat
from fct_rank_uncertainty u
join dim_institution d using (institution_id)
join fct_rankings r using (institution_id, year, scope, scope_value)
where u.scope = 'national'"""
TREND_SQL = """select entity_type, entity_id, entity_name, year, index_value from fct_trends
where entity_type in ('national_published', 'government_level')"""
STORY_SQL = """select year, scope, metric, value, unit, basis, source, source_url from fct_national_story"""
NATIONAL_TARGETS_SQL = """select target_id, subject_type, subject_id, target_year, target_value, latest_value, status
from fct_target_gap where subject_type in ('national', 'government_level')"""


def load(con: duckdb.DuckDBPyConnection) -> ScorecardData:
    institutions = con.execute("""
        select institution_id, name, category, government_level, province_code, province_name
        from dim_institution where n_years_evaluated > 0 order by institution_id
    """).df()
    per: dict[str, dict[str, list[dict]]] = {}
    for name, section in SECTIONS.items():
        cursor = con.execute(section.bulk_sql())
        columns = [d[0] for d in cursor.description]
        for row in cursor.fetchall():  # NULL arrives as None
            record = dict(zip(columns, row, strict=True))
            per.setdefault(record.pop("_institution_id"), {}).setdefault(name, []).append(record)
    return ScorecardData(
        institutions=institutions,
        per_institution=per,
        years=[int(y) for (y,) in con.execute("select distinct year from agg_groups order by year").fetchall()],
        groups=con.execute("select * from agg_groups order by year, group_type, mean_index desc").df(),
        national_ranks=con.execute(NATIONAL_RANKS_SQL + " order by u.year, u.published_rank, d.name").df(),
        trend=con.execute(TREND_SQL + " order by entity_type, entity_id, year").df(),
        national_targets=con.execute(NATIONAL_TARGETS_SQL + " order by target_year, target_id").df(),
        story=con.execute(STORY_SQL + " order by metric, scope, year, basis").df(),
    )


def as_of(data: ScorecardData, year: int) -> ScorecardData:
    """The scorecards as they stood after ``year``'s results: rows of later years left out. A target's gap is
    measured from its latest published year, so it stays only if that year is not later; the national targets
    stay (each is about a year to come)."""
    def kept(section: str, row: dict) -> bool:
        row_year = row["latest_year"] if section == "targets" else row["year"]
        return row_year is None or row_year <= year

    return replace(
        data,
        per_institution={iid: {section: [r for r in rows if kept(section, r)] for section, rows in sections.items()}
                         for iid, sections in data.per_institution.items()},
        years=[y for y in data.years if y <= year],
        groups=data.groups[data.groups["year"] <= year],
        national_ranks=data.national_ranks[data.national_ranks["year"] <= year],
        trend=data.trend[data.trend["year"] <= year],
        story=data.story[(data.story["year"] <= year) | data.story["basis"].eq("target")],
    )
