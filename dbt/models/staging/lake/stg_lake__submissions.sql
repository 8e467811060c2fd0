{#- One list of columns and types: the casts below, and the empty relation used before any file landed. -#}
{%- set columns = {
    'institution_id': 'varchar', 'institution_code': 'varchar', 'year': 'integer', 'stage': 'varchar',
    'indicator': 'integer', 'level': 'integer', 'explanation': 'varchar', 'evidence': 'varchar',
    'submitted_at': 'timestamptz', 'framework': 'varchar', 'coverage': 'double', 'is_late': 'boolean',
    'row_number': 'integer', 'source_sha256': 'varchar', 'received_at': 'timestamptz', 'original_name': 'varchar',
} -%}

with source as (
    {% if lake_has_files('submissions') %}
    select * from {{ source('lake', 'submissions') }}
    {% else %}
    select {% for name, type in columns.items() %}null::{{ type }} as {{ name }}{{ ", " if not loop.last }}{% endfor %}
    where false
    {% endif %}
),

renamed as (
    select
        {%- for name, type in columns.items() %}
        {{ name }}::{{ type }} as {{ 'source_row_number' if name == 'row_number' else name }}{{ "," if not loop.last }}
        {%- endfor %}
    from source
)

select * from renamed
