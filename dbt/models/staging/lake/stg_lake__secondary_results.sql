{#- One list of columns and types, for the casts and for the empty relation before any file landed. -#}
{%- set columns = {
    'institution_id': 'varchar', 'year': 'integer', 'source_sha256': 'varchar', 'row_number': 'integer',
    'institution_name': 'varchar', 'category': 'varchar', 'given_institution_id': 'varchar',
    'index_value': 'double', 'predikat': 'varchar', 'policy_index': 'double', 'governance_index': 'double',
    'management_index': 'double', 'services_index': 'double', 'source_urls': 'varchar', 'notes': 'varchar',
    'index_decimals': 'integer', 'framework': 'varchar', 'formula_residual': 'double',
    'predikat_consistency': 'varchar', 'matched_by': 'varchar', 'unmatched_reason': 'varchar',
    'received_at': 'timestamptz', 'original_name': 'varchar',
} -%}
{%- set renames = {'row_number': 'source_row_number', 'institution_name': 'published_name',
                   'category': 'published_category', 'original_name': 'release_url'} -%}

{{ stage_lake_files('secondary_results', columns, renames) }}
