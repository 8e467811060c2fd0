"""The reference tables in data/reference/ and the checks on them: names only, so that loading the code
location (which declares a check per suite) imports no data library. The rules are in lib/reference.py."""

REFERENCE_TABLES = {
    "institutions": "institutions.csv",
    "institution_aliases": "institution_aliases.csv",
    "targets": "targets.csv",
    "indicators": "spbe_indikator_permen59_2020.csv",
    "indicators_2018": "spbe_indikator_permen5_2018.csv",
    "indicators_pemdi": "pemdi_indikator_permen8_2026_UNVERIFIED.csv",
    "domains_aspects": "spbe_domain_aspek_permen59_2020.csv",
    "maturity_levels": "spbe_tingkat_kematangan.csv",
    "predikat_bands": "spbe_predikat.csv",
    "national_index": "spbe_indeks_nasional.csv",
    "published_aggregates": "spbe_published_aggregates.csv",
    "provinces": "wilayah_provinsi.csv",
    "regencies": "wilayah_kabkota.csv",
    "submission_windows": "submission_windows.csv",
    "cohorts": "cohorts.csv",
    "weighting_scenarios": "weighting_scenarios.csv",
}
# Which GX suite validates which table (suite file: expectations/<suite>.json).
REFERENCE_SUITES = {
    "reference_institutions": "institutions",
    "reference_indicators": "indicators",
    "reference_predikat_bands": "predikat_bands",
    "reference_regions": "regencies",
    "reference_targets": "targets",
}
STRUCTURE_CHECK = "reference_structure"  # the cross-table rules of lib/reference.py, as one check
