"""Secondary releases: SPBE results before 2023 quoted by news, regional and ministry pages, on the bundled files
(matching names to the registry, each validation rule, landing through the release source over real HTTP)."""

import hashlib
import json

import duckdb
import pandas as pd
import pytest

from dagster_project.lib.datasets import SECONDARY, TIER_DATASETS
from dagster_project.lib.dbt_project import project_graph
from dagster_project.lib.framework import FRAMEWORK_2018, FRAMEWORK_2020
from dagster_project.lib.ingest import land_release, release_is_current
from dagster_project.lib.quality import validate_frame
from dagster_project.lib.registry import load_registry, normalize_quoted_name
from dagster_project.lib.secondary import normalize_secondary, read_secondary_csv
from dagster_project.lib.sources import RELEASE_TIERS, ReleaseSourceError, SourceConfig, list_releases
from dagster_project.paths import BUNDLED_RELEASES_DIR
from tests.local_http import LocalServer, static

HEADER = "year,institution_name,category,index,predikat,d1_kebijakan,d2_tata_kelola,d3_manajemen,d4_layanan," \
         "source_url,notes"
URL = "https://example.go.id/berita/spbe"


def secondary(year: int) -> pd.DataFrame:
    path = BUNDLED_RELEASES_DIR / "secondary" / f"spbe_{year}.csv"
    return normalize_secondary(read_secondary_csv(path.read_bytes(), path.name), year, load_registry())


def rows(*lines: str, year: int = 2022) -> pd.DataFrame:
    content = "\n".join([HEADER, *lines]).encode()
    return normalize_secondary(read_secondary_csv(content, "quoted.csv"), year, load_registry())


def failed_rules(df: pd.DataFrame) -> dict[str, tuple[str, int]]:
    report = validate_frame(df, SECONDARY.name, list(SECONDARY.id_columns))
    return {f.label: (f.severity, f.unexpected_count) for f in report.failed}


@pytest.fixture(scope="module")
def bundled():
    return {year: secondary(year) for year in (2019, 2021, 2022)}


def test_names_as_sources_write_them_match_the_registry(bundled):
    reg = load_registry()
    assert reg.match_quoted("Provinsi DKI Jakarta") == ("31", "name")
    assert reg.match_quoted("Pemkab Sumedang") == reg.match_quoted("Kab. Sumedang") == ("32.11", "name")
    assert reg.match_quoted("Kota Manado")[0] == "71.71"
    assert reg.match_quoted("Badan Pusat Statistik (BPS)") == ("badan-pusat-statistik", "name")
    # Two confirmed earlier names, added as aliases: HAM is Hak Asasi Manusia; the ministry of education's name
    # in 2021-2022 (published in 2023 as Kementerian Pendidikan dan Kebudayaan).
    assert reg.match_quoted("Kementerian Hukum dan HAM")[0] == "kementerian-hukum-dan-hak-asasi-manusia"
    assert reg.match_quoted("Kementerian Pendidikan, Kebudayaan, Riset, dan Teknologi")[0] == \
        "kementerian-pendidikan-dan-kebudayaan"
    assert reg.match_quoted("anything", "32.11") == ("32.11", "id")
    assert normalize_quoted_name("Pemerintah Provinsi DIY") == "provinsi daerah istimewa yogyakarta"
    # Every bundled row matches but one, LAPAN (merged into BRIN in 2021; not in the registry): reported.
    unmatched = pd.concat(bundled.values()).query("institution_id.isna()")
    assert unmatched[["institution_name", "unmatched_reason"]].values.tolist() == [
        ["Lembaga Penerbangan dan Antariksa Nasional (LAPAN)", "name not in the registry or its aliases"]]


def test_an_unknown_name_or_id_is_reported_never_guessed():
    reg = load_registry()
    assert reg.match_quoted("Kabupaten Fiktif") == (None, "name not in the registry or its aliases")
    assert reg.match_quoted("Kabupaten Sumedang", "99.99") == (None, "unknown registry id '99.99'")
    assert reg.match_quoted("") == (None, "no institution name")
    # A name several institutions would share is never resolved to one of them.
    shared = reg.__class__(reg.ids, reg.kemendagri_codes, reg.alias_to_id, {**reg.quoted_to_id, "kota x": None})
    assert shared.match_quoted("Kota X") == (None, "name shared by several institutions")


