"""SPBE Monitor: official SPBE results and regional submissions into a published DuckDB warehouse."""
