"""The landing half of ``update_warehouse``: what an event brought, archived, judged and logged.

Releases of the configured source, inbox files named by the sensor, files ``spbe ingest`` claimed for this
run, the bundled demo samples into an empty warehouse, and inbox entries to set aside unopened. Each lands
through lib/ingest.py; this module turns the outcome into Dagster events and run tags.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field

import dagster as dg

from dagster_project.defs.checks import failures_metadata
from dagster_project.defs.update import (
    INGEST_LOG_KEY,
    SUBMISSIONS_KEY,
    SUBMISSIONS_SUITE,
    TIER_ASSETS,
    WORK_UNITS_KEY,
    ReleaseAsset,
)
from dagster_project.lib.inbox import (
    PROCESSING,
    Claim,
    abandoned,
    claim_all,
    claim_copy,
    claimed_name,
    look,
    release,
    return_orphans,
    set_aside,
    unclaim,
)
from dagster_project.lib.ingest import (
    SUBMISSIONS,
    WORK_UNITS,
    Arrival,
    LandingResult,
    land,
    land_release,
    log_set_aside,
    release_is_current,
)
from dagster_project.lib.ingest_log import read_lines
from dagster_project.lib.processes import owner_of
from dagster_project.lib.sources import SourceConfig, list_releases
from dagster_project.lib.storage_caps import EVICTED_LOG, evictions
from dagster_project.paths import BUNDLED_DATA_DIR, DataPaths

MAX_TABLE_ROWS = 500  # files listed in the run's metadata and logged one by one, rejected ones first
SAMPLES_DIR = BUNDLED_DATA_DIR / "samples"
_CLAIM = re.compile(r"^[A-Za-z0-9_.:?-]+/[0-9a-f]{32}$")  # <owner>/<id>, as lib/inbox.py makes them


@dataclass
class Landed:
    results: list[LandingResult] = field(default_factory=list)
    not_landed: list[str] = field(default_factory=list)  # what could not even be archived, and why

    @property
    def refused(self) -> list[LandingResult]:
        return [r for r in self.results if r.status in ("quarantined", "rejected")]


def land_event(context: dg.AssetExecutionContext, config, source: SourceConfig, paths: DataPaths):
    """Land everything the run's config names, yielding Dagster events."""
    landed = Landed()
    return_orphans(paths.inbox)
    yield from _releases(context, config, source, paths, landed)
    yield from _submissions(context, config, paths, landed)
    evicted = evictions(paths.quarantine, context.run.run_id)  # refused files whose bytes made room
    for record in evicted[:MAX_TABLE_ROWS]:
        context.log.warning(f"evicted: {record['why']}; recorded in {paths.quarantine / EVICTED_LOG}")
    if landed.results:
        yield dg.MaterializeResult(asset_key=INGEST_LOG_KEY, metadata={
            "lines": len(landed.results), "path": dg.MetadataValue.path(str(paths.ingest_log)),
            **({"evicted_refused_files": len(evicted)} if evicted else {})})
    if landed.refused:  # seen at once in the Runs list; the check named is the one a refused file failed
        failed = [r for r in landed.refused if r.status == "quarantined"]
        context.instance.add_run_tags(context.run.run_id, {"quarantined": str(len(landed.refused)), **(
            {"spbe/failed_check": _failed_check(failed)} if failed else {})})
    for line in landed.not_landed:
        context.log.error(f"not landed: {line}")


def _failed_check(failed: list[LandingResult]) -> str:
    """The check quarantined files failed, named as in the UI (the submissions' first, when any)."""
    by_dataset = {a.dataset: a.suite_check for a in TIER_ASSETS.values()}
    checks = [by_dataset.get(r.dataset, SUBMISSIONS_SUITE) for r in failed]
    return SUBMISSIONS_SUITE if SUBMISSIONS_SUITE in checks else checks[0]