def test_the_bundled_files_pass_with_warnings_only(bundled):
    assert [len(df) for df in bundled.values()] == [6, 37, 59]
    assert failed_rules(bundled[2019]) == {}
    assert failed_rules(bundled[2021]) == {"expect_column_values_to_not_be_null(institution_id)": ("warning", 1)}
    assert failed_rules(bundled[2022]) == {"expect_column_values_to_not_be_in_set(index_decimals)": ("warning", 2)}
    one_decimal = bundled[2022].query("index_decimals == 1")
    assert sorted(one_decimal["institution_name"]) == ["Kabupaten Lumajang", "Kabupaten Purbalingga"]
    # The two rows with four domains reproduce their index with the 59/2020 weights.
    complete = bundled[2022].dropna(subset=["formula_residual"])
    assert sorted(complete["institution_name"]) == ["Kabupaten Luwu Utara", "Kabupaten Magelang"]


def test_each_framework_comes_from_the_year(bundled):
    assert set(bundled[2019]["framework"]) == {FRAMEWORK_2018}
    assert set(bundled[2021]["framework"]) == set(bundled[2022]["framework"]) == {FRAMEWORK_2020}
    # 2019 predikat are kept as printed; there are no 2018-framework bands to judge them by.
    assert bundled[2019]["predikat"].notna().sum() == 3 and bundled[2019]["predikat_consistency"].isna().all()


@pytest.mark.parametrize(("line", "rule", "severity"), [
    (f"2022,Kabupaten Sumedang,kabupaten,5.40,,,,,,{URL},", "expect_column_values_to_be_between(index_value)",
     "critical"),
    (f"2022,Kabupaten Sumedang,kabupaten,0.95,,,,,,{URL},", "expect_column_values_to_be_between(index_value)",
     "critical"),
    (f"2022,Kabupaten Sumedang,kabupaten,3.84,Sedang,,,,,{URL},", "expect_column_values_to_be_in_set(predikat)",
     "critical"),
    (f"2022,Kabupaten Sumedang,kabupaten,tiga,Baik,,,,,{URL},", "expect_column_values_to_be_null(unparseable_values)",
     "critical"),
    ("2022,Kabupaten Sumedang,kabupaten,3.84,,,,,,,", "expect_column_values_to_not_be_null(source_urls)", "critical"),
    ("2022,Kabupaten Sumedang,kabupaten,3.84,,,,,,bisnis.com/sumedang,",
     "expect_column_values_to_be_null(invalid_source_urls)", "critical"),
    (f"2022,Kabupaten Sumedang,kabupaten,,,,,,,{URL},", "expect_column_values_to_be_in_set(has_value)", "critical"),
    (f"2021,Kabupaten Sumedang,kabupaten,3.84,,,,,,{URL},", "expect_column_values_to_be_in_set(year_matches_release)",
     "critical"),
    # index 3.00 against 0.13*3 + 0.25*3 + 0.165*3 + 0.455*4 = 3.455: the formula does not hold
    (f"2022,Kabupaten Sumedang,kabupaten,3.00,,3,3,3,4,{URL},",
     "expect_column_values_to_be_between(formula_residual)", "critical"),
    (f"2022,Kabupaten Sumedang,kabupaten,3.84,Cukup,,,,,{URL},",
     "expect_column_values_to_be_in_set(predikat_consistency)", "warning"),
    (f"2022,Kabupaten Sumedang,kabupaten,3.8,,,,,,{URL},", "expect_column_values_to_not_be_in_set(index_decimals)",
     "warning"),
    (f"2022,Kabupaten Fiktif,kabupaten,3.84,,,,,,{URL},", "expect_column_values_to_not_be_null(institution_id)",
     "warning"),
])
def test_each_rule_names_its_row(line, rule, severity):
    good = f"2022,Kota Manado,kota,2.41,Cukup,,,,,{URL} | {URL}/2,"
    assert failed_rules(rows(good)) == {}
    failed = failed_rules(rows(good, line))
    assert failed.pop(rule) == (severity, 1)
    # A label outside the official set is also no band's: only that rule is critical.
    assert failed in ({}, {"expect_column_values_to_be_in_set(predikat_consistency)": ("warning", 1)}), failed


def test_a_domain_the_years_framework_lacks_is_refused():
    """2019 was scored under PermenPANRB 5/2018: Kebijakan, Tata Kelola and Layanan, no Manajemen domain. A value
    given for it would be read on the 59/2020 scale as if they were one."""
    good = f"2019,Kabupaten Banyuwangi,kabupaten,3.41,,3.2,3.1,,3.6,{URL},"
    assert failed_rules(rows(good, year=2019)) == {}
    bad = rows(good, f"2019,Kabupaten Sragen,kabupaten,2.75,,2.5,2.6,2.1,2.9,{URL},", year=2019)
    outside = bad["domains_outside_framework"]
    assert outside.isna().tolist() == [True, False] and outside.iloc[1] == "management_index"
    assert failed_rules(bad) == {"expect_column_values_to_be_null(domains_outside_framework)": ("critical", 1)}


