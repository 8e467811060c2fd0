"""Parsing and validating official releases, on the real 2023 and 2024 results."""

import pandas as pd
import pytest

from dagster_project.lib.ingest import RELEASES
from dagster_project.lib.quality import validate_frame
from dagster_project.lib.registry import load_registry
from dagster_project.lib.releases import (
    FORMULA_TOLERANCE,
    ReleaseFormatError,
    normalize_release,
    read_release_csv,
)
from dagster_project.paths import BUNDLED_RELEASES_DIR

SUITE, ID_COLUMNS = RELEASES.name, list(RELEASES.id_columns)


def release(year: int) -> pd.DataFrame:
    path = BUNDLED_RELEASES_DIR / f"spbe_results_{year}.csv"
    return normalize_release(read_release_csv(path.read_bytes(), path.name), year, load_registry())


@pytest.fixture(scope="module")
def releases():
    return {2023: release(2023), 2024: release(2024)}


def test_every_published_institution_is_matched(releases):
    assert len(releases[2023]) == 621 and len(releases[2024]) == 615
    for df in releases.values():
        assert df["institution_id"].notna().all()
        assert not df.duplicated(["institution_id", "year"]).any()


def test_domain_formula_holds_for_every_complete_official_row(releases):
    for df in releases.values():
        complete = df["formula_residual"].notna()
        assert complete.sum() == len(df) - df["missing_values"].notna().sum()
        assert df.loc[complete, "formula_residual"].abs().max() <= FORMULA_TOLERANCE


def test_three_band_edge_rows_keep_their_published_predikat(releases):
    edge = releases[2024][releases[2024]["predikat_consistency"] == "band_edge_below"]
    assert sorted(zip(edge["institution_name"], edge["index_value"], edge["predikat"], strict=True)) == [
        ("Pemerintah Kab. Luwu", 2.6, "Cukup"),
        ("Pemerintah Kab. Nias Barat", 1.8, "Kurang"),
        ("Pemerintah Kab. Pacitan", 3.5, "Baik"),
    ]
    assert (releases[2023]["predikat_consistency"] == "consistent").all()


def test_missing_domains_stay_missing_and_flagged(releases):
    flagged = releases[2024].dropna(subset=["missing_values"])
    assert sorted(flagged["institution_name"]) == [
        "Kementerian Energi dan Sumber Daya Mineral", "Kementerian Pertanian", "Pemerintah Provinsi Jawa Timur"]
    assert flagged["policy_index"].isna().all() and flagged["index_value"].notna().all()


def test_real_releases_pass_the_suite_with_warnings_only(releases):
    report = validate_frame(releases[2024], SUITE, ID_COLUMNS)
    assert report.passed
    assert sorted(f.column for f in report.warnings) == ["missing_values", "predikat_consistency"]
    report_2023 = validate_frame(releases[2023], SUITE, ID_COLUMNS)
    assert report_2023.passed
    # Kab. Banyuasin 2023 published a services index of 0.3: kept, flagged as a warning.
    (below_one,) = report_2023.warnings
    assert below_one.column == "services_index"
    assert below_one.sample_rows[0]["institution_name"] == "Pemerintah Kab. Banyuasin"


def test_each_broken_rule_is_named_with_its_rows(releases):
    bad = releases[2024].copy()
    bad.loc[0, "institution_id"] = None                # unknown institution
    bad.loc[1, "predikat"] = "Luar Biasa"               # not a predikat
    bad.loc[2, "formula_residual"] = 0.2                # domain formula broken
    bad.loc[3, "index_value"] = 7.5                     # out of range
    bad.loc[4, "predikat_consistency"] = "inconsistent"  # predikat far from its band
    bad = pd.concat([bad, bad.iloc[[10]]], ignore_index=True)  # (institution, year) twice
    report = validate_frame(bad, SUITE, ID_COLUMNS)
    assert not report.passed
    failed = {(f.expectation, f.column): f for f in report.errors}
    assert ("expect_column_values_to_not_be_null", "institution_id") in failed
    assert ("expect_column_values_to_be_in_set", "predikat") in failed
    assert ("expect_column_values_to_be_between", "formula_residual") in failed
    assert ("expect_column_values_to_be_between", "index_value") in failed
    assert ("expect_column_values_to_be_in_set", "predikat_consistency") in failed
    assert ("expect_compound_columns_to_be_unique", None) in failed
    unknown = failed[("expect_column_values_to_not_be_null", "institution_id")]
    assert unknown.sample_rows[0]["institution_name"] == bad.loc[0, "institution_name"]
    assert unknown.sample_rows[0]["row_number"] == 1


def test_rows_of_another_year_are_rejected():
    path = BUNDLED_RELEASES_DIR / "spbe_results_2023.csv"
    df = normalize_release(read_release_csv(path.read_bytes(), path.name), 2024, load_registry())
    report = validate_frame(df, SUITE, ID_COLUMNS)
    assert [f.column for f in report.errors] == ["year_matches_release"]


def test_unparseable_numbers_are_flagged_not_silently_dropped():
    path = BUNDLED_RELEASES_DIR / "spbe_results_2024.csv"
    text = path.read_text(encoding="utf-8").replace(",4.77,Memuaskan", ",empat,Memuaskan", 1)
    df = normalize_release(read_release_csv(text.encode(), "x.csv"), 2024, load_registry())
    row = df[df["unparseable_values"].notna()]
    assert row["unparseable_values"].tolist() == ["index_value"]
    assert not validate_frame(df, SUITE, ID_COLUMNS).passed


@pytest.mark.parametrize(("content", "rule"), [
    (b"\xff\xfe\x00garbage", "utf8_encoding"),
    (b"tahun_evaluasi,nama_instansi\n2024,x\n", "required_columns"),
    (b"", "csv_readable"),
])
def test_unreadable_files_name_the_file_and_the_rule(content, rule):
    with pytest.raises(ReleaseFormatError) as e:
        read_release_csv(content, "hasil.csv")
    assert e.value.rule == rule and "hasil.csv" in str(e.value)


def test_semicolon_csv_with_bom_is_read():
    path = BUNDLED_RELEASES_DIR / "spbe_results_2024.csv"
    original = pd.read_csv(path, dtype=str, keep_default_na=False)
    content = "\ufeff" + original.to_csv(sep=";", index=False)
    df = normalize_release(read_release_csv(content.encode(), "x.csv"), 2024, load_registry())
    assert len(df) == 615 and df["institution_id"].notna().all()
