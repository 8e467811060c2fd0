{#- Whether files matching a pattern exist under the data directory (a fresh warehouse may have no submissions
    yet). Asked when a model is built, with the absolute path of the current setting; only the answer shapes
    the SQL, so no path is written into the database. At parse time it answers true. -#}
{% macro data_files_exist(pattern) %}
    {% if not execute %}{{ return(true) }}{% endif %}
    {% set absolute = env_var('SPBE_DATA_DIR', '../data') ~ '/' ~ pattern %}
    {% set found = run_query("select count(*) from glob('" ~ (absolute | replace("'", "''")) ~ "')") %}
    {{ return(found.columns[0].values()[0] > 0) }}
{% endmacro %}

{#- The ingest log with explicit column types, so that a field absent from the first lines is never lost,
    by a path relative to the data directory (the profile's file_search_path; written as a pattern, because
    DuckDB looks a plain relative file name up in the working directory first). A torn line (a process killed
    while appending) is skipped, as lib/ingest_log.py skips it. Before the first landing there is no file: an
    empty relation with the same columns. -#}
{% macro read_ingest_log() %}
{%- set columns = {
    'seq': 'bigint', 'logged_at': 'timestamptz', 'run_id': 'varchar', 'dataset': 'varchar', 'sha256': 'varchar',
    'original_name': 'varchar', 'source': 'varchar', 'source_version': 'varchar', 'received_at': 'timestamptz',
    'status': 'varchar', 'rows': 'integer', 'reason': 'varchar', 'year': 'integer', 'institution_id': 'varchar',
    'stage': 'varchar', 'work_unit': 'varchar', 'coverage': 'double', 'is_late': 'boolean',
    'takes_effect': 'boolean', 'changes_data': 'boolean',
} -%}
{%- if data_files_exist('state/ingest_log.jsonl') -%}
read_json('state/ingest_log.json[l]', format = 'newline_delimited', ignore_errors = true, columns = {
    {%- for name, type in columns.items() %}'{{ name }}': '{{ type }}'{{ ", " if not loop.last }}{% endfor -%}
})
{%- else -%}
(select {% for name, type in columns.items() %}null::{{ type }} as {{ name }}{{ ", " if not loop.last }}{% endfor %}
 where false)
{%- endif -%}
{% endmacro %}
