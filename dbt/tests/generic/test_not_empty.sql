{#- Fails when the model has no rows (after mdsinabox's empty_table). -#}
{% test not_empty(model) %}
select 1 as no_rows
from (select count(*) as n from {{ model }}) as c
where c.n = 0
{% endtest %}
