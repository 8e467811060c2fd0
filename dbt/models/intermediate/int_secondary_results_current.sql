-- The current secondary rows per year, as for official releases (macro current_release_rows): rows of every
-- institution, matched or not; several rows may quote one institution and year (a conflict is kept).
{{ current_release_rows('secondary_results', 'stg_lake__secondary_results') }}
