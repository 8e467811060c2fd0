"""Pure domain functions: no Dagster imports, tested on their own."""
