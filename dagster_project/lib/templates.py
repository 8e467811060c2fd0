"""Submission templates (data/templates/): the contract's columns with the 47 indicators filled in.

`indicator_name` is there for the people filling the file in; readers ignore columns outside the contract.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from dagster_project.lib.archive import write_atomically
from dagster_project.lib.framework import FRAMEWORK_2020
from dagster_project.lib.submissions import CONTRACT_COLUMNS
from dagster_project.paths import REFERENCE_DIR

TEMPLATE_COLUMNS = ("institution_code", "year", "stage", "indicator", "indicator_name", "level", "explanation",
                    "evidence", "submitted_at")
assert set(CONTRACT_COLUMNS) - {"work_unit"} <= set(TEMPLATE_COLUMNS)  # a work unit adds its own column


def template_rows() -> list[dict[str, object]]:
    with open(REFERENCE_DIR / "spbe_indikator_permen59_2020.csv", newline="", encoding="utf-8") as f:
        names = {int(r["indikator_no"]): r["indikator_nama"] for r in csv.DictReader(f)}
    return [{"institution_code": "", "year": "", "stage": "self_assessment", "indicator": n,
             "indicator_name": names[n], "level": "", "explanation": "", "evidence": "", "submitted_at": ""}
            for n in sorted(names)]


def write_templates(folder: Path) -> list[Path]:
    """spbe_submission_template.csv and .xlsx for PermenPANRB 59/2020."""
    import openpyxl

    rows = template_rows()
    csv_path, xlsx_path = folder / "spbe_submission_template.csv", folder / "spbe_submission_template.xlsx"
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=TEMPLATE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomically(csv_path, text.getvalue().encode("utf-8"))

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "penilaian"
    sheet.append(list(TEMPLATE_COLUMNS))
    for r in rows:
        sheet.append([r[c] if r[c] != "" else None for c in TEMPLATE_COLUMNS])
    sheet.column_dimensions["E"].width = 80
    notes = book.create_sheet("petunjuk")
    for line in (f"Template for one SPBE submission under {FRAMEWORK_2020}: one institution, one year, one stage.",
                 "institution_code: Kemendagri code (32.11) or registry id; stage: self_assessment, "
                 "document_review, interview, site_visit or final; level: whole number 1-5.",
                 "Only the first sheet is read. Formulas are never evaluated: write values."):
        notes.append([line])
    buffer = io.BytesIO()
    book.save(buffer)
    write_atomically(xlsx_path, buffer.getvalue())
    return [csv_path, xlsx_path]
