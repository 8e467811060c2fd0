"""Reading regional submissions: CSV (`,` or `;`, BOM or not), XLSX and JSON give the same rows."""

import io
import json
import zipfile
from datetime import UTC, date, datetime

import openpyxl
import pandas as pd
import pytest

from dagster_project.lib.quality import validate_frame
from dagster_project.lib.registry import load_registry
from dagster_project.lib.submissions import SubmissionFormatError, is_late, normalize_submission, read_submission
from dagster_project.lib.templates import TEMPLATE_COLUMNS, write_templates
from dagster_project.paths import BUNDLED_DATA_DIR

RECEIVED = datetime(2024, 12, 2, 3, 0, tzinfo=UTC)
HEADER = ["kode_instansi", "tahun", "tahap", "indikator", "tingkat", "penjelasan", "bukti_dukung", "dikirim_pada"]


def rows(code="32.11", year=2024, stage="final", levels=None):
    levels = levels or {i: 1 + i % 5 for i in range(1, 48)}
    return [[code, year, stage, i, lvl, f"Fakta {i}; analisis", f"SK-{i}.pdf;foto-{i}.png", "2024-12-01T10:00:00"]
            for i, lvl in levels.items()]


def as_csv(data, sep=",", bom=False) -> bytes:
    out = io.StringIO()
    pd.DataFrame(data, columns=HEADER).to_csv(out, sep=sep, index=False)
    return (("\ufeff" if bom else "") + out.getvalue()).encode()


def as_xlsx(data, header=HEADER) -> bytes:
    book = openpyxl.Workbook()
    book.active.append(header)
    for r in data:
        book.active.append(r)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def as_json(data, with_meta=True) -> bytes:
    records = [dict(zip(HEADER, r, strict=True)) for r in data]
    return json.dumps({"meta": {"synthetic": True}, "rows": records} if with_meta else records).encode()


def normalized(content: bytes, name: str) -> pd.DataFrame:
    return normalize_submission(read_submission(content, name).rows, load_registry(), RECEIVED)


SHOWN = ["institution_id", "year", "stage", "indicator", "level", "explanation", "evidence", "submitted_at"]


@pytest.mark.parametrize(("content", "name"), [
    (as_csv(rows(), sep=";", bom=True), "a.csv"),
    (as_csv(rows(), sep=",", bom=False), "a.CSV"),
    (as_xlsx(rows()), "a.xlsx"),
    (as_json(rows()), "a.json"),
    (as_json(rows(), with_meta=False), "a.json"),
])
def test_every_format_reads_to_the_same_rows(content, name):
    expected = normalized(as_csv(rows()), "ref.csv")[SHOWN]
    got = normalized(content, name)[SHOWN]
    pd.testing.assert_frame_equal(got.astype(str), expected.astype(str))
    report = validate_frame(normalized(content, name), "submissions", ["row_number", "indicator"])
    assert report.passed and not report.failed, report.reason()


def test_json_meta_is_kept():
    assert read_submission(as_json(rows()), "a.json").meta == {"meta": {"synthetic": True}}


def test_spreadsheet_formulas_stay_inert_text():
    data = rows()
    data[0][5] = '=HYPERLINK("http://evil.example","klik")'
    data[1][5] = "=cmd|' /C calc'!A0"
    got = normalized(as_xlsx(data), "f.xlsx")
    assert got.loc[0, "explanation"] == '=HYPERLINK("http://evil.example","klik")'
    assert got.loc[1, "explanation"] == "=cmd|' /C calc'!A0"


def test_templates_carry_the_47_indicators_and_read_back(tmp_path):
    csv_path, xlsx_path = write_templates(tmp_path)
    for path in (csv_path, xlsx_path):
        parsed = read_submission(path.read_bytes(), path.name)
        assert parsed.rows["indicator"].tolist() == [str(i) for i in range(1, 48)]
        assert parsed.meta["ignored_columns"] == ["indicator_name"]
    committed = BUNDLED_DATA_DIR / "templates" / "spbe_submission_template.csv"
    assert committed.read_text(encoding="utf-8") == csv_path.read_text(encoding="utf-8")
    assert list(pd.read_csv(committed).columns) == list(TEMPLATE_COLUMNS)


def test_a_filled_template_is_valid():
    text = (BUNDLED_DATA_DIR / "templates" / "spbe_submission_template.csv").read_text(encoding="utf-8")
    filled = text.replace(",,self_assessment,", "32.11,2024,self_assessment,").replace(",,,,\n", ",3,,,\n")
    report = validate_frame(normalized(filled.encode(), "t.csv"), "submissions", ["row_number"])
    assert report.passed, report.reason()


@pytest.mark.parametrize(("content", "name", "rule"), [
    (b"", "e.csv", "not_empty"),
    (b"kode_instansi,tahun\n", "h.csv", "required_columns"),
    (",".join(HEADER).encode() + b"\n", "h.csv", "has_rows"),
    (b"\xff\xfe" + "kode_instansi".encode("utf-16-le"), "w.csv", "utf8_encoding"),
    (b"not a zip at all", "x.xlsx", "xlsx_is_zip"),
    (as_xlsx(rows())[:800], "t.xlsx", "xlsx_is_zip"),
    (b'{"rows": [{"a": {"b": 1}}]}', "n.json", "required_columns"),
    (b"[" * 5000 + b"]" * 5000, "d.json", "json_depth"),
    (b'{"rows": 5}', "s.json", "json_shape"),
    (as_csv(rows()).replace(b"Fakta 1", b"Fakta\x001"), "z.csv", "no_nul_bytes"),
    (as_csv(rows()), "a.txt", "file_type"),
])
def test_unreadable_files_name_the_rule(content, name, rule):
    with pytest.raises(SubmissionFormatError) as e:
        read_submission(content, name)
    assert e.value.rule == rule and name in str(e.value)