def _releases(context, config, source: SourceConfig, paths: DataPaths, landed: Landed):
    asked = {str(y) for y in config.release_years} | {f"secondary-{y}" for y in config.secondary_years}
    if not asked and not config.changed_releases:
        return
    entries = {e.key: e for e in list_releases(source)}
    wanted = [entries[k] for k in sorted(asked) if k in entries]
    landed.not_landed += [f"release {k}: the {source.kind} source {source.location} offers none"
                          for k in sorted(asked - set(entries))]
    if config.changed_releases:
        wanted += [e for e in entries.values() if e not in wanted and not release_is_current(paths, e)]
    results: dict[str, list[LandingResult]] = {}
    for entry in wanted:
        try:
            result = land_release(source, entry, paths, run_id=context.run.run_id)
        except Exception as e:  # the source failed (network, checksum, size): nothing of it landed
            landed.not_landed.append(f"release {entry.key}: {e.__class__.__name__}: {e}")
            continue
        context.log.info(f"release {entry.key}: {result.status}, {result.rows} rows - {result.reason}")
        results.setdefault(entry.tier, []).append(result)
    for tier, tier_results in results.items():
        landed.results += tier_results
        yield from _release_events(TIER_ASSETS[tier], tier_results)


def _release_events(asset: ReleaseAsset, results: list[LandingResult]):
    failed = [dict(f, year=r.year) for r in results for f in r.report.get("failed", [])]
    errors = [f for f in failed if f["severity"] == "critical"]
    warnings = [f for f in failed if f["severity"] != "critical"]
    yield dg.MaterializeResult(asset_key=asset.key, metadata={
        "years": dg.MetadataValue.md("| year | status | rows | sha256 | reason |\n|---|---|---|---|---|\n" + "\n".join(
            f"| {r.year} | {r.status} | {r.rows} | {r.sha256[:12]} | {r.reason} |" for r in results)),
        "dagster/row_count": sum(r.rows for r in results if r.status == "loaded"),
    })
    refused = [r for r in results if r.status == "quarantined"]
    yield dg.AssetCheckResult(asset_key=asset.key, check_name=asset.suite_check, passed=not refused,
                              severity=dg.AssetCheckSeverity.ERROR,
                              description="; ".join(r.reason for r in refused)[:2000] or "every release passed",
                              metadata=failures_metadata(errors))
    yield dg.AssetCheckResult(asset_key=asset.key, check_name=asset.warnings_check, passed=not warnings,
                              severity=dg.AssetCheckSeverity.WARN, description=f"{len(warnings)} warning rules",
                              metadata=failures_metadata(warnings))


