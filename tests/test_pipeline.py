"""The whole pipeline, materialized for real with Dagster on the bundled releases, and its published file."""

import hashlib
import json
import shutil

import dagster as dg

from dagster_project.defs.resources import DataDirResource, ReleaseSourceResource
from dagster_project.defs.sensors import RETRY_AFTER_SECONDS, release_source_sensor
from dagster_project.defs.update import RELEASE_SUITE, RELEASE_WARNINGS, STEP, run_config
from dagster_project.lib.ingest_log import read_lines
from dagster_project.lib.sources import source_config_from_env
from dagster_project.paths import BUNDLED_DATA_DIR, BUNDLED_RELEASES_DIR
from tests.conftest import run_update

MARTS = {"dim_institution", "dim_indicator", "fct_index", "fct_rankings", "fct_trends", "fct_target_gap",
         "fct_ingest_log", "agg_groups", "fct_national_reconciliation", "fct_indicator_levels",
         "fct_submission_revisions", "fct_aspect_index", "fct_verification_gap", "fct_window_completeness",
         "fct_work_unit_index", "fct_improvement_priorities", "fct_target_steps", "fct_rank_uncertainty",
         "fct_mentors", "dim_methodology", "fct_methodology_comparison", "fct_secondary_unmatched",
         "fct_tier_comparison", "fct_national_story"}
SAMPLES = sorted((BUNDLED_DATA_DIR / "samples").glob("*.json"))


def test_full_materialization_publishes_every_mart(built_warehouse, published):
    paths, result = built_warehouse
    assert result.success
    # One run landed, built every model, published and wrote the reports.
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert MARTS | {"official_release", "secondary_release", "submission_files", "ingest_log", "reference_tables",
                    "published_warehouse", "scorecards", "validation_results", "dbt_docs"} <= materialized
    checks = result.get_asset_check_evaluations()
    assert len(checks) > 50
    # Every check passed but the releases' warning-level rules (test_release_checks_pass_with_the_expected_...;
    # the secondary ones: tests/test_secondary.py).
    assert [c.check_name for c in checks if not c.passed] == [RELEASE_WARNINGS, "secondary_results_warnings"]
    tables = {r[0] for r in published.execute("select table_name from duckdb_tables()").fetchall()}
    assert tables == MARTS | {"publish_manifest"}
    manifest = json.loads(paths.published_manifest.read_text())
    assert set(manifest["tables"]) == MARTS
    # No work-unit (OPD) files are bundled: that mart fills when regions send them (tests/test_inbox.py).
    assert all(t["rows"] > 0 for name, t in manifest["tables"].items() if name != "fct_work_unit_index")
    assert manifest["run_id"] == result.run_id
    assert manifest["inputs"]["files_loaded"] == {"official_results": 2, "secondary_results": 3,
                                                  "submissions": len(SAMPLES)}
    assert manifest["log_position"] == manifest["inputs"]["log_position"] == len(read_lines(paths.ingest_log))


def test_release_checks_pass_with_the_expected_warnings(built_warehouse):
    _, result = built_warehouse
    evals = {e.check_name: e for e in result.get_asset_check_evaluations()
             if e.asset_key == dg.AssetKey("official_release")}
    assert evals[RELEASE_SUITE].passed
    warnings = evals[RELEASE_WARNINGS]
    assert not warnings.passed and warnings.severity == dg.AssetCheckSeverity.WARN
    rows = warnings.metadata["failing_rows"].value
    assert {r["column"] for r in rows if r["year"] == 2024} == {"missing_values", "predikat_consistency"}
    assert {r["year"] for r in rows} == {2023, 2024}


