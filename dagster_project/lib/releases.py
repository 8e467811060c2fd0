"""Parsing an official release (the per-institution results table of one evaluation year).

The published table keeps its Indonesian headers; the lake keeps English names. Values are kept as
published; derived columns (institution id, formula residual, predikat consistency, flags) are added for
validation and never overwrite a published value.
"""

from __future__ import annotations

import csv
import io

import pandas as pd

from dagster_project.lib.dbt_project import project_var
from dagster_project.lib.framework import (
    DOMAIN_COLUMNS,
    FRAMEWORK_2020,
    domain_weights,
    framework_for_year,
    predikat_bands,
    predikat_consistency,
)
from dagster_project.lib.registry import Registry
from dagster_project.lib.values import whole_numbers

# Published header -> lake column. Every published column is kept.
RELEASE_COLUMNS = {
    "tahun_evaluasi": "year",
    "kategori": "category",
    "kode_kemendagri": "kemendagri_code",
    "kode_provinsi": "province_code",
    "nama_instansi": "institution_name",
    "d1_kebijakan": "policy_index",
    "d2_tata_kelola": "governance_index",
    "d3_manajemen": "management_index",
    "d4_layanan": "services_index",
    "indeks_spbe": "index_value",
    "predikat": "predikat",
    "tabel_sumber": "source_table",
    "no_urut_sumber": "source_row_no",
    "catatan_validasi": "source_note",
    "sumber": "source_document",
}
REQUIRED_COLUMNS = ("tahun_evaluasi", "kategori", "kode_kemendagri", "nama_instansi", "d1_kebijakan",
                    "d2_tata_kelola", "d3_manajemen", "d4_layanan", "indeks_spbe", "predikat")
NUMERIC_COLUMNS = (*DOMAIN_COLUMNS, "index_value")
FORMULA_TOLERANCE: float = project_var("formula_tolerance")  # of the domain formula on 2-decimal values


class ReleaseFormatError(ValueError):
    """The file cannot be read as a release table at all; names the file and the broken rule."""

    def __init__(self, file_name: str, rule: str, detail: str):
        super().__init__(f"{file_name}: rule '{rule}' failed: {detail}")
        self.file_name, self.rule, self.detail = file_name, rule, detail


def read_release_csv(content: bytes, file_name: str) -> pd.DataFrame:
    """Decode and split a release CSV into text cells; fails with the rule that was broken."""
    return read_csv_cells(content, file_name, REQUIRED_COLUMNS)


def read_csv_cells(content: bytes, file_name: str, required: tuple[str, ...]) -> pd.DataFrame:
    """A release file's text cells under lower-case headers (the delimiter sniffed), every required column
    present; fails with the rule that was broken."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ReleaseFormatError(file_name, "utf8_encoding", f"byte {e.start} is not UTF-8") from e
    try:
        raw = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, sep=None, engine="python")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error, ValueError) as e:
        raise ReleaseFormatError(file_name, "csv_readable", (str(e).splitlines() or ["empty file"])[0]) from e
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    missing = [c for c in required if c not in raw.columns]
    if missing:
        raise ReleaseFormatError(file_name, "required_columns", f"missing columns {missing}")
    return raw


def normalize_release(raw: pd.DataFrame, release_year: int, registry: Registry) -> pd.DataFrame:
    """Rename to lake columns, type the numbers, match institutions and add the validation columns."""
    df = raw.rename(columns=RELEASE_COLUMNS).reindex(columns=list(RELEASE_COLUMNS.values()))
    df = df.apply(lambda s: s.str.strip() if s.dtype != "float64" else s).replace({"": None})
    df.insert(0, "row_number", range(1, len(df) + 1))  # 1-based data row, header excluded

    unparseable: list[list[str]] = [[] for _ in range(len(df))]
    for col in ("year", *NUMERIC_COLUMNS):
        if col == "year":  # 2024.5 or 1e30 is not a year
            df[col], bad = whole_numbers(df[col], 10_000)
        else:
            numbers = pd.to_numeric(df[col], errors="coerce")
            bad, df[col] = df[col].notna() & numbers.isna(), numbers
        for i in bad.to_numpy().nonzero()[0]:
            unparseable[i].append(col)
    df["unparseable_values"] = [", ".join(u) or None for u in unparseable]
    df["missing_values"] = [
        ", ".join(c for c in NUMERIC_COLUMNS if pd.isna(row[c])) or None for _, row in df.iterrows()
    ]

    framework = framework_for_year(release_year)
    weights = domain_weights()
    # The domain formula is that of PermenPANRB 59/2020; earlier frameworks published no weights.
    complete = df[list(DOMAIN_COLUMNS)].notna().all(axis=1) & df["index_value"].notna()
    complete &= framework == FRAMEWORK_2020
    weighted = sum(df[c] * w for c, w in zip(DOMAIN_COLUMNS, weights, strict=True))
    df["formula_residual"] = (df["index_value"] - weighted).round(4).where(complete)

    bands = predikat_bands(framework)
    df["predikat_consistency"] = [
        predikat_consistency(None if pd.isna(v) else float(v), p, bands)
        for v, p in zip(df["index_value"], df["predikat"], strict=True)
    ]
    df["year_matches_release"] = df["year"].eq(release_year).fillna(False).astype(bool)
    df["institution_id"] = [
        registry.match(n, c) for n, c in zip(df["institution_name"], df["kemendagri_code"], strict=True)
    ]
    df["framework"] = framework
    return df
