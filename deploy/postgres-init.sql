-- The DuckLake catalog's database, beside Dagster's (compose.yaml).
CREATE DATABASE lake OWNER spbe;
