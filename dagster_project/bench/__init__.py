"""``spbe bench``: the pipeline timed at tiers of synthetic submissions, next to a plain DuckDB script.

Each repeat starts from an empty data dir and runs the real path: files dropped in the inbox, the inbox
job (archive, validate, lake), the warehouse job (reference checks, dbt build, publish), then one more
file end to end (the incremental latency). The raw-DuckDB lower bound computes the same index and
rankings from the same lake files in one SQL script. Results are medians with min and max, written as
JSON under data/bench/.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagster_project.paths import REFERENCE_DIR

RAW_SQL = Path(__file__).with_name("raw_index.sql")
BASE_YEARS = (2023, 2024)  # the years with published results that the generator reproduces


@dataclass(frozen=True)
class Tier:
    name: str
    institutions: int | None  # None: every institution with published results (about 620)
    years: tuple[int, ...]
    stages: tuple[str, ...] = ("self_assessment", "document_review", "interview", "site_visit", "final")
    work_units: int = 0  # then a window of this many work-unit (OPD) self-assessments arriving together


TIERS = {
    "tiny": Tier("tiny", 10, (2024,), work_units=12),
    "small": Tier("small", 100, (2023, 2024)),
    "national": Tier("national", None, tuple(range(2018, 2026))),
    "opd": Tier("opd", None, tuple(range(2018, 2026)), work_units=18_000),
}
WORK_UNIT_YEAR = 2024


def tier_files(tier: Tier) -> list[tuple[str, bytes]]:
    """Submission files for a tier: the generator's files for 2023 and 2024, relabelled for other years
    (the generator reproduces published results, which exist for those two years only). A year under the
    older framework (PermenPANRB 5/2018, up to 2020) keeps the indicators that framework numbers."""
    from dagster_project.lib.framework import framework_for_year, indicators
    from dagster_project.lib.samples import generate, published_domains

    ids = sorted(published_domains(BASE_YEARS)["institution_id"].unique())
    chosen = ids if tier.institutions is None else ids[:: max(1, len(ids) // tier.institutions)][: tier.institutions]
    base = {f.name: f.content for f in generate(chosen, years=BASE_YEARS, stages=tier.stages)}
    out = []
    for year in tier.years:
        source_year = 2024 if year % 2 == 0 else 2023
        for name, content in base.items():
            if f"_{source_year}_" not in name:
                continue
            if year == source_year:
                out.append((name, content))
                continue
            doc = json.loads(content)
            numbers = {i.number for i in indicators(framework_for_year(year))}
            doc["rows"] = [row for row in doc["rows"] if int(row["indicator"]) in numbers]
            for row in doc["rows"]:
                row["year"] = year
                row["submitted_at"] = row["submitted_at"].replace(str(source_year), str(year), 1)
            out.append((name.replace(f"_{source_year}_", f"_{year}_"), json.dumps(doc).encode()))
    return out


def work_unit_files(count: int, seed: str = "spbe-bench-opd") -> list[tuple[str, bytes]]:
    """``count`` self-assessments of work units (OPD), spread over the regional governments with published
    results (about 35 each at 18,000): each unit's levels are its region's self-assessment levels moved by
    -1, 0 or +1, so that units differ as they do inside a real region."""
    import random

    from dagster_project.lib.samples import generate, published_domains

    results = published_domains((WORK_UNIT_YEAR,))
    regions = sorted(i for i in results["institution_id"].unique() if i[:1].isdigit())
    base = {f.name.split("_")[0]: json.loads(f.content)
            for f in generate(regions, years=(WORK_UNIT_YEAR,), stages=("self_assessment",))}
    out = []
    for n in range(count):
        region = regions[n % len(regions)]
        unit = f"OPD-{n // len(regions) + 1:03d}"
        rng = random.Random(f"{seed}/{region}/{unit}")
        doc = base[region]
        rows = [{**r, "work_unit": unit, "level": min(5, max(1, int(r["level"]) + rng.choice((-1, 0, 1))))}
                for r in doc["rows"]]
        out.append((f"{region}_{unit}_{WORK_UNIT_YEAR}.json", json.dumps({**doc, "rows": rows}).encode()))
    return out


def _step_seconds(instance, run_id: str) -> dict[str, float]:
    """Seconds per step of a Dagster run, from the timestamps of its STEP_START and STEP_SUCCESS events."""
    starts, out = {}, {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type_value == "STEP_START":
            starts[event.step_key] = entry.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and event.step_key in starts:
            out[event.step_key] = entry.timestamp - starts[event.step_key]
    return out


def _peak_rss_mib() -> float:
    """Peak resident memory of this process and of its finished children (dbt), in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def raw_index(lake: Path) -> list[tuple]:
    """The lower bound: index, domains and rankings from the lake files in one plain DuckDB script."""
    import duckdb

    with duckdb.connect() as con:
        # Institutions' and work units' submissions: lake/submissions and lake/work_unit_submissions.
        con.execute("set variable lake = ?", [str(lake / "*submissions" / "*" / "*.parquet")])
        con.execute("set variable indicators = ?", [str(REFERENCE_DIR / "spbe_indikator_permen59_2020.csv")])
        return con.execute(RAW_SQL.read_text(encoding="utf-8")).fetchall()


