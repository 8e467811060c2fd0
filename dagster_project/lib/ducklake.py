"""The warehouse on DuckLake: a SQL catalog in PostgreSQL, the marts as Parquet files in a folder.

``SPBE_WAREHOUSE`` chooses where the marts are published:
- ``file`` (the default): one DuckDB file, replaced whole by a rename (lib/publish.py);
- ``ducklake``: the same file, and then the same tables committed to a DuckLake catalog in one transaction:
  one DuckLake snapshot per publish, which readers anywhere attach read-only and query as of any earlier
  snapshot (time travel). The file stays the build machine's own copy for its reports.

dbt never writes to DuckLake: it builds in the local build database (two threads, as in file mode), and
only publish writes the catalog, from one connection in one transaction. So the DuckLake bug where a dbt
build with more than one thread creates objects in the wrong schema (ducklake issue #1404, met here with
dbt-duckdb 1.11.1) cannot happen (docs/scaling.md).

Settings: ``SPBE_DUCKLAKE_CATALOG`` is DuckLake's metadata database, ``postgres:<libpq connection string>``
(default: the server `spbe postgres start` runs in the data directory); ``SPBE_DUCKLAKE_DATA_PATH`` the
folder of its Parquet files (default ``<data dir>/ducklake/``; a folder every reader can read).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from dagster_project.lib import extensions
from dagster_project.lib.local_postgres import LocalPostgres
from dagster_project.lib.sql_text import identifier, literal
from dagster_project.paths import DataPaths

BACKEND_ENV = "SPBE_WAREHOUSE"
BACKENDS = ("file", "ducklake")
CATALOG_ENV = "SPBE_DUCKLAKE_CATALOG"
DATA_PATH_ENV = "SPBE_DUCKLAKE_DATA_PATH"
ALIAS = "spbe"  # the attached catalog's name in a connection (USE spbe: marts by their own names)


def backend() -> str:
    value = os.environ.get(BACKEND_ENV, "file").strip().lower() or "file"
    if value not in BACKENDS:
        raise ValueError(f"{BACKEND_ENV}={value!r}: expected one of {', '.join(BACKENDS)}")
    return value


def local_server(paths: DataPaths) -> LocalPostgres:
    """The PostgreSQL server `spbe postgres start` runs for this data directory."""
    return LocalPostgres(paths.postgres)


@dataclass(frozen=True)
class DuckLakeSetting:
    catalog: str  # what follows "ducklake:" in ATTACH: postgres:<dsn>, or a DuckDB file for one machine
    data_path: Path
    extension_dir: Path

    @property
    def extensions(self) -> tuple[str, ...]:
        return ("ducklake", "postgres") if self.catalog.startswith("postgres:") else ("ducklake",)


def setting(paths: DataPaths) -> DuckLakeSetting:
    catalog = os.environ.get(CATALOG_ENV) or f"postgres:{local_server(paths).dsn}"
    data_path = Path(os.environ.get(DATA_PATH_ENV) or paths.ducklake_files).resolve()
    return DuckLakeSetting(catalog, data_path, paths.duckdb_extensions)


def redacted(text: str) -> str:
    """A message naming the catalog, with any password in its connection string hidden."""
    return re.sub(r"(password\s*=\s*)('[^']*'|\S+)", r"\1***", text, flags=re.IGNORECASE)


def attach(con: duckdb.DuckDBPyConnection, lake: DuckLakeSetting, read_only: bool,
           as_of: datetime | None = None) -> None:
    """Attach the catalog as ``spbe`` and make it the default database. Read-only attaches may name a moment:
    the snapshot current then (DuckLake time travel)."""
    options = [f"DATA_PATH {literal(str(lake.data_path) + '/')}"] if not read_only else ["READ_ONLY"]
    if as_of is not None:
        options.append(f"SNAPSHOT_TIME {literal(as_of.isoformat())}")
    con.execute(f"ATTACH {literal('ducklake:' + lake.catalog)} AS {ALIAS} ({', '.join(options)})")
    con.execute(f"USE {ALIAS}")


class CatalogUnavailable(RuntimeError):
    """The catalog could not be attached: the server is down, or the setting names no catalog."""


def connect(lake: DuckLakeSetting, read_only: bool = True, as_of: datetime | None = None,
            config: dict[str, object] | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the catalog attached (``spbe``, the default database)."""
    con = extensions.connect(":memory:", lake.extension_dir, lake.extensions, config=config)
    try:
        attach(con, lake, read_only, as_of)
    except duckdb.IOException as e:  # a catalog that cannot be reached (a missing snapshot is another error)
        con.close()
        raise CatalogUnavailable(redacted(
            f"the DuckLake catalog {lake.catalog} cannot be attached ({str(e).splitlines()[0]}): start the "
            f"local server with `spbe postgres start`, or set {CATALOG_ENV} to a running one")) from None
    except BaseException:
        con.close()
        raise
    return con


def check(lake: DuckLakeSetting) -> None:
    """Raise CatalogUnavailable now rather than after a build: attach the catalog (creating it on first use,
    as publish would) and let go."""
    lake.data_path.mkdir(parents=True, exist_ok=True)
    connect(lake, read_only=False).close()


def publish_snapshot(lake: DuckLakeSetting, source_db: Path, tables: Sequence[str]) -> int:
    """Commit ``tables`` of ``source_db`` (the file just written for publishing) to the catalog in one
    transaction: each replaced whole, with the table and column comments the file has; tables the catalog has
    and the file has not are dropped. Returns the new snapshot's id. A failure commits nothing."""
    lake.data_path.mkdir(parents=True, exist_ok=True)
    con = connect(lake, read_only=False)
    try:
        con.execute(f"ATTACH {literal(str(source_db))} AS source (READ_ONLY)")
        comments = con.execute(
            "select table_name, null, comment from duckdb_tables() where database_name = 'source' and comment "
            "is not null union all select table_name, column_name, comment from duckdb_columns() "
            "where database_name = 'source' and comment is not null").fetchall()
        existing = {t for (t,) in con.execute(
            "select table_name from duckdb_tables() where database_name = ? and schema_name = 'main'",
            [ALIAS]).fetchall()}
        con.execute("BEGIN")
        for t in tables:
            con.execute(f"CREATE OR REPLACE TABLE {ALIAS}.main.{identifier(t)} AS "  # noqa: S608
                        f"SELECT * FROM source.main.{identifier(t)}")
        for table, column, text in comments:
            if table in tables:
                target = f"TABLE {ALIAS}.main.{identifier(table)}" if column is None else \
                    f"COLUMN {ALIAS}.main.{identifier(table)}.{identifier(column)}"
                con.execute(f"COMMENT ON {target} IS {literal(text)}")
        for t in sorted(existing - set(tables)):
            con.execute(f"DROP TABLE {ALIAS}.main.{identifier(t)}")
        con.execute("COMMIT")
        return int(con.execute(f"SELECT max(snapshot_id) FROM {ALIAS}.snapshots()").fetchone()[0])  # noqa: S608
    finally:
        con.close()
