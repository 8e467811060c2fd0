"""Matching published rows to the institution registry."""

from dagster_project.lib.registry import load_registry, normalize_name


def test_regional_governments_match_by_kemendagri_code():
    reg = load_registry()
    assert reg.match("Pemerintah Kab. Sumedang", "32.11") == "32.11"
    assert reg.match("anything", "99.99") is None  # an unknown code is reported, not guessed from the name


def test_central_institutions_keep_one_id_across_renames():
    reg = load_registry()
    old = reg.match("Kementerian Koordinator Bidang Kemaritiman", None)
    new = reg.match("Kementerian Koordinator Bidang Kemaritiman dan Investasi", None)
    assert old == new == "kementerian-koordinator-bidang-kemaritiman-dan-investasi"
    assert reg.match("Dewan Perwakilan Rakyat", None) == reg.match("Sekretariat Jenderal Dewan Perwakilan Rakyat", None)


def test_name_matching_ignores_case_spacing_and_punctuation():
    reg = load_registry()
    assert reg.match("  kementerian   KEUANGAN ", "") == "kementerian-keuangan"
    assert normalize_name("Kementerian Koordinator Bidang Politik, Hukum dan Keamanan") == \
        "kementerian koordinator bidang politik hukum dan keamanan"


def test_unknown_names_do_not_match():
    assert load_registry().match("Kementerian Urusan Fiktif", None) is None


def test_registry_covers_every_region_and_central_institution():
    reg = load_registry()
    assert len(reg.kemendagri_codes) == 38 + 514
    assert len(reg.ids) == 38 + 514 + 94