def test_the_longer_history_is_kept_apart_from_the_official_series(published):
    """As an analyst asks it: Sumedang's path from 2021, which values we hold for 2021 and from where, the name
    nobody could match, and rankings that read the decree only."""
    sumedang = published.execute("select year, index_value, source_tier, source_urls is not null from fct_index "
                                 "where institution_id = '32.11' and source <> 'computed' order by year").fetchall()
    assert sumedang == [(2021, 3.52, "secondary", True), (2022, 3.84, "secondary", True),
                        (2023, 4.14, "official", False), (2024, 4.51, "official", False)]
    trend = published.execute("select year, source_tier, direction from fct_trends where entity_type = "
                              "'institution' and entity_id = '32.11' order by year").fetchall()
    assert trend == [(2021, "secondary", None), (2022, "secondary", None), (2023, "official", "first"),
                     (2024, "official", "up")]  # quoted points beside the trend, never in its change
    held_2021 = published.execute("select source_tier, count(*), count(index_value), bool_and(source_urls like "
                                  "'https://%') from fct_index where year = 2021 group by all").fetchall()
    assert held_2021 == [("secondary", 36, 34, True)]  # 37 rows quoted, one unmatched
    assert published.execute("select year, published_name, unmatched_reason from fct_secondary_unmatched").fetchall() \
        == [(2021, "Lembaga Penerbangan dan Antariksa Nasional (LAPAN)", "name not in the registry or its aliases")]
    # A secondary predikat is the one printed, never derived from the bands (Sumedang 2022 printed none).
    assert published.execute("select predikat from fct_index where institution_id = '32.11' and year = 2022") \
        .fetchall() == [(None,)]
    # The bundled tiers do not meet: no year has both (tests/test_dbt_unit_tests.py compares them where they do).
    assert published.execute("select comparison, count(*) from fct_tier_comparison group by all order by all") \
        .fetchall() == [("official_only", 1236), ("secondary_only", 101)]
    for mart, column in (("fct_rankings", "year"), ("agg_groups", "year"), ("fct_target_gap", "latest_year")):
        sql = f"select distinct {column} from {mart}"  # noqa: S608 (names from the line above)
        years = {y for (y,) in published.execute(sql).fetchall()}
        assert years <= {2023, 2024}, (mart, years)


def test_the_national_story_gives_every_figure_its_source(published):
    """The regional average against 2.24 -> 3.5, the national index since 2018, and the share of institutions
    rated Baik or better where known: each figure with the basis and source it comes from."""
    rows = published.execute("""
        select year, basis, round(value, 2) from fct_national_story
        where scope = 'pemda' and metric = 'mean_index' order by year, basis""").fetchall()
    assert rows == [(2019, "quoted", 2.07), (2021, "target_baseline", 2.24), (2023, "computed", 2.72),
                    (2024, "computed", 3.07), (2025, "target", 3.5)]
    national = published.execute("""
        select year, basis, value from fct_national_story where metric = 'national_index' order by year, basis
        """).fetchall()
    assert [y for y, b, _ in national if b == "published_series"] == list(range(2018, 2025))
    assert [(y, v) for y, b, v in national if b == "quoted"] == [(2019, 2.18), (2021, 2.24)]
    shares = published.execute("""
        select year, basis, value, source_url from fct_national_story
        where scope = 'national' and metric = 'share_baik_or_better' order by year""").fetchall()
    assert [(y, b, v) for y, b, v, _ in shares] == [(2019, "quoted", 31.51), (2023, "computed", 62.48),
                                                  (2024, "computed", 76.26)]
    assert shares[0][3].startswith("https://nasional.sindonews.com/")
    assert published.execute("select count(*) from fct_national_story where source is null").fetchall() == [(0,)]


def test_banyuwangi_leads_the_regional_governments_in_2024(published):
    rows = published.execute("""
        select d.name, r.index_value, r.rank from fct_rankings r join dim_institution d using (institution_id)
        where r.year = 2024 and r.scope = 'government_level' and r.scope_value = 'pemda' and r.rank = 1
    """).fetchall()
    assert rows == [("Kabupaten Banyuwangi", 4.77, 1)]


def test_sumedang_scores_4_51_in_2024_and_has_its_target(published):
    ((index, predikat),) = published.execute(
        "select index_value, predikat from fct_index where institution_id = '32.11' and year = 2024 "
        "and source = 'official'").fetchall()
    assert (index, predikat) == (4.51, "Memuaskan")
    ((target, gap, status),) = published.execute(
        "select target_value, gap, status from fct_target_gap where target_id = 'sumedang-2025'").fetchall()
    assert (target, gap, status) == (4.6, 0.09, "on_track")


