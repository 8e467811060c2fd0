"""The SPBE framework facts, read from the reference tables: domain weights and predikat bands.

The reference CSVs in ``data/reference/`` are the one place these numbers live; nothing here repeats them.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from dagster_project.paths import REFERENCE_DIR

FRAMEWORK_2020 = "PermenPANRB 59/2020"
# Column names of the four domain indices in an official release, in domain order 1-4.
DOMAIN_COLUMNS = ("policy_index", "governance_index", "management_index", "services_index")


def _read(name: str, reference_dir: Path | None) -> list[dict[str, str]]:
    with open((reference_dir or REFERENCE_DIR) / name, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@cache
def domain_weights(reference_dir: Path | None = None) -> tuple[float, ...]:
    """Domain weights of PermenPANRB 59/2020 as fractions, in domain order (0.13, 0.25, 0.165, 0.455)."""
    rows = [r for r in _read("spbe_domain_aspek_permen59_2020.csv", reference_dir) if r["level"] == "domain"]
    rows.sort(key=lambda r: int(r["no"]))
    return tuple(float(r["bobot_pct"]) / 100 for r in rows)


@cache
def domain_names(reference_dir: Path | None = None) -> tuple[str, ...]:
    """Official domain names of PermenPANRB 59/2020, in domain order."""
    rows = [r for r in _read("spbe_domain_aspek_permen59_2020.csv", reference_dir) if r["level"] == "domain"]
    return tuple(r["nama"] for r in sorted(rows, key=lambda r: int(r["no"])))


@cache
def framework_for_year(year: int, reference_dir: Path | None = None) -> str:
    """The evaluation framework of a year, from the national series ("PermenPANRB 5/2018" before 2021).

    A year after the series ends keeps the latest framework until the reference says otherwise.
    """
    series = sorted((int(r["tahun"]), r["kerangka"]) for r in _read("spbe_indeks_nasional.csv", reference_dir))
    known = [f for y, f in series if y <= year] or [series[0][1]]
    return next((f for f in _INDICATOR_FILES if known[-1].startswith(f)), known[-1])


def complete_domains(frame, reference_dir: Path | None = None):
    """A copy of ``frame`` (index_value and the four DOMAIN_COLUMNS) where a row missing exactly one domain
    gets it back-solved from the index formula, clamped to 1-5; rows missing more keep their gaps."""
    weights = dict(zip(DOMAIN_COLUMNS, domain_weights(reference_dir), strict=True))
    out = frame.copy()
    for col in DOMAIN_COLUMNS:
        rest = [c for c in DOMAIN_COLUMNS if c != col]
        solved = ((frame["index_value"] - sum(frame[c].fillna(0) * weights[c] for c in rest)) / weights[col])
        out[col] = frame[col].fillna(solved.clip(1, 5).where(frame[rest].notna().all(axis=1)))
    return out


FRAMEWORK_2018 = "PermenPANRB 5/2018"
_INDICATOR_FILES = {FRAMEWORK_2020: "spbe_indikator_permen59_2020.csv",
                    FRAMEWORK_2018: "spbe_indikator_permen5_2018.csv"}


@dataclass(frozen=True)
class Indicator:
    number: int
    domain: str
    weight_pct: float | None  # None under 5/2018: no weights were published
    domain_no: int | None  # 1-4 under 59/2020


@cache
def indicators(framework: str, reference_dir: Path | None = None) -> tuple[Indicator, ...]:
    """The indicators of a framework, in number order; empty for a framework without an indicator table."""
    if framework not in _INDICATOR_FILES:
        return ()
    rows = _read(_INDICATOR_FILES[framework], reference_dir)
    return tuple(sorted(
        (Indicator(int(r["indikator_no"]), r["domain_nama"],
                   float(r["bobot_indikator_pct"]) if r["bobot_indikator_pct"] else None,
                   int(r["domain_no"]) if r.get("domain_no") else None) for r in rows),
        key=lambda i: i.number))


@cache
def framework_domain_columns(framework: str, reference_dir: Path | None = None) -> tuple[str, ...]:
    """The DOMAIN_COLUMNS a framework has a domain for, by the domain names of its indicator table: all four
    under PermenPANRB 59/2020; under 5/2018 (no Manajemen domain) three. A value in another column is not of
    that framework's scale."""
    names = {i.domain for i in indicators(framework, reference_dir)}
    return tuple(c for c, n in zip(DOMAIN_COLUMNS, domain_names(reference_dir), strict=True) if n in names)


@dataclass(frozen=True)
class Band:
    predikat: str
    lower: float  # inclusive
    upper: float
    upper_inclusive: bool

    def contains(self, value: float) -> bool:
        return self.lower <= value and (value <= self.upper if self.upper_inclusive else value < self.upper)


@cache
def predikat_bands(framework: str = FRAMEWORK_2020, reference_dir: Path | None = None) -> tuple[Band, ...]:
    """Bands of one framework, lowest first; empty when the reference has none (PermenPANRB 5/2018).

    The bands table names its source table after the framework ("PermenPANRB 59/2020 (Tabel 13)").
    """
    bands = [
        Band(r["predikat"], float(r["batas_bawah_inklusif"]), float(r["batas_atas"]),
             r["batas_atas_inklusif"].strip().lower() == "true")
        for r in _read("spbe_predikat.csv", reference_dir)
        if r["framework"].split(" (")[0] == framework
    ]
    return tuple(sorted(bands, key=lambda b: b.lower))


def predikat_for(value: float, bands: tuple[Band, ...]) -> str | None:
    """The predikat of an index value, or None outside every band."""
    return next((b.predikat for b in bands if b.contains(value)), None)


def band_position(predikat: str, bands: tuple[Band, ...]) -> int | None:
    """0 for the lowest band, rising; None for an unknown predikat."""
    names = [b.predikat for b in bands]
    return names.index(predikat) if predikat in names else None


def predikat_consistency(index_2dp: float | None, published: str | None, bands: tuple[Band, ...]) -> str | None:
    """How a published predikat relates to the band of its 2-decimal index.

    The predikat is assigned on the *unrounded* index, so a value published as 3.50 may really be 3.496
    and carry "Baik". That is ``band_edge_below``: one band below, and the 2-decimal value sits exactly on
    the lower bound of its band. Anything else that disagrees is ``inconsistent``.
    """
    if index_2dp is None or not published or not bands:
        return None
    # Below the lowest band's bound (an index under 1, as published once) is still the lowest band.
    expected = bands[0].predikat if index_2dp < bands[0].lower else predikat_for(index_2dp, bands)
    if expected == published:
        return "consistent"
    exp_pos, pub_pos = band_position(expected, bands) if expected else None, band_position(published, bands)
    if exp_pos is not None and pub_pos == exp_pos - 1 and round(index_2dp, 2) == bands[exp_pos].lower:
        return "band_edge_below"
    return "inconsistent"
