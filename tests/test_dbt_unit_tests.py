"""The dbt unit tests (`unit_tests:` in the marts' YAML): the rules of the models whose logic is arithmetic or
rules, on made-up rows. dbt reads the column types of each mocked input from the built warehouse."""

from dagster_project.lib.dbt_project import project_graph, run_dbt
from tests.conftest import data_dir_set_to


def test_every_dbt_unit_test_passes(copy_of_built, tmp_path):
    paths = copy_of_built  # dbt writes into the build database
    with data_dir_set_to(paths):
        outcome = run_dbt(["test", "--select", "test_type:unit"], paths.root, tmp_path / "target")
    failures = [f"{r.unique_id}: {r.status} {r.message}" for r in outcome.results if r.status != "pass"]
    assert outcome.success and not failures, "\n".join(failures) or outcome.error
    ran = {r.unique_id.split(".")[-1] for r in outcome.results}
    assert {"target_gap_gives_each_status_by_its_rule", "target_gap_projects_a_straight_line_from_the_baseline",
            "target_steps_take_the_largest_gains_first_and_stop_when_the_gap_closes",
            "computed_index_takes_the_band_of_its_unrounded_value"} <= ran
    assert project_graph().marts  # the graph of the same manifest still lists the marts
