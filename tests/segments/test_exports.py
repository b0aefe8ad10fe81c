"""Exports never hand a spreadsheet a formula: hostile member values through every export path (REST
API, console, CLI, `medscrm resolve`) on both engines, read back with csv / openpyxl."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import subprocess
import sys

import openpyxl
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from medscrm.accounts import service as accounts
from medscrm.app import create_app
from medscrm.common import new_id
from medscrm.db.schema import persons
from medscrm.exports import FORMULA_LEADS, csv_cell, write_xlsx
from medscrm.segments import service as segs
from tests_support import cli_env
from web.conftest import csrf_of

HOSTILE = [
    "=1+1",
    "@SUM(1+1)",
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "\t=1+1",
    "\r=1+1",
    "-3.5e2",
    "+86138****8000",
]
#: plain numbers carry no formula: written as they are (a phone stays dialable)
BENIGN = ["北京协和医院", "a=b", "1+1", "'quoted", "-3.5", "+8613800138000"]


def _read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline="")))


def _assert_neutralised(rows: list[dict[str, str]], expected: dict[str, str]) -> None:
    """No cell of ``rows`` begins with a formula character; ``expected``: each member's value (its
    hospital, department and title) -> the cell written for it."""
    assert rows, "the export is empty"
    for r in rows:
        for col, cell in r.items():
            assert not cell.startswith(FORMULA_LEADS) or cell in BENIGN, (col, cell)
        assert r["hospital"] == r["department"] == r["title"]
    assert sorted(r["hospital"] for r in rows) == sorted(expected.values())


def _expected() -> dict[str, str]:
    return {v: ("'" + v if v in HOSTILE else v) for v in HOSTILE + BENIGN}


@pytest.fixture
def seg(tenant):
    """One member per hostile (and benign) value, in every exported text column, and a segment of all."""
    now = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
    with tenant.engine.begin() as c:
        for v in HOSTILE + BENIGN:
            attrs = {"name": v, "hospital": v, "department": v, "title": v, "phone": "+8613800138000"}
            attrs["email"] = f"{v}@x.cn"
            c.execute(
                sa.insert(persons).values(
                    id=new_id("per"),
                    tenant_id=tenant.id,
                    person_type="hcp",
                    status="active",
                    attributes=attrs,
                    lineage={},
                    created_at=now,
                    updated_at=now,
                )
            )
        segs.create(c, tenant_id=tenant.id, key="all", rule={"person_type": "hcp"}, now=now)
    return tenant


def test_csv_cell_follows_owasp():
    for v in HOSTILE:
        assert csv_cell(v) == "'" + v
    for v in BENIGN:
        assert csv_cell(v) == v
    assert csv_cell(None) is None and csv_cell(3) == 3 and csv_cell(-3.5) == -3.5
    assert csv_cell(-1e-05) == "'-1e-05" and csv_cell(float("-inf")) == "'-inf"  # not plain decimals


@given(st.lists(st.one_of(st.none(), st.text(), st.integers(), st.floats(allow_nan=False)), min_size=1))
def test_csv_cells_read_back_as_text_never_as_formulas(values):
    from medscrm.exports import SafeDictWriter

    cols = [f"c{i}" for i in range(len(values))]
    buf = io.StringIO(newline="")
    w = SafeDictWriter(buf, fieldnames=cols)
    w.writeheader()
    w.writerow(dict(zip(cols, values, strict=True)))
    (row,) = list(csv.DictReader(io.StringIO(buf.getvalue(), newline="")))
    for c, v in zip(cols, values, strict=True):
        text = "" if v is None else str(v)
        if row[c].startswith(FORMULA_LEADS):  # only a plain decimal number may begin so
            assert row[c] == text and re.fullmatch(r"[+-][0-9]+(\.[0-9]+)?", text), text
        else:
            assert row[c] == ("'" + text if text.startswith(FORMULA_LEADS) else text)


def test_xlsx_cells_are_strings_never_formulas_and_numbers_stay_numbers():
    rows = [{"text": v, "n": -3.5, "i": 7} for v in HOSTILE + BENIGN]
    buf = io.BytesIO()
    write_xlsx(buf, ["text", "n", "i"], rows)
    buf.seek(0)
    ws = openpyxl.load_workbook(buf).active
    got = list(ws.iter_rows(min_row=2))
    # (XML reads a carriage return back as a line feed)
    assert [c.value for c, _, _ in got] == [v.replace("\r", "\n") for v in HOSTILE + BENIGN]
    for (text, n, i), v in zip(got, HOSTILE + BENIGN, strict=True):
        assert text.data_type == "s", v  # a string cell: never "f" (formula)
        assert text.quotePrefix is v.startswith(FORMULA_LEADS)
        assert (n.value, n.data_type, i.value, i.data_type) == (-3.5, "n", 7, "n")
    assert [c.value for c in ws[1]] == ["text", "n", "i"]


def test_api_segment_export_neutralises_formulas(seg, tmp_path):
    with seg.engine.begin() as c:
        tok = accounts.create_token(conn=c, tenant_id=seg.id, role="admin").token
    with TestClient(create_app(seg.engine, spool_dir=tmp_path / "spool")) as tc:
        r = tc.get("/api/v1/segments/all/export.csv", headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 200, r.text
    rows = _read_csv(r.text)
    _assert_neutralised(rows, _expected())
    assert {r["phone"] for r in rows} == {"+8613800138000"}
    assert "'=1+1@x.cn" in {r["email"] for r in rows}


def test_console_segment_export_neutralises_formulas(seg, tmp_path):
    with seg.engine.begin() as c:
        accounts.create_user(conn=c, tenant_id=seg.id, username="ana", role="analyst", password="pw-12345678")
    with TestClient(create_app(seg.engine, spool_dir=tmp_path / "spool")) as tc:
        r = tc.post(
            "/login",
            data={
                "csrf_token": csrf_of(tc.get("/login").text),
                "tenant": seg.slug,
                "username": "ana",
                "password": "pw-12345678",
            },
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
        r = tc.get("/segments/all/export.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv"), r.text[:300]
    rows = _read_csv(r.text)
    _assert_neutralised(rows, _expected())
    # an analyst sees the phone masked: still a text beginning with "+"
    assert {r["phone"] for r in rows} == {"'+86138****8000"}


def test_cli_segment_export_neutralises_formulas(seg, tmp_path):
    url = seg.engine.url.render_as_string(hide_password=False)
    seg.engine.dispose()  # DuckDB: one process at a time holds the file
    out = tmp_path / "all.csv"
    p = subprocess.run(
        [sys.executable, "-m", "medscrm", "segments", "export", "all", "--out", str(out), "--role", "admin"],
        cwd=tmp_path,
        env=cli_env(MEDSCRM_DATABASE_URL=url, MEDSCRM_TENANT=seg.slug),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    with out.open(encoding="utf-8", newline="") as fh:
        _assert_neutralised(_read_csv(fh.read()), _expected())


def test_resolve_output_neutralises_record_ids(tmp_path):
    from medscrm.identity.resolve import resolve_file

    src = tmp_path / "records.csv"
    ids = [v for v in HOSTILE if not v[0].isspace()]  # resolve strips the ids it reads
    with src.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["record_id", "name", "phone", "hospital"])
        for i, rid in enumerate([*ids, "r1"]):
            w.writerow([rid, f"张{'伟娜强磊军洋勇艳'[i]}", f"1380013{8000 + i}", "北京协和医院"])
    out = tmp_path / "persons.csv"
    resolve_file(src, out)
    rows = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    assert sorted(r["record_id"] for r in rows) == sorted(["'" + v for v in ids] + ["r1"])
    assert all(not cell.startswith(FORMULA_LEADS) for r in rows for cell in r.values())
