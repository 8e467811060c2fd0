"""What starts ``update_warehouse``: files in the inbox, a new or corrected release, edited reference tables
or code. Each sensor asks only for what is not already landed or published, so a restart starts no run."""


import hashlib
import json
import time

import dagster as dg

from dagster_project.defs.resources import DataDirResource, ReleaseSourceResource
from dagster_project.defs.update import run_config, update_warehouse_job
from dagster_project.lib.inbox import SETTLE_SECONDS, Look, Seen, readable_name, ready_to_take, return_orphans

RETRY_AFTER_SECONDS = 600  # a request whose file is still waiting this long after is made again


def _run_key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:24]


@dg.sensor(
    job=update_warehouse_job,
    minimum_interval_seconds=2,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Watches the inbox (SPBE_INBOX_DIR, default data/inbox). A file is taken once two looks "
                f"{SETTLE_SECONDS:g} s apart agree and no process has it open for writing; folders, FIFOs, links "
                "and abandoned temporary files are set aside. One run per batch lands, builds and publishes.",
)
def inbox_sensor(context: dg.SensorEvaluationContext, data_dir: DataDirResource):
    inbox = data_dir.paths().inbox
    return_orphans(inbox)
    # cursor: {"look": {name: [size, mtime_ns, inode]}, "requested": {name: [key..., requested_at]}}
    state = json.loads(context.cursor) if context.cursor else {}
    before = Look({n: Seen(n, *k) for n, k in state.get("look", {}).items()}, {}, {})
    requested: dict[str, list] = state.get("requested", {})
    settled_files, odd, current = ready_to_take(inbox, before)
    now = time.time()
    ready = [s for s in settled_files
             if requested.get(s.name, [None])[:3] != list(s.key) or now - requested[s.name][3] > RETRY_AFTER_SECONDS]
    odd = {n: why for n, why in odd.items() if n not in requested or now - requested[n][3] > RETRY_AFTER_SECONDS}
    names = [readable_name(inbox, s.name) for s in ready]
    requested = {n: r for n, r in requested.items() if n in current.files or n in current.odd}
    requested |= {n: [*s.key, now] for n, s in zip(names, ready, strict=True)} | {n: [0, 0, 0, now] for n in odd}
    cursor = json.dumps({"look": {n: list(s.key) for n, s in current.files.items()}, "requested": requested},
                        sort_keys=True)
    if not names and not odd:
        waiting = len(current.files) - len(ready)
        return dg.SensorResult(skip_reason=f"no new settled file in {inbox}"
                               + (f" ({waiting} waiting or requested)" if waiting else ""), cursor=cursor)
    return dg.SensorResult(
        run_requests=[dg.RunRequest(
            run_key=f"inbox-{_run_key(names, sorted(odd), now)}",
            run_config=run_config(inbox_files=names, set_aside=sorted(odd)),
            tags={"spbe/files": str(len(names) + len(odd)), "spbe/trigger": "inbox"},
        )],
        cursor=cursor,
    )


@dg.sensor(
    job=update_warehouse_job,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Polls the configured release source; a year whose release is not the current one in the "
                "ingest log (new, corrected, or never landed) starts a run that lands, builds and publishes it.",
)
def release_source_sensor(context: dg.SensorEvaluationContext, release_source: ReleaseSourceResource,
                          data_dir: DataDirResource):
    from dagster_project.lib.ingest import release_is_current
    from dagster_project.lib.sources import ReleaseSourceError, list_releases

    cfg = release_source.config()
    try:
        entries = list_releases(cfg)
    except ReleaseSourceError as e:
        return dg.SkipReason(f"release source not readable: {e}")
    paths, now = data_dir.paths(), time.time()
    requested: dict[str, list] = json.loads(context.cursor) if context.cursor else {}  # key -> [fingerprint, at]
    wanted = [e for e in entries if not release_is_current(paths, e)
              and (requested.get(e.key, [None])[0] != e.fingerprint
                   or now - requested[e.key][1] > RETRY_AFTER_SECONDS)]
    if not wanted:
        return dg.SkipReason(f"every release of the {cfg.kind} source is landed and current ({len(entries)})")
    requested |= {e.key: [e.fingerprint, now] for e in wanted}
    keys = [e.key for e in wanted]
    return dg.SensorResult(
        run_requests=[dg.RunRequest(
            run_key=f"release-{_run_key(keys, [e.fingerprint for e in wanted], now)}",
            run_config=run_config(**{field: years for field, tier in (("release_years", "official"),
                                                                       ("secondary_years", "secondary"))
                                     if (years := [e.year for e in wanted if e.tier == tier])}),
            tags={"spbe/releases": ",".join(keys), "spbe/trigger": "release"},
        )],
        cursor=json.dumps(requested, sort_keys=True),
    )


@dg.sensor(
    job=update_warehouse_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Rebuilds and publishes when the reference tables in data/reference/ (or the code that builds "
                "the marts) differ from what the published warehouse was built with; once per version.",
)
def reference_sensor(context: dg.SensorEvaluationContext, data_dir: DataDirResource):
    from dagster_project.lib.warehouse import code_fingerprint, read_manifest

    published = read_manifest(data_dir.paths().published_manifest)
    if published is None:
        return dg.SkipReason("nothing is published yet: the first build follows a landing")
    fingerprint = code_fingerprint()
    if published.get("build_fingerprint") == fingerprint:
        return dg.SkipReason("the published warehouse was built from the current reference tables and code")
    if context.cursor == fingerprint:
        return dg.SkipReason("a run was already requested for this version of the reference tables and code")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"reference-{fingerprint[:24]}", tags={"spbe/trigger": "reference"})],
        cursor=fingerprint,
    )
