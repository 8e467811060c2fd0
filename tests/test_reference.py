"""Reference tables: GX suites and cross-table rules pass on the real tables and catch broken copies."""

import pandas as pd
import pytest

from dagster_project.lib.quality import validate_frame
from dagster_project.lib.reference import REFERENCE_SUITES, check_reference, load_reference


@pytest.fixture
def tables():
    return load_reference()


def test_all_rules_hold_on_the_bundled_reference(tables):
    assert [r.rule for r in check_reference(tables) if not r.passed] == []


@pytest.mark.parametrize("suite", sorted(REFERENCE_SUITES))
def test_reference_suites_pass(tables, suite):
    table = tables[REFERENCE_SUITES[suite]]
    report = validate_frame(table, suite, [table.columns[0]])
    assert report.passed, report.reason()


def broken(tables, rule):
    return next(r for r in check_reference(tables) if r.rule == rule)


def test_weights_that_do_not_sum_to_100_are_caught(tables):
    tables["indicators"].loc[0, "bobot_indikator_pct"] += 0.5
    result = broken(tables, "weights_sum_to_100")
    assert not result.passed and {f["level"] for f in result.failures} >= {"framework", "aspect", "domain"}


def test_a_gap_between_bands_is_caught(tables):
    bands = tables["predikat_bands"]
    bands.loc[bands["predikat"].eq("Baik") & bands["framework"].str.contains("59/2020"), "batas_bawah_inklusif"] = 2.7
    assert broken(tables, "bands_contiguous").failures[0]["band"] == "Cukup"


def test_duplicate_codes_are_caught(tables):
    tables["regencies"].loc[1, "kode_kemendagri"] = tables["regencies"].loc[0, "kode_kemendagri"]
    assert broken(tables, "codes_unique").failures == [
        {"table": "regencies", "column": "kode_kemendagri", "value": "11.01"}]


def test_targets_must_point_at_existing_subjects(tables):
    tables["targets"].loc[0, "subject_id"] = "99.99"
    tables["targets"].loc[0, "subject_type"] = "institution"
    assert broken(tables, "targets_resolve").failures[0]["subject_id"] == "99.99"


def test_a_baseline_needs_both_year_and_value(tables):
    tables["targets"].loc[0, "baseline_year"] = 2021
    tables["targets"].loc[0, "baseline_value"] = None
    failure = broken(tables, "targets_resolve").failures[0]
    assert failure["target_id"] == tables["targets"].loc[0, "target_id"] and "together" in failure["detail"]


def test_national_targets_must_agree_with_the_published_series(tables):
    targets = tables["targets"]
    targets.loc[targets["target_id"] == "national-2024", "target_value"] = 3.0
    assert broken(tables, "targets_resolve").failures == [
        {"year": 2024, "targets.csv": 3.0, "spbe_indeks_nasional.csv": 2.85}]


def test_a_quoted_national_index_must_agree_with_the_series_and_every_figure_names_its_source(tables):
    aggregates = tables["published_aggregates"]
    national = (aggregates["metric"] == "national_index") & (aggregates["year"] == 2021)
    aggregates.loc[national, "value"] = 2.42
    aggregates.loc[aggregates.index[1], "source_url"] = "sindonews"
    aggregates.loc[aggregates.index[2], "unit"] = "percent"
    assert broken(tables, "aggregates_agree").failures == [
        {"year": 2019, "metric": "mean_index", "unit": "percent", "detail": "unknown metric, or not its unit"},
        {"year": 2019, "metric": "mean_index", "detail": "no source_url"},
        {"year": 2021, "spbe_published_aggregates.csv": 2.42, "spbe_indeks_nasional.csv": 2.24}]


def test_sumedang_2025_target_is_in_the_editable_targets_file(tables):
    row = tables["targets"].set_index("target_id").loc["sumedang-2025"]
    assert (row["subject_id"], row["target_year"], row["target_value"]) == ("32.11", 2025, 4.6)


def test_gx_suite_flags_a_broken_registry(tables):
    reg = tables["institutions"]
    reg.loc[0, "government_level"] = "pusat-daerah"
    reg.loc[1, "institution_id"] = reg.loc[2, "institution_id"]
    report = validate_frame(reg, "reference_institutions", ["institution_id"])
    assert {(f.expectation, f.column) for f in report.errors} == {
        ("expect_column_values_to_be_in_set", "government_level"),
        ("expect_column_values_to_be_unique", "institution_id"),
    }


def test_a_cohort_member_must_exist_and_be_listed_once(tables):
    cohorts = tables["cohorts"]
    extra = pd.DataFrame([{**cohorts.iloc[0].to_dict(), "institution_id": "99.99"}, cohorts.iloc[0].to_dict()])
    tables["cohorts"] = pd.concat([cohorts, extra], ignore_index=True)
    failures = broken(tables, "codes_resolve").failures
    assert {"table": "cohorts", "cohort_id": cohorts.iloc[0]["cohort_id"], "institution_id": "99.99"} in failures
    assert any(f.get("detail") == "member listed twice" for f in failures)


def test_a_weighting_scenario_must_cover_four_domains_summing_to_100(tables):
    scenarios = tables["weighting_scenarios"]
    scenarios.loc[scenarios["scenario_id"].eq("equal_domains") & scenarios["domain_no"].eq(4), "weight_pct"] = 30
    failures = broken(tables, "weights_sum_to_100").failures
    assert [f["scenario_id"] for f in failures if f.get("level") == "weighting scenario"] == ["equal_domains"]


def test_the_unverified_pemdi_weights_are_checked_too(tables):
    tables["indicators_pemdi"].loc[0, "bobot_indikator_pct"] += 1
    failures = broken(tables, "weights_sum_to_100").failures
    assert {f["level"] for f in failures if f.get("framework") == "Pemdi"} == {"framework", "aspect"}