def test_a_zip_bomb_is_refused_before_parsing():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/worksheets/sheet1.xml", b"\0" * (60 * 1024 * 1024))
    assert len(buf.getvalue()) < 200_000
    with pytest.raises(SubmissionFormatError) as e:
        read_submission(buf.getvalue(), "bomb.xlsx")
    assert e.value.rule == "xlsx_unzipped_size"


@pytest.mark.parametrize(("change", "rule_column"), [
    ({"level": "6"}, "level"), ({"level": "0"}, "level"), ({"level": "3.5"}, "unparseable_values"),
    ({"level": "tiga"}, "unparseable_values"), ({"indicator": "48"}, "indicator_known"),
    ({"stage": "verifikasi"}, "stage"), ({"institution_code": "99.99"}, "institution_id"),
    ({"year": "2031"}, "year_in_future"), ({"year": "2015"}, "year"),
])
def test_each_rule_names_its_rows(change, rule_column):
    df = normalized(as_csv(rows()), "a.csv")
    raw = read_submission(as_csv(rows()), "a.csv").rows
    for col, value in change.items():
        raw.loc[3, col] = value
    df = normalize_submission(raw, load_registry(), RECEIVED, today=date(2026, 11, 28))
    report = validate_frame(df, "submissions", ["row_number", "indicator"])
    assert not report.passed
    assert rule_column in {f.column for f in report.errors}, report.reason()


def test_duplicate_indicator_rows_and_mixed_files_are_errors():
    data = rows()
    report = validate_frame(normalized(as_csv(data + [data[0]]), "d.csv"), "submissions", ["row_number"])
    assert ("expect_compound_columns_to_be_unique", None) in {(f.expectation, f.column) for f in report.errors}
    mixed = rows()[:20] + rows(stage="interview")[20:]
    report = validate_frame(normalized(as_csv(mixed), "m.csv"), "submissions", ["row_number"])
    assert "file_key_count" in {f.column for f in report.errors}


def test_missing_indicators_and_late_files_load_with_warnings():
    data = rows()[:40]
    for r in data:
        r[7] = "2025-01-15T09:00:00+07:00"  # after the 2024 final window closed
    report = validate_frame(normalized(as_csv(data), "l.csv"), "submissions", ["row_number"])
    assert report.passed
    assert {f.column for f in report.warnings} == {"coverage", "is_late"}


def test_lateness_uses_the_jakarta_calendar_day():
    # The 2024 final window closes 2024-12-20: 23:30 in Jakarta that day is on time, 00:30 the next is late.
    assert not is_late(2024, "final", datetime(2024, 12, 20, 16, 30, tzinfo=UTC))
    assert is_late(2024, "final", datetime(2024, 12, 20, 17, 30, tzinfo=UTC))
    assert not is_late(2030, "final", datetime(2031, 1, 1, tzinfo=UTC))  # no window known


def test_optional_columns_may_be_absent():
    minimal = "institution_code,year,stage,indicator,level\n" + "".join(
        f"32.11,2024,final,{i},3\n" for i in range(1, 48))
    report = validate_frame(normalized(minimal.encode(), "min.csv"), "submissions", ["row_number"])
    assert report.passed and not report.failed, report.reason()


def test_a_code_typed_as_a_number_in_a_spreadsheet_keeps_its_two_decimals():
    data = rows(code=35.1)  # what Excel stores when someone types 35.10 in a General cell
    got = normalized(as_xlsx(data), "n.xlsx")
    assert set(got["institution_id"]) == {"35.10"}


@pytest.mark.parametrize(("content", "name", "rule"), [
    (b"\xef\xbb\xbf", "bom.csv", "not_empty"),
    (b",,,\n,,\n", "commas.csv", "not_empty"),
    ((",".join(HEADER) + "\n" + "32.11,2024,final,1,3,x,y,2024-12-01,EXTRA\n").encode(), "long.csv", "row_width"),
    ((",".join(HEADER + [f"c{i}" for i in range(200)]) + "\n").encode(), "wide.csv", "column_count"),
    (json.dumps({"rows": [{f"k{i}": 1 for i in range(j, j + 20)} for j in range(0, 400, 20)]}).encode(),
     "keys.json", "column_count"),
    (b'{"rows": [{"kode_instansi": "32.11", "tingkat": 9, "tingkat": 3}]}', "dup.json", "json_unique_keys"),
])
def test_more_unreadable_shapes_name_their_rule(content, name, rule):
    with pytest.raises(SubmissionFormatError) as e:
        read_submission(content, name)
    assert e.value.rule == rule


def test_a_lone_far_away_xlsx_cell_is_refused_quickly():
    book = openpyxl.Workbook()
    book.active.append(HEADER)
    book.active["XFD20000"] = "x"
    buf = io.BytesIO()
    book.save(buf)
    with pytest.raises(SubmissionFormatError) as e:
        read_submission(buf.getvalue(), "far.xlsx")
    assert e.value.rule in {"row_count", "column_count"}


def test_a_date_no_clock_can_hold_is_an_unparseable_value():
    data = rows()
    data[0][7] = "0001-01-01T00:00"
    report = validate_frame(normalized(as_csv(data), "d.csv"), "submissions", ["row_number"])
    assert "unparseable_values" in {f.column for f in report.errors}