def _submissions(context, config, paths: DataPaths, landed: Landed):
    results: list[LandingResult] = []
    if config.set_aside:
        odd = abandoned(look(paths.inbox), time.time())  # judged again now: only what still cannot be a submission
        moved = set_aside(paths.inbox, paths.quarantine, {n: odd[n] for n in config.set_aside if n in odd})
        results += log_set_aside(paths, moved, context.run.run_id)
    batches = {"inbox": _claim_inbox(context, config, paths), "cli": _adopt(context, config, paths),
               "sample": _samples(config, paths)}
    for source, claims in batches.items():
        if not claims:
            continue
        arrivals = {Arrival(c.path, c.original_name): c for c in claims}
        try:
            outcome = land(paths, SUBMISSIONS, list(arrivals), source, context.run.run_id)
        except Exception as e:  # the batch could not be landed (disk, permissions): every file goes back
            kept = [_give_back(paths, c) for c in claims if c.path.exists()]
            raise dg.Failure(f"{len(claims)} file(s) could not be landed and were kept for a retry "
                             f"({e.__class__.__name__}: {e}): {kept}") from e
        failed = {arrivals[a] for a, _ in outcome.failed}
        for arrival, error in outcome.failed:
            landed.not_landed.append(f"{arrival.original_name} ({error.__class__.__name__}: {error}), kept in "
                                     f"{_give_back(paths, arrivals[arrival])}")
        for claim in claims:
            if claim not in failed:
                release(claim.path)  # archived first, so leaving the inbox loses nothing
        results += outcome.results
    if not results:
        return
    landed.results += results
    by_status = {s: [r for r in results if r.status == s] for s in ("loaded", "duplicate", "quarantined", "rejected")}
    context.log.info(", ".join(f"{len(rs)} {status}" for status, rs in by_status.items()) + f" of {len(results)}")
    bad = by_status["quarantined"] + by_status["rejected"]
    for r in bad[:MAX_TABLE_ROWS]:
        context.log.warning(f"{r.status}: {r.reason}")
    shown = sorted(results, key=lambda r: r.status not in ("quarantined", "rejected"))[:MAX_TABLE_ROWS]
    table = "| file | status | rows | institution | year | stage | reason |\n|---|---|---|---|---|---|---|\n" + \
        "\n".join(f"| {r.original_name} | {r.status} | {r.rows} | {r.report.get('institution_id') or ''} | "
                  f"{r.year or ''} | {r.report.get('stage') or ''} | {r.reason} |" for r in shown)
    if len(results) > len(shown):
        table += f"\n\n{len(results) - len(shown)} more files: see the mart fct_ingest_log."
    units = [r for r in by_status["loaded"] if r.dataset == WORK_UNITS]
    yield dg.MaterializeResult(asset_key=SUBMISSIONS_KEY, metadata={
        "files": dg.MetadataValue.md(table),
        **{f"n_{status}": len(rs) for status, rs in by_status.items()},
        "dagster/row_count": sum(r.rows for r in by_status["loaded"]),
    })
    if units:
        yield dg.MaterializeResult(asset_key=WORK_UNITS_KEY, metadata={
            "files": len(units), "dagster/row_count": sum(r.rows for r in units)})
    yield dg.AssetCheckResult(
        asset_key=SUBMISSIONS_KEY, check_name="submissions_suite", passed=not bad,
        severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(r.reason for r in bad)[:2000] or "every file passed",
        metadata={  # the first MAX_TABLE_ROWS refused files: every one is in fct_ingest_log and its report
            "n_quarantined": len(bad),
            "quarantined_files": dg.MetadataValue.json(
                [{"file": r.original_name, "sha256": r.sha256, "reason": r.reason} for r in bad[:MAX_TABLE_ROWS]]),
            **failures_metadata([{**f, "file": r.original_name} for r in bad[:MAX_TABLE_ROWS]
                                 for f in r.report.get("failed", [])]),
        },
    )


def _claim_inbox(context, config, paths: DataPaths) -> list[Claim]:
    claims = []
    for name, claimed in claim_all(paths.inbox, config.inbox_files):
        if isinstance(claimed, Exception):
            context.log.warning(f"{name}: not landed by this run ({claimed}); the next look at the inbox decides")
        else:
            claims.append(claimed)
    return claims


def _adopt(context, config, paths: DataPaths) -> list[Claim]:
    """Take over the claims `spbe ingest` made for this run, into this process's claim folder: if the CLI
    dies meanwhile, its claims are this run's, not orphans to hand back."""
    mine = paths.inbox / PROCESSING / owner_of()
    mine.mkdir(parents=True, exist_ok=True)
    claims = []
    for ref in config.claimed:
        if not _CLAIM.match(ref):
            context.log.warning(f"{ref!r} is not a claim of the inbox: ignored")
            continue
        source = paths.inbox / PROCESSING / ref
        target = mine / source.name
        try:
            if source != target:
                os.replace(source.with_suffix(".name"), target.with_suffix(".name"))
                os.replace(source, target)
        except FileNotFoundError:
            context.log.warning(f"claim {ref} is gone (returned to the inbox after its process died?)")
            continue
        claims.append(Claim(target, claimed_name(target)))
    return claims


def _samples(config, paths: DataPaths) -> list[Claim]:
    """The bundled demo submissions: into a warehouse that never had a submission (or when asked), never again
    over later data."""
    if config.samples not in ("none", "if_empty", "always"):
        raise dg.Failure(f"samples={config.samples!r}: expected none, if_empty or always")
    if config.samples == "none":
        return []
    if config.samples == "if_empty" and any(line["dataset"] == SUBMISSIONS.name
                                            for line in read_lines(paths.ingest_log)):
        return []
    return [claim_copy(paths.inbox, f, f.name) for f in sorted(SAMPLES_DIR.glob("*.json"))]


def _give_back(paths: DataPaths, claim: Claim) -> str:
    """Return a claimed file to the inbox for a retry; where it is now."""
    try:
        return str(unclaim(paths.inbox, claim.path))
    except OSError:
        return str(claim.path)  # the next look at the inbox returns it, once this process is gone