def test_two_sources_that_disagree_are_both_kept_and_the_conflict_flagged():
    df = rows(f"2022,Kabupaten Sumedang,kabupaten,3.84,,,,,,{URL},",
              f"2022,Pemkab Sumedang,kabupaten,3.86,,,,,,{URL}/b,")
    assert failed_rules(df) == {"expect_compound_columns_to_be_unique": ("warning", 2)}
    assert df["index_value"].tolist() == [3.84, 3.86]


def test_a_value_printed_with_a_decimal_comma_is_read_and_kept_as_printed():
    df = rows(f'2022,Kabupaten Sumedang,kabupaten,"3,84",Sangat Baik,,,,,{URL},')
    assert df["index_value"].tolist() == [3.84] and df["index_decimals"].tolist() == [2]
    assert failed_rules(df) == {}


def test_no_ranking_group_or_target_mart_reads_secondary_rows():
    """Tier separation by construction: nothing that ranks, groups or measures a target is downstream of the
    secondary lake (fct_index, fct_trends and the comparisons carry them, marked). Measured too: a build with and
    one without the secondary releases publish identical rankings, groups and targets (EXCEPT ALL both ways)."""
    graph = project_graph()
    downstream = {graph.nodes[u].name for u in graph.descendants(["source.spbe_monitor.lake.secondary_results"])}
    official_only = {"fct_rankings", "agg_groups", "fct_target_gap", "fct_target_steps", "fct_rank_uncertainty",
                     "fct_mentors", "fct_improvement_priorities", "int_index_series", "int_official_index_by_scope"}
    assert official_only <= {n.name for n in graph.of_type("model")}
    assert {"fct_index", "fct_trends", "fct_tier_comparison", "fct_secondary_unmatched"} <= downstream
    assert not downstream & official_only


def test_the_manifest_names_each_entry_tier_and_the_source_lists_both():
    assert set(TIER_DATASETS) == set(RELEASE_TIERS)
    entries = list_releases(SourceConfig(location=str(BUNDLED_RELEASES_DIR)))
    assert [e.key for e in entries] == ["2023", "2024", "secondary-2019", "secondary-2021", "secondary-2022"]
    doc = {"releases": [{"year": 2021, "url": "a.csv", "tier": "rumour"}]}
    with pytest.raises(ReleaseSourceError, match="tier 'rumour'"), LocalServer() as server:
        server.routes["/manifest.json"] = static(json.dumps(doc).encode(), content_type="application/json")
        list_releases(SourceConfig(kind="http", location=f"{server.url}/manifest.json"))


def test_a_secondary_release_arrives_over_http_and_lands_apart(data_dir):
    body = (BUNDLED_RELEASES_DIR / "secondary" / "spbe_2022.csv").read_bytes()
    sha = hashlib.sha256(body).hexdigest()
    doc = {"releases": [{"year": 2022, "tier": "secondary", "url": "files/kutipan_2022.csv", "sha256": sha}]}
    with LocalServer() as server:
        server.routes["/manifest.json"] = static(json.dumps(doc).encode(), content_type="application/json")
        server.routes["/files/kutipan_2022.csv"] = static(body, etag='"v1"')
        cfg = SourceConfig(kind="http", location=f"{server.url}/manifest.json", retries=1, backoff_seconds=0.01)
        (entry,) = list_releases(cfg)
        assert not release_is_current(data_dir, entry)
        landed = land_release(cfg, entry, data_dir)
        assert (landed.dataset, landed.status, landed.rows, landed.year) == ("secondary_results", "loaded", 59, 2022)
        assert "index_decimals 1" in landed.reason  # the warnings reach the ingest log
        assert release_is_current(data_dir, entry)
        assert land_release(cfg, entry, data_dir).status == "duplicate"
    (lake_file,) = (data_dir.lake / "secondary_results" / "year=2022").glob("*.parquet")
    assert duckdb.sql("select count(*) from read_parquet(?)", params=[str(lake_file)]).fetchall() == [(59,)]
    assert (data_dir.archive / f"{sha}.csv").read_bytes() == body
    assert not (data_dir.lake / "official_results").exists()