def test_band_edge_rows_keep_their_published_predikat(published):
    rows = published.execute("""
        select institution_id, index_value, predikat, predikat_of_rounded_index from fct_index
        where is_band_edge_predikat order by index_value
    """).fetchall()
    assert rows == [("12.25", 1.8, "Kurang", "Cukup"), ("73.17", 2.6, "Cukup", "Baik"),
                    ("35.01", 3.5, "Baik", "Sangat Baik")]


def test_missing_domains_stay_missing(published):
    rows = published.execute(
        "select count(*) from fct_index where source = 'official' and not is_complete and policy_index is null "
        "and index_value is not null"
    ).fetchall()
    assert rows == [(3,)]


def test_rankings_share_the_lowest_rank_on_ties(published):
    ((n_ties,),) = published.execute("""
        select count(*) from fct_rankings a join fct_rankings b
          on a.year = b.year and a.scope = b.scope and a.scope_value = b.scope_value
         and a.index_value = b.index_value and a.institution_id < b.institution_id
        where a.rank <> b.rank
    """).fetchall()
    assert n_ties == 0
    # competition ranking: after two institutions tied at rank r, the next rank is r + 2
    ranks = [r for (r,) in published.execute(
        "select rank from fct_rankings where year = 2024 and scope = 'national' order by rank").fetchall()]
    pairs = enumerate(zip(ranks, ranks[1:], strict=False), start=1)
    assert ranks[0] == 1 and all(b == a or b == i + 1 for i, (a, b) in pairs)


def test_every_scope_ranks_each_scored_institution_once(published):
    counts = dict(published.execute(
        "select scope, count(*) from fct_rankings where year = 2024 group by scope").fetchall())
    assert counts["national"] == counts["government_level"] == counts["category"] == 615
    assert counts["province"] == 523


def test_national_reconciliation_reports_the_difference(published):
    rows = published.execute(
        "select year, published_national_index, computed_national_index, difference "
        "from fct_national_reconciliation order by year").fetchall()
    assert [(y, p) for y, p, _, _ in rows] == [(2023, 2.79), (2024, 3.12)]
    assert all(abs(p - c - d) < 1e-9 and d < 0 for _, p, c, d in rows)


def test_regional_average_target_is_tracked(published):
    ((baseline, latest, projected, status),) = published.execute("""
        select baseline_value, latest_value, projected_value, status from fct_target_gap
        where target_id = 'regional-average-2025' and applies_as = 'direct'""").fetchall()
    assert baseline == 2.24 and round(latest, 2) == 3.07 and projected < 3.5 and status == "off_track"


def test_trends_include_the_published_national_series(published):
    series = published.execute("""
        select year, index_value, direction from fct_trends where entity_type = 'national_published' order by year
    """).fetchall()
    assert [y for y, _, _ in series] == list(range(2018, 2025))
    assert series[0][2] == "first" and series[-1] == (2024, 3.12, "up")


def release_years_of(request: dg.RunRequest) -> list[int]:
    return request.run_config["ops"][STEP]["config"]["release_years"]


def test_sensor_requests_each_new_or_changed_release_once(data_dir):
    resource = ReleaseSourceResource.from_config(source_config_from_env())

    def tick(instance, cursor):
        return release_source_sensor(dg.build_sensor_context(instance=instance, cursor=cursor),
                                     release_source=resource, data_dir=DataDirResource())

    with dg.instance_for_test() as instance:
        first = tick(instance, None)
        (request,) = first.run_requests  # one run for every release that is not landed
        assert release_years_of(request) == [2023, 2024]
        assert request.run_config["ops"][STEP]["config"]["secondary_years"] == [2019, 2021, 2022]
        assert request.tags["spbe/releases"] == "2023,2024,secondary-2019,secondary-2021,secondary-2022"
        assert request.run_key.startswith("release-")
        # Requested and not landed yet (the run may be on its way): not asked again on the next tick...
        assert isinstance(tick(instance, first.cursor), dg.SkipReason)
        # ...but again once RETRY_AFTER_SECONDS have passed with neither year landed, under a new run key.
        aged = {year: [fingerprint, at - RETRY_AFTER_SECONDS - 1]
                for year, (fingerprint, at) in json.loads(first.cursor).items()}
        (retry,) = tick(instance, json.dumps(aged)).run_requests
        assert release_years_of(retry) == [2023, 2024] and retry.run_key != request.run_key
        # A year whose file changed since the request is asked for at once, alone.
        moved = {**json.loads(first.cursor), "2024": ["sha of another file", json.loads(first.cursor)["2024"][1]]}
        (changed,) = tick(instance, json.dumps(moved)).run_requests
        assert release_years_of(changed) == [2024] and changed.run_key not in {request.run_key, retry.run_key}


