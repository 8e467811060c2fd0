"""The README's analyst guide: every one of its ten queries runs on the published warehouse and answers."""

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
