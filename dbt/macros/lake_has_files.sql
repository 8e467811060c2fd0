{#- Whether a lake dataset has any Parquet file yet (a fresh warehouse may have no submissions). At parse
    time it answers true, so that source() is always registered. -#}
{% macro lake_has_files(dataset) %}
    {% if not execute %}{{ return(true) }}{% endif %}
    {% set pattern = env_var('SPBE_DATA_DIR', '../data') ~ '/lake/' ~ dataset ~ '/*/*.parquet' %}
    {% set found = run_query("select count(*) from glob('" ~ (pattern | replace("'", "''")) ~ "')") %}
    {{ return(found.columns[0].values()[0] > 0) }}
{% endmacro %}