# The dbt models that compute what the raw script computes: the index per file and stage, and rankings.
INDEX_MODELS = ("stg_lake__submissions", "int_submission_revisions", "int_submission_levels", "int_computed_index",
                "fct_index", "fct_rankings")


def dbt_timings() -> dict[str, float]:
    """From the newest run_results.json: dbt's own elapsed time for the whole build, and the execution time of
    the models in INDEX_MODELS (the like-for-like comparison with the raw script)."""
    from dagster_project.paths import DBT_PROJECT_DIR

    newest = max((DBT_PROJECT_DIR / "target").rglob("run_results.json"), key=lambda f: f.stat().st_mtime)
    run = json.loads(newest.read_text(encoding="utf-8"))
    index = sum(r["execution_time"] for r in run["results"]
                if r["unique_id"].startswith("model.") and r["unique_id"].rsplit(".", 1)[-1] in INDEX_MODELS)
    return {"dbt_elapsed_s": run["elapsed_time"], "dbt_index_models_s": index}


def raw_duckdb_seconds(lake: Path) -> tuple[float, int]:
    started = time.perf_counter()
    rows = raw_index(lake)
    return time.perf_counter() - started, len(rows)


def _land_and_build(definitions, instance, paths, files: list[tuple[str, bytes]], config: dict) -> dict[str, float]:
    """Drop ``files`` in the inbox, run the inbox job on them, then the warehouse job: seconds per stage."""
    from dagster_project.defs.automation import BUILD_JOB, SUBMISSIONS_JOB

    for name, content in files:
        (paths.inbox / name).write_bytes(content)
    rows = sum(content.count(b'"indicator"') for _, content in files)
    started = time.perf_counter()
    landed = definitions.resolve_job_def(SUBMISSIONS_JOB).execute_in_process(
        instance=instance, run_config={**config, "ops": {"submission_files": {"config": {
            "files": [name for name, _ in files]}}}})
    ingest = time.perf_counter() - started
    built = definitions.resolve_job_def(BUILD_JOB).execute_in_process(instance=instance, run_config=config)
    end_to_end = time.perf_counter() - started
    assert landed.success and built.success
    steps = _step_seconds(instance, built.run_id)
    return {**dbt_timings(), "files": len(files), "rows": rows, "ingest_s": ingest, "files_per_s": len(files) / ingest,
            "rows_per_s": rows / ingest, "reference_checks_s": steps.get("reference_tables", 0.0),
            "dbt_build_s": steps.get("warehouse_dbt", 0.0), "publish_s": steps.get("published_warehouse", 0.0),
            "end_to_end_s": end_to_end}


