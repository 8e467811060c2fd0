{#- Use the configured schema as is (staging, intermediate, reference); marts land in main,
    so analysts write `select * from fct_rankings`. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ (custom_schema_name or target.schema) | trim }}
{%- endmacro %}
