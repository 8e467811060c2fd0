"""Reference tables as frames, and the structural rules GX cannot express per row.

GX suites (``expectations/reference_*.json``) check each table's columns and values; the rules here check
the tables against each other: weights add up, bands are contiguous, codes resolve, targets point at
something that exists. Each rule returns the offending rows, empty when it holds.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from dagster_project.lib.reference_files import REFERENCE_SUITES, REFERENCE_TABLES, STRUCTURE_CHECK
from dagster_project.lib.submissions import STAGES
from dagster_project.paths import REFERENCE_DIR

# Code columns stay text: "32.10" is not 32.1.
_TEXT = {"kode_kemendagri": str, "kode_provinsi": str, "kode_kemendagri_nodot": str, "kode_bps_2020": str,
         "institution_id": str, "kemendagri_code": str, "province_code": str, "subject_id": str}

TOLERANCE = 1e-6


def load_reference(reference_dir: Path | None = None) -> dict[str, pd.DataFrame]:
    ref = reference_dir or REFERENCE_DIR
    return {name: pd.read_csv(ref / file, dtype=_TEXT, keep_default_na=True, encoding="utf-8")
            for name, file in REFERENCE_TABLES.items()}


@dataclass(frozen=True)
class RuleResult:
    rule: str
    description: str
    failures: list[dict]

    @property
    def passed(self) -> bool:
        return not self.failures


def _weights_sum(t: dict[str, pd.DataFrame]) -> list[dict]:
    ind = t["indicators"]
    out = []
    for fw, g in ind.groupby("framework"):
        if abs(g["bobot_indikator_pct"].sum() - 100) > TOLERANCE:
            out.append({"framework": fw, "level": "framework", "sum": g["bobot_indikator_pct"].sum(), "expected": 100})
    pemdi = t["indicators_pemdi"]
    if abs(pemdi["bobot_indikator_pct"].sum() - 100) > TOLERANCE:
        out.append({"framework": "Pemdi", "level": "framework", "sum": pemdi["bobot_indikator_pct"].sum(),
                    "expected": 100})
    for k, g in pemdi.groupby("aspek_no"):
        if abs(g["bobot_indikator_pct"].sum() - g["bobot_aspek_pct"].iloc[0]) > TOLERANCE:
            out.append({"framework": "Pemdi", "level": "aspect", "number": int(k),
                        "sum": g["bobot_indikator_pct"].sum(), "expected": float(g["bobot_aspek_pct"].iloc[0])})
    for level, key, weight in (("aspect", "aspek_no", "bobot_aspek_pct"), ("domain", "domain_no", "bobot_domain_pct")):
        for k, g in ind.groupby(key):
            if abs(g["bobot_indikator_pct"].sum() - g[weight].iloc[0]) > TOLERANCE:
                out.append({"level": level, "number": int(k), "sum": g["bobot_indikator_pct"].sum(),
                            "expected": float(g[weight].iloc[0])})
    da = t["domains_aspects"]
    for level in ("domain", "aspek"):
        total = da.loc[da["level"] == level, "bobot_pct"].sum()
        if abs(total - 100) > TOLERANCE:
            out.append({"level": f"{level} table", "sum": total, "expected": 100})
    for scenario, g in t["weighting_scenarios"].groupby("scenario_id"):
        if sorted(g["domain_no"]) != [1, 2, 3, 4] or abs(g["weight_pct"].sum() - 100) > 0.01 + TOLERANCE:
            out.append({"level": "weighting scenario", "scenario_id": scenario, "domains": sorted(g["domain_no"]),
                        "sum": g["weight_pct"].sum(), "expected": "domains 1-4 summing to 100"})
    if t["indicators_2018"]["bobot_indikator_pct"].notna().any():
        out.append({"level": "PermenPANRB 5/2018", "detail": "weights present, but none were published"})
    return out


def _bands_contiguous(t: dict[str, pd.DataFrame]) -> list[dict]:
    out = []
    for fw, g in t["predikat_bands"].groupby("framework"):
        g = g.sort_values("batas_bawah_inklusif")
        lows, highs = g["batas_bawah_inklusif"].tolist(), g["batas_atas"].tolist()
        for i in range(len(g) - 1):
            if abs(highs[i] - lows[i + 1]) > TOLERANCE:
                out.append({"framework": fw, "band": g["predikat"].iloc[i], "upper": highs[i],
                            "next_lower": lows[i + 1]})
        if lows[0] != 1.0 or highs[-1] != 5.0 or not bool(g["batas_atas_inklusif"].iloc[-1]):
            out.append({"framework": fw, "detail": "bands must cover 1.0-5.0 with an inclusive top"})
    return out


def _codes_unique(t: dict[str, pd.DataFrame]) -> list[dict]:
    out = []
    for table, col in (("institutions", "institution_id"), ("provinces", "kode_kemendagri"),
                       ("regencies", "kode_kemendagri"), ("institution_aliases", "alias"),
                       ("targets", "target_id")):
        dup = t[table][t[table][col].duplicated(keep=False)]
        out += [{"table": table, "column": col, "value": v} for v in sorted(set(dup[col]))]
    return out


def _codes_resolve(t: dict[str, pd.DataFrame]) -> list[dict]:
    provinces = set(t["provinces"]["kode_kemendagri"])
    ids = set(t["institutions"]["institution_id"])
    out = [{"table": "regencies", "code": r.kode_kemendagri, "province_code": r.kode_provinsi}
           for r in t["regencies"].itertuples() if r.kode_provinsi not in provinces]
    out += [{"table": "institutions", "institution_id": r.institution_id, "province_code": r.province_code}
            for r in t["institutions"].itertuples() if pd.notna(r.province_code) and r.province_code not in provinces]
    out += [{"table": "institution_aliases", "institution_id": r.institution_id}
            for r in t["institution_aliases"].itertuples() if r.institution_id not in ids]
    out += [{"table": "cohorts", "cohort_id": r.cohort_id, "institution_id": r.institution_id}
            for r in t["cohorts"].itertuples() if r.institution_id not in ids]
    twice = t["cohorts"][t["cohorts"].duplicated(["cohort_id", "institution_id"])]
    out += [{"table": "cohorts", "cohort_id": r.cohort_id, "institution_id": r.institution_id,
             "detail": "member listed twice"} for r in twice.drop_duplicates().itertuples()]
    regions = set(t["regencies"]["kode_kemendagri"]) | provinces
    pemda = t["institutions"][t["institutions"]["government_level"] == "pemda"]
    out += [{"table": "regions", "kemendagri_code": c, "detail": "region missing from the registry"}
            for c in sorted(regions - set(pemda["kemendagri_code"]))]
    return out


def _targets_resolve(t: dict[str, pd.DataFrame]) -> list[dict]:
    inst = t["institutions"]
    subjects = {
        "national": {"indonesia"},
        "government_level": set(inst["government_level"]),
        "category": set(inst["category"]),
        "province": set(t["provinces"]["kode_kemendagri"]),
        "institution": set(inst["institution_id"]),
    }
    out = [{"target_id": r.target_id, "subject_type": r.subject_type, "subject_id": r.subject_id}
           for r in t["targets"].itertuples() if r.subject_id not in subjects.get(r.subject_type, set())]
    out += [{"target_id": r.target_id, "detail": "baseline_year and baseline_value must be given together"}
            for r in t["targets"].itertuples() if pd.isna(r.baseline_year) != pd.isna(r.baseline_value)]
    # The national series carries the national targets too: the two files must agree.
    published = t["national_index"].dropna(subset=["target_nasional"]).set_index("tahun")["target_nasional"]
    national = t["targets"][t["targets"]["subject_type"] == "national"].set_index("target_year")["target_value"]
    out += [{"year": int(y), "targets.csv": float(national[y]), "spbe_indeks_nasional.csv": float(v)}
            for y, v in published.items() if y in national.index and abs(national[y] - v) > TOLERANCE]
    return out


AGGREGATE_METRICS = {"national_index": "index", "mean_index": "index", "share_baik_or_better": "percent",
                     "share_baik": "percent", "n_evaluated": "count", "n_sangat_baik": "count", "n_baik": "count",
                     "n_cukup": "count", "n_kurang": "count", "n_below_2_6": "count"}


def _aggregates_agree(t: dict[str, pd.DataFrame]) -> list[dict]:
    a = t["published_aggregates"]
    out = [{"year": int(r.year), "metric": r.metric, "unit": r.unit, "detail": "unknown metric, or not its unit"}
           for r in a.itertuples() if AGGREGATE_METRICS.get(r.metric) != r.unit]
    out += [{"year": int(r.year), "metric": r.metric, "detail": "no source_url"} for r in a.itertuples()
            if not str(r.source_url).startswith(("https://", "http://"))]
    # A quoted national index is the national series' figure for that year: the two files must agree.
    series = t["national_index"].set_index("tahun")["indeks_spbe_nasional"]
    quoted = a[(a["metric"] == "national_index") & (a["scope"] == "national")]
    out += [{"year": int(r.year), "spbe_published_aggregates.csv": float(r.value),
             "spbe_indeks_nasional.csv": float(series.get(r.year, float("nan")))}
            for r in quoted.itertuples() if not abs(series.get(r.year, float("nan")) - float(r.value)) <= TOLERANCE]
    return out


def _windows_valid(t: dict[str, pd.DataFrame]) -> list[dict]:
    w = t["submission_windows"]
    out = [{"year": int(r.year), "stage": r.stage, "detail": "unknown stage"} for r in w.itertuples()
           if r.stage not in STAGES]
    out += [{"year": int(r.year), "stage": r.stage, "detail": "opens after it closes"} for r in w.itertuples()
            if pd.Timestamp(r.opens) > pd.Timestamp(r.closes)]
    out += [{"year": int(y), "stage": s, "detail": "window listed twice"}
            for (y, s), n in w.groupby(["year", "stage"]).size().items() if n > 1]
    return out


RULES = (
    ("weights_sum_to_100", "Indicator weights of each framework sum to 100, and to their aspect and domain weights; "
                           "each weighting scenario gives domains 1-4 weights summing to 100",
     _weights_sum),
    ("bands_contiguous", "Predikat bands of each framework are contiguous and cover 1.0-5.0", _bands_contiguous),
    ("codes_unique", "Ids and codes are unique in every reference table", _codes_unique),
    ("codes_resolve", "Every province, alias, cohort member and region code resolves; every region is in the "
                      "registry; a cohort lists a member once",
     _codes_resolve),
    ("targets_resolve", "Every target names an existing subject and a whole baseline (year and value, or neither); "
                        "national targets agree with the series",
     _targets_resolve),
    ("aggregates_agree", "Published aggregates name a known metric in its unit and a source URL; a quoted national "
                         "index agrees with the national series",
     _aggregates_agree),
    ("windows_valid", "Submission windows name a known stage, open before they close, once per year and stage",
     _windows_valid),
)


def check_reference(tables: dict[str, pd.DataFrame]) -> list[RuleResult]:
    return [RuleResult(name, desc, fn(tables)) for name, desc, fn in RULES]



@dataclass(frozen=True)
class CheckOutcome:
    """One reference check: a GX suite on one table, or the cross-table rules."""

    name: str
    passed: bool
    description: str
    failed: list[dict]  # GX: failed rules with sample rows; structure: {rule, description, failures}


def reference_fingerprint() -> str:
    """What a verdict on the reference tables depends on: the tables, their suites and these rules."""
    from dagster_project.lib.quality import suite_path

    h = hashlib.sha256()
    files = [*(REFERENCE_DIR / f for f in sorted(REFERENCE_TABLES.values())),
             *(suite_path(s) for s in sorted(REFERENCE_SUITES)), Path(__file__)]
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def validate_reference(state_dir: Path) -> tuple[list[CheckOutcome], bool]:
    """Every reference check, and whether the verdict was reached now (False: the stored verdict for the
    same tables, suites and rules was reused; GX is not even imported then)."""
    from dagster_project.lib.archive import write_atomically
    from dagster_project.lib.quality import validate_frame

    stored = state_dir / "reference_verdict.json"
    fingerprint = reference_fingerprint()
    try:
        verdict = json.loads(stored.read_text(encoding="utf-8"))
        if verdict["fingerprint"] == fingerprint:
            return [CheckOutcome(**o) for o in verdict["outcomes"]], False
    except (OSError, ValueError, KeyError, TypeError):
        pass
    tables = load_reference()
    outcomes = []
    for suite, table in REFERENCE_SUITES.items():
        report = validate_frame(tables[table], suite, [tables[table].columns[0]])
        outcomes.append(CheckOutcome(suite, report.passed, report.reason(), [asdict(f) for f in report.failed]))
    rules = check_reference(tables)
    broken = [r for r in rules if not r.passed]
    outcomes.append(CheckOutcome(
        STRUCTURE_CHECK, not broken,
        "; ".join(f"{r.rule}: {len(r.failures)} problems" for r in broken) or "all rules hold",
        [{"rule": r.rule, "description": r.description, "failures": r.failures[:20]} for r in rules if not r.passed]))
    write_atomically(stored, json.dumps({"fingerprint": fingerprint, "outcomes": [asdict(o) for o in outcomes]},
                                        default=str).encode())
    return outcomes, True