def run_once(files: list[tuple[str, bytes]], root: Path, window: list[tuple[str, bytes]] = ()) -> dict[str, Any]:
    """One repeat on an empty data dir: the history ``files``, then the ``window`` arriving together (if any),
    then one corrected file; every figure in seconds."""
    import dagster as dg

    from dagster_project.definitions import defs
    from dagster_project.defs.automation import INGEST_JOB
    from dagster_project.defs.releases import release_years
    from dagster_project.lib.sources import list_releases, source_config_from_env
    from dagster_project.paths import DataPaths

    paths = DataPaths(root / "data").ensure()
    os.environ["SPBE_DATA_DIR"] = str(paths.root)
    definitions = defs()
    config = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
    with dg.DagsterInstance.ephemeral() as instance:
        # The official releases first (the history the submissions sit on), timed apart.
        started = time.perf_counter()
        years = [str(e.year) for e in list_releases(source_config_from_env())]
        instance.add_dynamic_partitions(release_years.name, years)
        for year in years:
            assert definitions.resolve_job_def(INGEST_JOB).execute_in_process(
                partition_key=year, instance=instance, run_config=config).success
        out: dict[str, Any] = {"releases_s": time.perf_counter() - started}
        out.update(_land_and_build(definitions, instance, paths, files, config))
        if window:
            out.update({f"window_{k}": v for k, v in _land_and_build(definitions, instance, paths, window,
                                                                    config).items()})

        # One more file (a corrected final submission), from the inbox to the published file.
        name, content = files[-1]
        doc = json.loads(content)
        doc["rows"][0]["level"] = 1 + doc["rows"][0]["level"] % 5
        started = time.perf_counter()
        _land_and_build(definitions, instance, paths, [(f"revisi_{name}", json.dumps(doc).encode())], config)
        out["incremental_one_file_s"] = time.perf_counter() - started
    raw, raw_rows = raw_duckdb_seconds(paths.lake)
    out.update({"lake_mib": sum(f.stat().st_size for f in paths.lake.rglob("*.parquet")) / 2**20,
                "published_mib": paths.published_db.stat().st_size / 2**20})
    out.update({"raw_duckdb_s": raw, "raw_duckdb_rows": raw_rows,
                "dbt_to_raw_ratio": out["dbt_build_s"] / raw if raw else None,
                "index_models_to_raw_ratio": out["dbt_index_models_s"] / raw if raw else None,
                "peak_rss_mib": _peak_rss_mib()})
    return out


def definitions_load_seconds() -> float:
    """Loading the code location in a fresh interpreter, as the webserver and daemon do."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "from dagster_project.definitions import defs; defs()"], check=True,
                   capture_output=True)
    return time.perf_counter() - started


def summarise(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    keys = [k for k, v in runs[0].items() if isinstance(v, (int, float)) and v is not None]
    return {k: {"median": statistics.median(r[k] for r in runs), "min": min(r[k] for r in runs),
                "max": max(r[k] for r in runs)} for k in keys}


def machine() -> dict[str, Any]:
    mem_kib = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                    if line.startswith("MemTotal")), 0) if Path("/proc/meminfo").exists() else 0
    return {"cores": os.cpu_count(), "memory_gib": round(mem_kib / 2**20, 1), "python": platform.python_version(),
            "platform": platform.platform()}


def run_bench(tier_name: str, repeat: int, out_dir: Path) -> dict[str, Any]:
    tier = TIERS[tier_name]
    files, window = tier_files(tier), work_unit_files(tier.work_units)
    runs = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix=f"spbe-bench-{tier.name}-") as tmp:
            runs.append(run_once(files, Path(tmp), window))
    result = {"tier": tier.name, "repeat": repeat, "machine": machine(),
              "command": f"spbe bench --tier {tier.name} --repeat {repeat}",
              "definitions_load_s": definitions_load_seconds(), "summary": summarise(runs), "runs": runs}
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (out_dir / f"{tier.name}-{stamp}.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def format_summary(result: dict[str, Any]) -> str:
    lines = [f"tier {result['tier']}: {result['runs'][0]['files']} files, {result['runs'][0]['rows']} rows, "
             f"median of {result['repeat']} (min-max); code location loads in {result['definitions_load_s']:.1f} s"]
    for key, s in result["summary"].items():
        if key in ("files", "rows", "raw_duckdb_rows", "window_files", "window_rows"):
            continue
        lines.append(f"  {key:<24} {s['median']:>10.2f}  ({s['min']:.2f}-{s['max']:.2f})")
    return "\n".join(lines)


