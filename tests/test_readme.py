"""The README's analyst guide: every one of its ten queries runs on the published warehouse and answers."""

import json
import re

import pytest

from dagster_project.paths import REPO_ROOT


def guide_queries() -> list[str]:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    guide = readme.split("## Analyst guide", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", guide, re.S)


def test_the_guide_has_ten_questions():
    assert len(guide_queries()) == 10


@pytest.mark.parametrize("number", range(1, 11))
def test_each_guide_query_answers(published, number):
    sql = guide_queries()[number - 1]
    rows = published.execute(sql).fetchall()
    assert rows, f"question {number} returned nothing:\n{sql}"


def glossary_codes() -> set[str]:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Codes in the marts", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"`([a-z][a-z0-9_]*)`", section))


def test_the_glossary_lists_every_value_the_marts_accept():
    from dagster_project.lib.dbt_project import MANIFEST_PATH

    manifest = json.loads(MANIFEST_PATH.read_text(encoding="utf-8"))
    accepted = {str(v) for n in manifest["nodes"].values()
                if n["resource_type"] == "test" and n.get("test_metadata", {}).get("name") == "accepted_values"
                and ".marts." in f".{'.'.join(manifest['nodes'].get(n['attached_node'] or '', {}).get('fqn', []))}."
                for v in n["test_metadata"]["kwargs"]["values"] if re.fullmatch(r"[a-z][a-z0-9_]*", str(v))}
    assert accepted and not accepted - glossary_codes()


def test_the_glossary_lists_every_code_in_the_published_marts(published):
    """A code: a text column of at most 30 distinct values, each a lower-case identifier."""
    columns = published.execute("select table_name, column_name from duckdb_columns() where data_type = 'VARCHAR' "
                                "and table_name in (select table_name from duckdb_tables()) "
                                "and table_name <> 'publish_manifest'").fetchall()
    missing = {}
    for table, column in columns:
        values = [v for (v,) in published.execute(
            f'select distinct "{column}" from "{table}" where "{column}" is not null limit 31').fetchall()]  # noqa: S608
        if 0 < len(values) <= 30 and all(re.fullmatch(r"[a-z][a-z0-9_]*", v) and not re.fullmatch(r"[0-9a-f]{64}", v)
                                         for v in values):  # a lone sha256 that starts with a letter is no code
            unknown = set(values) - glossary_codes()
            if unknown:
                missing[f"{table}.{column}"] = sorted(unknown)
    assert not missing


def test_every_test_the_docs_name_exists_in_the_file_they_name():
    """docs/reliability.md and the other pages cite tests as `tests/<file>.py::<name>` (a bare `::<name>`
    after it means the same file): a test merged or moved must take its citations along."""
    defined: dict[str, set[str]] = {}
    for path in (REPO_ROOT / "tests").rglob("test_*.py"):
        for name in re.findall(r"^def (test_\w+)", path.read_text(encoding="utf-8"), re.M):
            defined.setdefault(name, set()).add(path.relative_to(REPO_ROOT).as_posix())
    wrong = []
    for doc in [REPO_ROOT / "README.md", *(REPO_ROOT / "docs").glob("*.md")]:
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            file = None
            for cited_file, name in re.findall(r"(tests/[\w/]+\.py)?::(test_\w+)", line):
                file = cited_file or file
                if file not in defined.get(name, set()):
                    wrong.append(f"{doc.name}:{number}: {file}::{name}")
    assert wrong == []
