{#- The staging of a lake dataset of submission files (institutions', or work units'): one list of columns
    and types for the casts and for the empty relation used before any file landed. -#}
{% macro stage_submission_files(table_name, extra_columns={}) %}
{%- set columns = {
    'institution_id': 'varchar', 'institution_code': 'varchar', 'year': 'integer', 'stage': 'varchar',
    'indicator': 'integer', 'level': 'integer', 'explanation': 'varchar', 'evidence': 'varchar',
    'submitted_at': 'timestamptz', 'framework': 'varchar', 'coverage': 'double', 'is_late': 'boolean',
    'row_number': 'integer', 'source_sha256': 'varchar', 'received_at': 'timestamptz', 'original_name': 'varchar',
} -%}
{%- do columns.update(extra_columns) -%}
{{ stage_lake_files(table_name, columns, {'row_number': 'source_row_number'}) }}
{% endmacro %}


{#- The staging of any lake dataset: its files cast to ``columns`` (name -> type) and renamed by ``renames``,
    or, before its first file lands, an empty relation of the same columns. -#}
{% macro stage_lake_files(table_name, columns, renames={}) %}
with source as (
    {% if data_files_exist('lake/' ~ table_name ~ '/*/*.parquet') %}
    select * from {{ source('lake', table_name) }}
    {% else %}
    select {% for name, type in columns.items() %}null::{{ type }} as {{ name }}{{ ", " if not loop.last }}{% endfor %}
    where false
    {% endif %}
),

renamed as (
    select
        {%- for name, type in columns.items() %}
        {{ name }}::{{ type }} as {{ renames.get(name, name) }}{{ "," if not loop.last }}
        {%- endfor %}
    from source
)

select * from renamed
{% endmacro %}


{#- The current rows of a release dataset per year: those of the file named by the year's latest ingest-log
    line that takes effect (lib/ingest_log.py decides that when the line is written). A corrected release
    supersedes the earlier file without deleting it; landing an earlier file again makes it current again. -#}
{% macro current_release_rows(dataset, staging_model) %}
with current_files as (
    select year, arg_max(sha256, log_order) as source_sha256
    from {{ ref('stg_state__ingest_log') }}
    where dataset = '{{ dataset }}' and takes_effect
    group by year
)

select results.*
from {{ ref(staging_model) }} as results
inner join current_files using (year, source_sha256)
{% endmacro %}


{#- The SPBE weighting (PermenPANRB 59/2020): an aspect, domain or total index is the weight-averaged level
    of the indicators beneath it (those matching `where`, when given). -#}
{% macro weighted_level(level='level', weight='weight_pct', where=none) -%}
    {%- set only = ' filter (where ' ~ where ~ ')' if where else '' -%}
    sum({{ level }} * {{ weight }}){{ only }} / sum({{ weight }}){{ only }}
{%- endmacro %}

{# The evaluation stages in their order (lib/submissions.py STAGES; tests/test_analysis.py checks they agree). #}
{% macro stage_order(stage) -%}
    list_position(['self_assessment', 'document_review', 'interview', 'site_visit', 'final'], {{ stage }})
{%- endmacro %}
