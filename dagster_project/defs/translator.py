"""dbt nodes as Dagster asset specs and checks: the translator.

A model or seed becomes an asset keyed by its schema and name (marts, in the main schema, by their name
alone: the table name analysts query), grouped by what it is (reference seeds, the warehouse's models),
described by its dbt description, with its columns as the table schema and its dbt parents as dependencies.
A source becomes the asset that writes it (``meta.dagster.asset_key``). A dbt test becomes an asset check
on the model it tests. Read from the manifest JSON: no dbt import.
"""

import dagster as dg

from dagster_project.lib.dbt_project import Graph, Node

REFERENCE_KEY = dg.AssetKey("reference_tables")
DBT_KINDS = {"dbt", "duckdb"}


def asset_key(node: Node) -> dg.AssetKey:
    if node.resource_type == "source" and node.asset_key:
        return dg.AssetKey(list(node.asset_key))
    return dg.AssetKey(node.name if node.schema == "main" else [node.schema, node.name])


def _spec(graph: Graph, node: Node) -> dg.AssetSpec:
    parents = [graph.nodes[p] for p in node.parents if p in graph.nodes]
    deps = [asset_key(p) for p in parents if p.resource_type != "source" or p.asset_key]
    if node.resource_type == "seed":
        deps.append(REFERENCE_KEY)
    schema = dg.TableSchema(columns=[dg.TableColumn(name, description=text or None) for name, text in node.columns])
    return dg.AssetSpec(
        asset_key(node),
        group_name="reference" if node.resource_type == "seed" else "warehouse",
        kinds=DBT_KINDS | ({"seed"} if node.resource_type == "seed" else set()),
        description=node.description or f"dbt {node.resource_type} {node.name}",
        deps=deps,
        tags={"layer": node.layer},
        metadata={"dagster/column_schema": schema, "dbt/unique_id": node.unique_id},
        skippable=True,  # a partial build materializes only what it rebuilt
    )


def dbt_specs(graph: Graph) -> list[dg.AssetSpec]:
    return [_spec(graph, n) for n in graph.of_type("model", "seed")]


def check_name(node: Node) -> str:
    return node.name


def dbt_check_specs(graph: Graph) -> list[dg.AssetCheckSpec]:
    specs = []
    for test in graph.of_type("test"):
        target = graph.nodes.get(test.attached_to or "")
        if target is None or target.resource_type not in ("model", "seed"):
            continue
        specs.append(dg.AssetCheckSpec(
            check_name(test), asset=asset_key(target), blocking=test.severity == "error",
            description=test.description or f"dbt test {test.name}",
        ))
    return specs
