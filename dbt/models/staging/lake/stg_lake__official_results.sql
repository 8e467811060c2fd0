with source as (
    select * from {{ source('lake', 'official_results') }}
),

renamed as (
    select
        ---------- ids
        institution_id::varchar as institution_id,
        year::integer as year,
        source_sha256::varchar as source_sha256,
        row_number::integer as source_row_number,
        ---------- as published
        institution_name::varchar as published_name,
        category::varchar as published_category,
        kemendagri_code::varchar as kemendagri_code,
        policy_index::double as policy_index,
        governance_index::double as governance_index,
        management_index::double as management_index,
        services_index::double as services_index,
        index_value::double as index_value,
        predikat::varchar as predikat,
        source_table::varchar as source_table,
        source_row_no::varchar as source_row_no,
        source_note::varchar as source_note,
        source_document::varchar as source_document,
        ---------- validation columns computed at landing
        framework::varchar as framework,
        missing_values::varchar as missing_values,
        formula_residual::double as formula_residual,
        predikat_consistency::varchar as predikat_consistency,
        ---------- lineage
        received_at::timestamptz as received_at,
        original_name::varchar as release_url
    from source
)

select * from renamed
