"""``spbe bench``: the pipeline timed at tiers of synthetic submissions, next to a plain DuckDB script.

Each repeat starts from an empty data dir and runs the real event path, the ``update_warehouse`` job, in
this process on an ephemeral Dagster instance (as the warm worker runs it, with dbt's project parsed once):
the official releases landed; the tier's files dropped in the inbox and landed by a landing-only run
(``build=False``: archive, validate, lake, ingest log); then a run that brings nothing, whose
``land_build_publish`` step checks the reference tables, plans and runs the full dbt build and publishes;
then one corrected file from the inbox to the published file in one run, as the inbox sensor starts it (a
partial build: the incremental latency). The report steps that follow a publish in the same job are left
out of every run: the figures stop at the published file. The raw-DuckDB lower bound computes the same index
and rankings from the same lake files in one SQL script. Results are medians with min and max, written as
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
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


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


def _peak_rss_mib() -> float:
    """Peak resident memory of this process (dbt runs in it) and of its finished children, in MiB."""
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


def raw_duckdb_seconds(lake: Path) -> tuple[float, int]:
    started = time.perf_counter()
    rows = raw_index(lake)
    return time.perf_counter() - started, len(rows)


# The dbt models that compute what the raw script computes: the index per file and stage, and rankings.
INDEX_MODELS = ("stg_lake__submissions", "int_submission_revisions", "int_submission_levels", "int_computed_index",
                "fct_index", "fct_rankings")
# What the step logs just before dbt starts ("build: full - ...") and when dbt has finished ("dbt build ...: n
# nodes in x s"): defs/update.py, _build_and_publish.
PLAN_MESSAGE, DBT_DONE_MESSAGE = "build: ", "dbt build"


class _Runner:
    """``update_warehouse`` executed in this process, the way an event runs it, without the report steps."""

    def __init__(self, instance):
        from dagster_project.definitions import defs
        from dagster_project.defs.update import JOB, STEP_KEYS

        self.instance = instance
        self.job = defs().resolve_job_def(JOB)
        self.selection = list(STEP_KEYS)  # everything up to the published file, not the reports

    def run(self, **config):
        """Execute the job with ``config`` (the fields of UpdateConfig); fails loudly if the run failed."""
        from dagster_project.defs.update import run_config
        from dagster_project.runs import failed_steps

        result = self.job.execute_in_process(run_config={**run_config(**config), **QUIET}, instance=self.instance,
                                             asset_selection=self.selection, raise_on_error=False)
        if not result.success:
            raise RuntimeError(f"update_warehouse {config} failed: {failed_steps(result)}")
        return result


def build_timings(instance, result) -> dict[str, Any]:
    """The layers of the ``land_build_publish`` step of a run that built and published, from its event log:
    before dbt (what the run lands, the reference checks, the build lock and plan), dbt (the step's dbt build,
    each node's event recorded as it finishes; up to the last node's event: dbt's own run), the publish; the
    execution time of the models in INDEX_MODELS (the like-for-like comparison with the raw script); and what
    the plan decided (full or partial)."""
    import dagster as dg

    from dagster_project.defs.update import PUBLISHED_KEY, STEP

    start = plan = dbt_done = published = None
    last_node, index_models, mode = None, 0.0, None
    for entry in instance.all_logs(result.run_id):
        event, message = entry.dagster_event, entry.user_message or ""
        if event is None:
            if plan is None and message.startswith(PLAN_MESSAGE):
                plan = entry.timestamp
            elif plan is not None and dbt_done is None and message.startswith(DBT_DONE_MESSAGE):
                dbt_done = entry.timestamp
            continue
        if event.step_key != STEP:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            start = entry.timestamp
        elif event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.step_materialization_data.materialization
            if materialization.asset_key == PUBLISHED_KEY:
                published, mode = entry.timestamp, materialization.metadata["build"].value
            elif plan is not None and dbt_done is None:  # a dbt model or seed, recorded as dbt goes on
                last_node = entry.timestamp
                if materialization.asset_key.path[-1] in INDEX_MODELS:
                    index_models += materialization.metadata["execution_time_s"].value
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION and plan is not None and dbt_done is None:
            last_node = entry.timestamp  # a dbt test
    if None in (start, plan, dbt_done, published, last_node):
        raise RuntimeError(f"run {result.run_id} did not build and publish: no dbt build or publish in its log")
    return {"before_dbt_s": plan - start, "dbt_build_s": dbt_done - plan, "dbt_elapsed_s": last_node - plan,
            "dbt_index_models_s": index_models, "publish_s": published - dbt_done, "build_mode": mode}


def _land_and_build(runner: _Runner, paths, files: list[tuple[str, bytes]]) -> dict[str, Any]:
    """Drop ``files`` in the inbox, land them in a landing-only run, then build and publish them in a run that
    brings nothing new: seconds per stage."""
    for name, content in files:
        (paths.inbox / name).write_bytes(content)
    rows = sum(content.count(b'"indicator"') for _, content in files)
    started = time.perf_counter()
    runner.run(inbox_files=[name for name, _ in files], build=False)
    ingest = time.perf_counter() - started
    built = runner.run()
    end_to_end = time.perf_counter() - started
    layers = build_timings(runner.instance, built)
    layers["reference_checks_s"] = layers.pop("before_dbt_s")  # the run lands nothing: the checks and the plan
    return {"files": len(files), "rows": rows, "ingest_s": ingest, "files_per_s": len(files) / ingest,
            "rows_per_s": rows / ingest, **layers, "end_to_end_s": end_to_end}


def run_once(files: list[tuple[str, bytes]], root: Path, window: list[tuple[str, bytes]] = ()) -> dict[str, Any]:
    """One repeat on an empty data dir: the history ``files``, then the ``window`` arriving together (if any),
    then one corrected file; every figure in seconds."""
    import dagster as dg

    from dagster_project.lib.dbt_project import ensure_manifest, parsed_manifest
    from dagster_project.paths import DataPaths

    paths = DataPaths(root / "data").ensure()
    os.environ["SPBE_DATA_DIR"] = str(paths.root)
    # dbt's project parsed in this process before anything is timed, as in the warm worker (0 s once parsed).
    started = time.perf_counter()
    ensure_manifest()
    parsed_manifest()
    out: dict[str, Any] = {"dbt_parse_s": time.perf_counter() - started}
    with dg.DagsterInstance.ephemeral() as instance:
        runner = _Runner(instance)
        # The official releases first (the history the submissions sit on), landed and timed apart.
        started = time.perf_counter()
        runner.run(changed_releases=True, build=False)
        out["releases_s"] = time.perf_counter() - started
        out.update(_land_and_build(runner, paths, files))
        if window:
            out.update({f"window_{k}": v for k, v in _land_and_build(runner, paths, window).items()})

        # One more file (a corrected final submission), from the inbox to the published file in one run.
        name, content = files[-1]
        doc = json.loads(content)
        doc["rows"][0]["level"] = 1 + doc["rows"][0]["level"] % 5
        corrected = f"revisi_{name}"
        (paths.inbox / corrected).write_bytes(json.dumps(doc).encode())
        started = time.perf_counter()
        result = runner.run(inbox_files=[corrected])
        out["incremental_one_file_s"] = time.perf_counter() - started
        layers = build_timings(instance, result)
        layers["land_and_checks_s"] = layers.pop("before_dbt_s")  # the file landed, then the reference checks
        out.update({f"incremental_{k}": v for k, v in layers.items()})
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
        lines.append(f"  {key:<30} {s['median']:>10.2f}  ({s['min']:.2f}-{s['max']:.2f})")
    return "\n".join(lines)
