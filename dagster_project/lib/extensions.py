"""DuckDB extensions from the installed wheels, never from the network.

Left to itself, DuckDB downloads an extension from extensions.duckdb.org the first time a statement needs
one. Here nothing is downloaded at run time: the DuckLake and PostgreSQL extensions come from PyPI as wheels
(duckdb-extension-ducklake, duckdb-extension-postgres), built for exactly the pinned DuckDB. ``connect``
turns automatic installing and loading off, installs the wheels' files into a private extension directory
(from a file, so no download) and loads them; a statement that needs any other extension then fails at once,
saying which, instead of reaching for the network.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
from collections.abc import Iterable
from pathlib import Path

import duckdb

from dagster_project.lib.sql_text import literal

# extension -> the package of its wheel (the file inside is named after the extension)
WHEELS = {"ducklake": "duckdb_extension_ducklake", "postgres": "duckdb_extension_postgres"}
OFFLINE = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


def wheel_file(name: str) -> Path:
    """The extension's binary in its installed wheel, for this DuckDB's version."""
    spec = importlib.util.find_spec(WHEELS[name])
    if spec is None or spec.origin is None:
        raise RuntimeError(f"the DuckDB extension {name!r} is not installed: its wheel is {WHEELS[name]} "
                           "(a dependency of this project: `make install`)")
    found = Path(spec.origin).parent / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if not found.is_file():
        raise RuntimeError(f"{WHEELS[name]} has no {name} extension for DuckDB {duckdb.__version__} ({found}): "
                           "the wheel's version must be DuckDB's")
    return found


def offline_config(extension_dir: Path) -> dict[str, object]:
    """A connection's configuration: no automatic download or load; installed extensions live in
    ``extension_dir`` (never the user's ~/.duckdb)."""
    return {**OFFLINE, "extension_directory": str(extension_dir)}


def connect(database: str, extension_dir: Path, extensions: Iterable[str] = (), read_only: bool = False,
            config: dict[str, object] | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that downloads nothing, with ``extensions`` loaded from their wheels."""
    con = duckdb.connect(database, read_only=read_only, config={**offline_config(extension_dir), **(config or {})})
    try:
        load(con, extension_dir, extensions)
    except BaseException:
        con.close()
        raise
    return con


def load(con: duckdb.DuckDBPyConnection, extension_dir: Path, extensions: Iterable[str]) -> None:
    """Install (from the wheel's file, once per extension directory) and load each extension."""
    names = list(extensions)
    if not names:
        return
    extension_dir.mkdir(parents=True, exist_ok=True)
    with _install_lock(extension_dir):  # two processes installing into one folder would race on the file
        for name in names:
            con.execute(f"INSTALL {literal(str(wheel_file(name)))}")  # a no-op once installed
    for name in names:
        con.execute(f"LOAD {name}")


@contextlib.contextmanager
def _install_lock(extension_dir: Path):
    with open(extension_dir / ".install.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
