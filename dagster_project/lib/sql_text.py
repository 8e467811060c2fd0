"""Quoting for the few statements DuckDB takes no bound parameter in (ATTACH, INSTALL, COMMENT ON) and for
table and column names. Only our own values go through here: settings, paths, dbt's names and descriptions;
anything from outside is a bound parameter."""


def literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def identifier(name: str) -> str:
    """A quoted SQL name."""
    return '"' + name.replace('"', '""') + '"'
