"""The rows a failing dbt test found: read from the view dbt stores them in (``store_failures``), for the
check's metadata in the Dagster UI."""

import duckdb

from dagster_project.paths import DataPaths


def failing_rows(paths: DataPaths, relation: str, limit: int) -> tuple[list[dict], str | None]:
    """Up to ``limit`` rows of a dbt test's failures view, or none with the reason they are unavailable (a
    build that failed before dbt could write the view, say). The view reads files relative to the data
    directory, as dbt's connection does (the profile's file_search_path)."""
    try:
        with duckdb.connect(str(paths.build_db), read_only=True,
                            config={"file_search_path": str(paths.root)}) as con:
            cursor = con.execute(f"select * from {relation} limit {int(limit)}")  # noqa: S608 (dbt's relation name)
            names = [d[0] for d in cursor.description]
            return [{n: str(v) for n, v in zip(names, row, strict=True)} for row in cursor.fetchall()], None
    except duckdb.Error as e:
        return [], f"{relation}: rows unavailable ({e.__class__.__name__}: {str(e).splitlines()[0]})"