def test_sensor_skips_landed_releases_and_follows_changes_back_and_forth(copy_of_built, tmp_path, monkeypatch):
    """After the pipeline ran, the sensor asks for nothing. When the source offers another 2024 file, it asks
    for that year; once landed, nothing again; and when the source goes back to the first file, that file is
    no longer the current one: it is asked for and landed again."""
    source = tmp_path / "releases"
    shutil.copytree(BUNDLED_RELEASES_DIR, source)
    manifest = json.loads((source / "manifest.json").read_text())
    first_file = (source / "spbe_results_2024.csv").read_bytes()
    correction = first_file.replace(b"\n", b"\r\n")  # the same rows in another file (CRLF line ends)
    (source / "spbe_results_2024_corrected.csv").write_bytes(correction)

    def offer_2024(name: str, content: bytes) -> None:
        entries = [dict(e, url=name, sha256=hashlib.sha256(content).hexdigest()) if e["year"] == 2024 else e
                   for e in manifest["releases"]]
        (source / "manifest.json").write_text(json.dumps({**manifest, "releases": entries}))

    monkeypatch.setenv("SPBE_RELEASE_SOURCE", str(source))
    resource = ReleaseSourceResource.from_config(source_config_from_env())
    with dg.instance_for_test() as instance:
        def tick(cursor=None):
            return release_source_sensor(dg.build_sensor_context(instance=instance, cursor=cursor),
                                         release_source=resource, data_dir=DataDirResource())

        def land(request: dg.RunRequest, status: str) -> None:  # what the requested run lands (no build here)
            assert request.run_config == run_config(release_years=[2024])
            result = run_update(instance, release_years=release_years_of(request), build=False)
            (line,) = [ln for ln in read_lines(copy_of_built.ingest_log) if ln["run_id"] == result.run_id]
            assert (line["year"], line["status"], line["takes_effect"], line["changes_data"]) == \
                (2024, status, True, True), line

        # Both releases are landed and current in the built data dir: nothing to do.
        assert isinstance(tick(), dg.SkipReason)
        offer_2024("spbe_results_2024_corrected.csv", correction)
        corrected = tick()
        (request,) = corrected.run_requests
        land(request, "loaded")
        assert isinstance(tick(corrected.cursor), dg.SkipReason)
        # The source is back on the first file: current again once landed again (a duplicate of a file accepted
        # before, which takes effect over the correction), under a new run key.
        offer_2024("spbe_results_2024.csv", first_file)
        back = tick(corrected.cursor)
        (again,) = back.run_requests
        assert again.run_key != request.run_key
        land(again, "duplicate")
        assert isinstance(tick(back.cursor), dg.SkipReason)


def test_dbt_docs_generate_describes_every_model_and_column(built_warehouse):
    """The catalog the pipeline's dbt_docs step generated (`dbt docs generate`, into state/dbt_docs/)."""
    docs = built_warehouse[0].state / "dbt_docs"
    catalog = json.loads((docs / "catalog.json").read_text())
    manifest = json.loads((docs / "manifest.json").read_text())
    models = {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    assert set(models) >= MARTS
    for name, node in models.items():
        assert node["description"], name
        built_columns = set(catalog["nodes"][node["unique_id"]]["columns"])
        documented = {c for c, spec in node["columns"].items() if spec["description"]}
        assert built_columns == documented, (name, built_columns ^ documented)
