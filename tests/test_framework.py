"""Framework facts read from the reference tables: weights, bands, predikat consistency."""

import pytest

from dagster_project.lib.framework import (
    FRAMEWORK_2020,
    domain_weights,
    framework_for_year,
    predikat_bands,
    predikat_consistency,
    predikat_for,
)


def test_domain_weights_are_the_permen_59_2020_weights():
    assert domain_weights() == pytest.approx((0.13, 0.25, 0.165, 0.455))
    assert sum(domain_weights()) == pytest.approx(1.0)


@pytest.mark.parametrize(("value", "predikat"), [
    (1.0, "Kurang"), (1.79, "Kurang"), (1.8, "Cukup"), (2.59, "Cukup"), (2.6, "Baik"), (3.49, "Baik"),
    (3.5, "Sangat Baik"), (4.19, "Sangat Baik"), (4.2, "Memuaskan"), (5.0, "Memuaskan"),
])
def test_bands_have_inclusive_lower_bounds(value, predikat):
    assert predikat_for(value, predikat_bands()) == predikat


def test_values_outside_every_band_have_no_predikat():
    assert predikat_for(5.01, predikat_bands()) is None
    assert predikat_for(0.5, predikat_bands()) is None


@pytest.mark.parametrize(("index", "published", "expected"), [
    (3.5, "Sangat Baik", "consistent"),
    (3.5, "Baik", "band_edge_below"),        # Kab. Pacitan 2024: 3.496 rounds up to 3.50
    (1.8, "Kurang", "band_edge_below"),      # Kab. Nias Barat 2024
    (3.51, "Baik", "inconsistent"),          # not at the edge: a real disagreement
    (3.5, "Cukup", "inconsistent"),          # two bands below
    (2.0, "Baik", "inconsistent"),           # above its band
    (None, "Baik", None),
    (0.68, "Kurang", "consistent"),          # below every band's bound is still the lowest band
    (0.68, "Cukup", "inconsistent"),
])
def test_predikat_consistency(index, published, expected):
    assert predikat_consistency(index, published, predikat_bands()) == expected


def test_each_framework_has_its_own_bands():
    assert [b.predikat for b in predikat_bands("PermenPANRB 8/2026")][-1] == "Memuaskan"
    assert predikat_for(4.1, predikat_bands("PermenPANRB 8/2026")) == "Memuaskan"  # 4.0 under Pemdi
    assert predikat_for(4.1, predikat_bands()) == "Sangat Baik"
    assert predikat_bands("PermenPANRB 5/2018") == ()
    assert predikat_consistency(2.0, "Baik", ()) is None  # no bands, nothing to compare


def test_framework_of_each_year_comes_from_the_national_series():
    assert framework_for_year(2019) == "PermenPANRB 5/2018"
    assert framework_for_year(2021) == FRAMEWORK_2020
    assert framework_for_year(2030) == FRAMEWORK_2020
