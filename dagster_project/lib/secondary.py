"""Parsing a secondary release: SPBE results quoted by news, regional and ministry pages, one row per
institution and year, each with the pages it came from.

Such a row is evidence, not the decree: it may give an index, a predikat or both, sometimes the four domain
indices, and names the institution as the page wrote it. Values are kept as printed; the derived columns
(institution id and how it was matched, decimals printed, formula residual, predikat consistency) are added
for validation and never overwrite a printed value. The GX suite ``secondary_results`` judges them.
"""

from __future__ import annotations

import re

import pandas as pd

from dagster_project.lib.framework import (
    DOMAIN_COLUMNS,
    FRAMEWORK_2020,
    domain_weights,
    framework_domain_columns,
    framework_for_year,
    predikat_bands,
    predikat_consistency,
)
from dagster_project.lib.registry import Registry
from dagster_project.lib.releases import read_csv_cells
from dagster_project.lib.values import whole_numbers

# File header -> lake column. Every column of the file is kept.
SECONDARY_COLUMNS = {
    "year": "year",
    "institution_id": "given_institution_id",
    "institution_name": "institution_name",
    "category": "category",
    "index": "index_value",
    "predikat": "predikat",
    "d1_kebijakan": "policy_index",
    "d2_tata_kelola": "governance_index",
    "d3_manajemen": "management_index",
    "d4_layanan": "services_index",
    "source_url": "source_urls",
    "notes": "notes",
}
REQUIRED_COLUMNS = ("year", "institution_name", "index", "predikat", "source_url")
NUMERIC_COLUMNS = ("index_value", *DOMAIN_COLUMNS)
URL_SEPARATOR = " | "  # several pages for one row: "https://a/... | https://b/..."
_URL = re.compile(r"https?://[^\s|]+")


def read_secondary_csv(content: bytes, file_name: str) -> pd.DataFrame:
    """The file's text cells; fails with the rule that was broken."""
    return read_csv_cells(content, file_name, REQUIRED_COLUMNS)


def printed_decimals(cell: str | None) -> int | None:
    """How many decimals a number was printed with ("2.6" -> 1, "3.84" -> 2, "3" -> 0)."""
    if cell is None or not re.fullmatch(r"-?\d+(?:[.,]\d+)?", cell):
        return None
    return len(re.split(r"[.,]", cell)[1]) if re.search(r"[.,]", cell) else 0


def invalid_urls(cell: str | None) -> str | None:
    """The parts of a source_url cell that are not an http(s) address, or None when every part is one."""
    if not cell:
        return None  # no source at all: its own rule
    parts = [p.strip() for p in cell.split(URL_SEPARATOR.strip())]
    bad = [p for p in parts if not _URL.fullmatch(p)]
    return ", ".join(repr(p) for p in bad) or None


def normalize_secondary(raw: pd.DataFrame, release_year: int, registry: Registry) -> pd.DataFrame:
    """Rename to lake columns, type the numbers, match institutions and add the validation columns."""
    df = raw.rename(columns=SECONDARY_COLUMNS).reindex(columns=list(SECONDARY_COLUMNS.values()), fill_value="")
    df = df.apply(lambda s: s.astype(str).str.strip()).replace({"": None})
    df.insert(0, "row_number", range(1, len(df) + 1))  # 1-based data row, header excluded
    # Decimals as printed, before typing: "2.6" is a value known to one decimal, not 2.60.
    df["index_decimals"] = pd.array([printed_decimals(c) for c in df["index_value"]], dtype="Int64")

    unparseable: list[list[str]] = [[] for _ in range(len(df))]
    df["year"], bad_year = whole_numbers(df["year"], 10_000)
    for i in bad_year.to_numpy().nonzero()[0]:
        unparseable[i].append("year")
    for col in NUMERIC_COLUMNS:  # a decimal comma ("3,84") is how Indonesian pages print numbers
        text = df[col].str.replace(",", ".", regex=False)
        numbers = pd.to_numeric(text, errors="coerce")
        for i in (df[col].notna() & numbers.isna()).to_numpy().nonzero()[0]:
            unparseable[i].append(col)
        df[col] = numbers
    df["unparseable_values"] = [", ".join(u) or None for u in unparseable]
    df["has_value"] = df["index_value"].notna() | df["predikat"].notna()
    df["invalid_source_urls"] = [invalid_urls(c) for c in df["source_urls"]]

    framework = framework_for_year(release_year)
    # A domain the year's framework does not have (Manajemen before 2021) would be read on another scale.
    foreign = [c for c in DOMAIN_COLUMNS if c not in framework_domain_columns(framework)]
    df["domains_outside_framework"] = [", ".join(c for c in foreign if pd.notna(row[c])) or None
                                       for _, row in df[foreign].iterrows()] if foreign else None
    # The domain formula is that of PermenPANRB 59/2020; the 2018 framework published no weights.
    complete = df[list(DOMAIN_COLUMNS)].notna().all(axis=1) & df["index_value"].notna()
    complete &= framework == FRAMEWORK_2020
    weighted = sum(df[c] * w for c, w in zip(DOMAIN_COLUMNS, domain_weights(), strict=True))
    df["formula_residual"] = (df["index_value"] - weighted).round(4).where(complete)
    bands = predikat_bands(framework)  # none for the 2018 framework: nothing to compare with
    df["predikat_consistency"] = [
        predikat_consistency(None if pd.isna(v) else float(v), p, bands)
        for v, p in zip(df["index_value"], df["predikat"], strict=True)
    ]
    df["year_matches_release"] = df["year"].eq(release_year).fillna(False).astype(bool)
    matches = [registry.match_quoted(n, i) for n, i in zip(df["institution_name"], df["given_institution_id"],
                                                           strict=True)]
    df["institution_id"] = [m[0] for m in matches]
    df["matched_by"] = [m[1] if m[0] else None for m in matches]
    df["unmatched_reason"] = [None if m[0] else m[1] for m in matches]
    df["framework"] = framework
    return df

