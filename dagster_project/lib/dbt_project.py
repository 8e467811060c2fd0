"""The dbt project: its graph read from ``manifest.json``, and dbt run in this process.

dbt runs in process (``dbtRunner``), not as a command: a new ``dbt`` process imports dbt and loads the
project before any model runs (about 6 s here, measured in docs/performance.md), and a warm worker that
has both already (dagster_project/worker.py) starts a build at once. The graph is read from the manifest
JSON without importing dbt, so loading the code location stays fast.

dbt-duckdb 1.11 keeps its DuckDB connection open in the process after a run (a class-level environment);
``stream_dbt`` closes it, so that publishing can open the build database in the same process.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import threading
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from dagster_project.paths import BUNDLED_DATA_DIR, DATA_DIR_ENV, DBT_PROJECT_DIR, REFERENCE_DIR

MANIFEST_PATH = DBT_PROJECT_DIR / "target" / "manifest.json"
ARRIVALS_TAG = "arrivals"  # models that report every arrival, refused ones included (fct_ingest_log, ...)
LOG_MODEL = "stg_state__ingest_log"  # reads the log up to var log_position: rebuilt by every build
LAKE_SOURCE = "lake"


@dataclass(frozen=True)
class Node:
    unique_id: str
    name: str
    resource_type: str  # model | seed | test | source
    layer: str  # staging | intermediate | marts (models), reference (seeds), the source name (sources)
    description: str
    parents: tuple[str, ...]
    tags: tuple[str, ...] = ()
    columns: tuple[tuple[str, str], ...] = ()  # (name, description)
    attached_to: str | None = None  # tests: the model or seed the test checks
    severity: str = "error"  # tests
    asset_key: tuple[str, ...] | None = None  # sources: the Dagster asset that writes them
    schema: str = "main"  # models and seeds: where dbt puts them (staging, intermediate, reference, main)


@dataclass(frozen=True)
class Graph:
    nodes: dict[str, Node]
    children: dict[str, tuple[str, ...]]

    def of_type(self, *types: str) -> list[Node]:
        return sorted((n for n in self.nodes.values() if n.resource_type in types), key=lambda n: n.unique_id)

    def by_name(self, name: str, resource_type: str = "model") -> Node:
        return next(n for n in self.nodes.values() if n.name == name and n.resource_type == resource_type)

    def descendants(self, unique_ids: Iterable[str]) -> set[str]:
        out, todo = set(), list(unique_ids)
        while todo:
            current = todo.pop()
            if current not in out:
                out.add(current)
                todo.extend(self.children.get(current, ()))
        return out

    @property
    def marts(self) -> list[Node]:
        return [n for n in self.of_type("model") if n.layer == "marts"]


def _node(raw: dict[str, Any]) -> Node:
    kind = raw["resource_type"]
    parents = tuple(raw.get("depends_on", {}).get("nodes", []))
    attached = raw.get("attached_node")
    if kind == "test" and attached is None:  # a singular test: checks its last upstream model or seed
        upstream = sorted(p for p in parents if p.split(".")[0] in ("model", "seed"))
        attached = upstream[-1] if upstream else None
    meta = raw.get("meta") or raw.get("config", {}).get("meta") or {}
    layer = raw["source_name"] if kind == "source" else ("reference" if kind == "seed" else raw["fqn"][1])
    return Node(
        unique_id=raw["unique_id"], name=raw["name"], resource_type=kind, layer=layer,
        description=(raw.get("description") or "").strip(), parents=parents,
        tags=tuple(raw.get("tags") or ()),
        columns=tuple((c["name"], c.get("description") or "") for c in (raw.get("columns") or {}).values()),
        attached_to=attached, severity=str(raw.get("config", {}).get("severity") or "error").lower(),
        asset_key=tuple(meta["dagster"]["asset_key"]) if "asset_key" in meta.get("dagster", {}) else None,
        schema=raw.get("schema") or "main",
    )


def read_graph(manifest_path: Path = MANIFEST_PATH) -> Graph:
    """The project's nodes and edges, from the manifest JSON (no dbt import). dbt rewrites the file in place
    when it parses: the read waits for a parse under way (the parse lock, shared)."""
    with _parse_lock(manifest_path.parent, fcntl.LOCK_SH):
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    raw_nodes = {**manifest["nodes"], **manifest["sources"]}
    nodes = {uid: _node(raw) for uid, raw in raw_nodes.items()
             if raw["resource_type"] in ("model", "seed", "test", "source")}
    children = {uid: tuple(c for c in kids if c in nodes)
                for uid, kids in manifest["child_map"].items() if uid in nodes}
    return Graph(nodes, children)


@cache
def project_graph() -> Graph:
    """The graph of the manifest on disk. Loading the code location reads it and never parses dbt, except on a
    fresh clone with no manifest yet; `spbe` commands refresh a stale one first (ensure_manifest)."""
    if not MANIFEST_PATH.exists():
        parsed_manifest()
    return read_graph()


@cache
def project_var(name: str) -> Any:
    """A project variable of dbt_project.yml (``vars:``): facts the SQL and the Python both use live there once."""
    import yaml

    return yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))["vars"][name]


def partial_selection(datasets: Iterable[str], arrivals_only: bool) -> list[str]:
    """dbt selectors for a build after new data: the log's staging view (it holds the build's position), the
    models reporting every arrival, and everything downstream of the lake datasets whose files changed."""
    selectors = [LOG_MODEL, f"tag:{ARRIVALS_TAG}+"]
    if not arrivals_only:
        selectors += [f"source:{LAKE_SOURCE}.{d}+" for d in sorted(datasets)]
    return selectors


# ---- keeping the manifest current --------------------------------------------------------------------------

def _project_files() -> list[Path]:
    return [DBT_PROJECT_DIR / "dbt_project.yml", DBT_PROJECT_DIR / "profiles.yml",
            *(p for folder in ("models", "macros", "tests") for p in (DBT_PROJECT_DIR / folder).rglob("*")),
            *REFERENCE_DIR.glob("*.csv")]


def manifest_is_current(manifest: Path = MANIFEST_PATH) -> bool:
    """Whether manifest.json is newer than every dbt file and seed (else the asset graph may be stale)."""
    if not manifest.exists():
        return False
    built = manifest.stat().st_mtime
    return all(p.stat().st_mtime <= built for p in _project_files() if p.exists())


_parsed: Any = None  # the dbt Manifest object of the last parse in this process (a warm worker's children share it)
_parsed_stamp: tuple | None = None  # the project files it was parsed from (see _project_stamp)
_frozen = False  # a forked child of the warm worker: use the worker's manifest, never parse


def freeze() -> None:
    """From now on, this process uses the manifest it has (a warm worker's child: see parsed_manifest)."""
    global _frozen
    _frozen = True


def _project_stamp() -> tuple:
    files = [p for p in _project_files() if p.is_file()]
    return len(files), max((p.stat().st_mtime_ns for p in files), default=0)


@contextlib.contextmanager
def _data_dir_setting(data_dir: Path):
    """SPBE_DATA_DIR set to ``data_dir`` for a while. A parse sets it to the bundled data directory: dbt keeps
    its partial parse (dbt/target/partial_parse.msgpack) only while the profile's connection settings are
    unchanged, and the profile names the data directory, so a parse from another data directory would parse
    every file again (about 4 s more). The manifest does not depend on it: the sources name their files
    relative to the data directory, and the one macro that looks for files answers without looking at parse
    time (dbt/macros/data_files.sql). Builds take the manifest object and set the run's own directory."""
    previous = os.environ.get(DATA_DIR_ENV)
    os.environ[DATA_DIR_ENV] = str(data_dir)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(DATA_DIR_ENV, None)
        else:
            os.environ[DATA_DIR_ENV] = previous


@contextlib.contextmanager
def _parse_lock(target: Path, mode: int):
    """dbt/target/.parse.lock: a parse holds it exclusively, readers of the manifest shared."""
    target.mkdir(parents=True, exist_ok=True)
    with open(target / ".parse.lock", "a") as lock:
        fcntl.flock(lock, mode)
        yield


def ensure_manifest() -> None:
    """dbt parse when a dbt file changed since the last one. Parsing processes share dbt/target: one parses
    while the others wait on a lock, then find it current."""
    if manifest_is_current():
        return
    parsed_manifest()


def parsed_manifest(static_parser: bool = True) -> Any:
    """dbt's Manifest object for this process, parsed (partially, from dbt/target) when the project's files
    changed since this process last parsed them. A parse by another process does not count: a warm worker's
    children keep the worker's manifest and never parse (dbt's static parser is native code whose threads
    do not survive a fork; the worker parses without it, and restarts when a dbt file changes)."""
    global _parsed, _parsed_stamp
    if _frozen and _parsed is not None:
        return _parsed
    stamp = _project_stamp()
    if _parsed is not None and stamp == _parsed_stamp:
        return _parsed
    from dbt.cli.main import dbtRunner

    with _parse_lock(MANIFEST_PATH.parent, fcntl.LOCK_EX), _data_dir_setting(BUNDLED_DATA_DIR):
        args = ["parse", "--quiet", "--log-level-file", "none", "--project-dir", str(DBT_PROJECT_DIR),
                "--profiles-dir", str(DBT_PROJECT_DIR)]
        result = dbtRunner().invoke(args if static_parser else [*args, "--no-static-parser"])
        if not result.success:
            raise RuntimeError(f"dbt parse failed: {result.exception}")
        _parsed, _parsed_stamp = result.result, stamp
    project_graph.cache_clear()
    return _parsed


# ---- running dbt -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class NodeResult:
    unique_id: str
    status: str  # success | error | skipped | pass | fail | warn | runtime error
    message: str
    execution_time: float
    failures: int | None
    relation: str | None  # tests with store_failures: the view of their failing rows


@dataclass(frozen=True)
class DbtOutcome:
    success: bool
    results: list[NodeResult]
    error: str | None  # dbt's own error when it could not run at all


# A build in the event path writes no JSON artifacts (the results come back as objects) and no log: 5.4 s ->
# 4.4 s for a submission's 57 nodes (docs/performance.md). (--no-populate-cache saved 0.6 s more, but a full
# build then failed with "Cache inconsistency detected: in rename".) No dbt command writes dbt's log file:
# it would go to the repository's dbt/logs, outside the data directory; results and errors come back here.
# dbt unit tests check logic on made-up rows, not the data: tests/test_dbt_unit_tests.py runs them, builds do not.
BUILD_FLAGS = ("--no-write-json", "--log-level", "none", "--no-version-check", "--exclude-resource-type", "unit_test")


def stream_dbt(command: list[str], data_dir: Path, target_path: Path, variables: dict[str, Any] | None = None,
               quiet_build: bool = True) -> Generator[NodeResult, None, DbtOutcome]:
    """Run a dbt command in this process, with this process's parsed project, on the warehouse of
    ``data_dir``, yielding each node's result as it finishes (dbt runs in a thread meanwhile); returns the
    outcome. Artifacts go under ``target_path`` (one per data directory, so that builds of two data
    directories never mix files). The profile reads the data directory from SPBE_DATA_DIR: it is set to
    ``data_dir`` while dbt runs, so that a run's data directory (the ``data_dir`` resource) is dbt's too."""
    from dbt.cli.main import dbtRunner

    manifest = parsed_manifest()
    args = [*command, "--quiet", "--no-use-colors", "--log-level-file", "none", "--project-dir",
            str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR), "--target-path", str(target_path)]
    if quiet_build and command[0] == "build":
        args += BUILD_FLAGS
    if variables:
        args += ["--vars", json.dumps(variables)]
    finished: queue.Queue[NodeResult | None] = queue.Queue()

    def on_event(event) -> None:
        if event.info.name == "NodeFinished":
            run, uid = event.data.run_result, event.data.node_info.unique_id
            node = manifest.nodes.get(uid)
            finished.put(NodeResult(uid, run.status, run.message or "", float(run.execution_time or 0),
                                    run.num_failures, getattr(node, "relation_name", None)))

    box: dict[str, Any] = {}

    def invoke() -> None:
        try:
            box["result"] = dbtRunner(manifest=manifest, callbacks=[on_event]).invoke(args)
        except BaseException as e:  # noqa: BLE001 (handed to the caller below)
            box["error"] = e
        finally:
            finished.put(None)

    thread = threading.Thread(target=invoke, name="dbt", daemon=True)
    results = []
    with _data_dir_setting(data_dir):
        thread.start()
        try:
            while (item := finished.get()) is not None:
                results.append(item)
                yield item
        finally:
            thread.join()
            release_connection()
    if "error" in box:
        raise box["error"]
    result = box["result"]
    error = None if result.exception is None else f"{type(result.exception).__name__}: {result.exception}"
    return DbtOutcome(bool(result.success), results, error)


def run_dbt(command: list[str], data_dir: Path, target_path: Path,
            variables: dict[str, Any] | None = None) -> DbtOutcome:
    """``stream_dbt`` to the end."""
    stream = stream_dbt(command, data_dir, target_path, variables)
    while True:
        try:
            next(stream)
        except StopIteration as done:
            return done.value


def release_connection() -> None:
    """Close the DuckDB connection dbt-duckdb keeps open after a run (DuckDBConnectionManager._ENV in 1.11, a
    pinned version; tests/test_definitions.py checks the build database can be opened after a build)."""
    with contextlib.suppress(ImportError):
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager

        env = DuckDBConnectionManager._ENV
        if env is not None:
            env.close()
        DuckDBConnectionManager.close_all_connections()
