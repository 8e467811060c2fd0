-- The current official result per (institution, year): rows of the file named by the year's latest ingest-log
-- line that takes effect (macro current_release_rows). A corrected release supersedes the earlier file without
-- deleting it, and landing an earlier file again makes it current again.
{{ current_release_rows('official_results', 'stg_lake__official_results') }}
