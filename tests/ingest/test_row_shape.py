"""CSV rows shorter or longer than the header: quarantined (``short_row`` / ``long_row``) with the row
and the columns named, fixable by column name and replayable; the reader checked with hypothesis, the
importer and the CLI on both engines, in GB18030 and UTF-8 with BOM."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medscrm.db.schema import source_records
from medscrm.ingest import quarantine as qs
from medscrm.ingest.importer import import_file
from medscrm.ingest.mapping import Mapping
from medscrm.ingest.readers import CsvReader
from tests_support import cli_env

HEADER = "客户编号,姓名,手机,邮箱,医院\n"
ROWS = [
    "1,张伟,13800138000,zw@pumch.cn,北京协和医院\n",  # row 2: fine
    "2,李娜,13900139000\n",  # row 3: short (邮箱, 医院 missing)
    "3,王芳,13700137000,wf@rj.cn,瑞金医院,多余,值\n",  # row 4: long (values beyond the header)
    "4,赵敏,13600136000,zm@x.cn,华西医院,,\n",  # row 5: empty trailing fields: fine
    "5\n",  # row 6: short (everything after 客户编号 missing)
]
COLS = HEADER.strip().split(",")


# --- the reader ---------------------------------------------------------------------------------------
cell = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    header=st.lists(st.from_regex(r"[a-z]{1,5}", fullmatch=True), min_size=1, max_size=5, unique=True),
    rows=st.lists(st.lists(cell, max_size=7), max_size=12),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "gb18030"]),
)
def test_reader_flags_every_short_and_long_row(tmp_path, header, rows, encoding):
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    f = tmp_path / "f.csv"
    f.write_bytes(buf.getvalue().encode(encoding))
    reader = CsvReader(f, encoding)
    got = [r for batch in reader.batches(5) for r in batch]
    n = len(header)
    expected = [(i + 2, r) for i, r in enumerate(rows) if r and not (len(r) == 1 and not r[0].strip())]
    assert [g.number for g in got] == [num for num, _ in expected]
    for g, (num, r) in zip(got, expected, strict=True):
        assert list(g.values) == header  # every header column, always
        codes = {p.code: p for p in g.problems}
        if len(r) < n:
            assert g.values == {**dict(zip(header, r, strict=False)), **dict.fromkeys(header[len(r) :])}
            p = codes["short_row"]
            assert f"row {num} " in p.reason and p.reason.endswith(", ".join(header[len(r) :]))
        else:
            assert g.values == dict(zip(header, r[:n], strict=True))
            assert "short_row" not in codes
        extra = r[n:]
        if any(x.strip() for x in extra):
            p = codes["long_row"]
            assert f"row {num} " in p.reason
            kept = json.loads(p.value)
            assert kept == extra[: len(kept)] and not any(x.strip() for x in extra[len(kept) :])
        else:
            assert "long_row" not in codes


# --- the importer, both engines -------------------------------------------------------------------------
def _records(t) -> dict[str, dict]:
    with t.engine.connect() as c:
        q = sa.select(source_records).where(source_records.c.tenant_id == t.id)
        return {r["record_key"]: dict(r) for r in c.execute(q).mappings()}


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8-sig"])
def test_short_and_long_rows_are_quarantined_then_fixed_and_replayed(tenant, tmp_path, encoding):
    f = tmp_path / "crm.csv"
    f.write_bytes((HEADER + "".join(ROWS)).encode(encoding))
    rep = import_file(
        engine=tenant.engine,
        tenant_id=tenant.id,
        source="crm",
        path=f,
        mapping=Mapping(record_key="客户编号"),
    )
    assert rep.encoding == encoding and rep.exit_code == 1
    assert (rep.rows_total, rep.rows_accepted, rep.rows_rejected) == (5, 2, 3)
    assert set(_records(tenant)) == {"1", "4"}
    with tenant.engine.connect() as c:
        q = {e["row_number"]: e for e in qs.list_entries(conn=c, tenant_id=tenant.id)}
    assert set(q) == {3, 4, 6}
    short, long_, bare = q[3], q[4], q[6]
    assert (short["code"], short["field"]) == ("short_row", "(row)")
    assert short["reason"] == "row 3 has 3 fields but the header has 5; missing column(s): 邮箱, 医院"
    assert short["payload"] == {
        "客户编号": "2",
        "姓名": "李娜",
        "手机": "13900139000",
        "邮箱": None,
        "医院": None,
    }
    assert long_["code"] == "long_row" and long_["reason"].startswith(
        "row 4 has 7 fields but the header has 5"
    )
    assert json.loads(long_["issues"][0]["value"]) == ["多余", "值"]  # what was beyond the header is kept
    assert bare["code"] == "short_row" and bare["reason"].endswith(
        "missing column(s): 姓名, 手机, 邮箱, 医院"
    )

    with tenant.engine.begin() as c:  # unfixed, a row of the wrong shape stays in quarantine
        res = qs.replay(conn=c, tenant_id=tenant.id, entry_ids=None)
    assert res["replayed"] == [] and {s["id"] for s in res["still_bad"]} == {
        short["id"],
        long_["id"],
        bare["id"],
    }
    assert all(s["issues"][0]["code"] in ("short_row", "long_row") for s in res["still_bad"])

    with tenant.engine.begin() as c:  # the missing columns are set by name, then the row replays
        qs.fix(
            conn=c,
            tenant_id=tenant.id,
            entry_id=short["id"],
            changes={"邮箱": "ln@wch.cn", "医院": "华西医院"},
        )
        qs.fix(conn=c, tenant_id=tenant.id, entry_id=long_["id"], changes={"医院": "瑞金医院"})
        res = qs.replay(conn=c, tenant_id=tenant.id, entry_ids=[short["id"], long_["id"]])
    assert len(res["replayed"]) == 2 and res["still_bad"] == []
    recs = _records(tenant)
    assert recs["2"]["email"] == "ln@wch.cn" and recs["2"]["hospital"] == "华西医院"
    assert recs["2"]["raw"]["邮箱"] == "ln@wch.cn" and recs["3"]["name"] == "王芳"
    with tenant.engine.connect() as c:
        left = qs.list_entries(conn=c, tenant_id=tenant.id)
    assert [e["id"] for e in left] == [bare["id"]]


def test_cli_import_fix_replay_of_a_short_row(tenant, tmp_path):
    url = tenant.engine.url.render_as_string(hide_password=False)
    tenant.engine.dispose()  # DuckDB: one process at a time holds the file
    env = cli_env(MEDSCRM_DATABASE_URL=url, MEDSCRM_TENANT=tenant.slug)
    f = tmp_path / "crm.csv"
    f.write_bytes((HEADER + ROWS[0] + ROWS[1]).encode("gb18030"))

    def medscrm(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "medscrm", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    p = medscrm("import", str(f), "--source", "crm", "--json")
    assert p.returncode == 1, p.stdout + p.stderr
    assert "short_row" in p.stdout and "missing column(s): 邮箱, 医院" in p.stdout
    with tenant.engine.connect() as c:
        (entry,) = qs.list_entries(conn=c, tenant_id=tenant.id)
    tenant.engine.dispose()
    assert entry["code"] == "short_row" and entry["row_number"] == 3
    p = medscrm("quarantine", "replay", entry["id"])
    assert p.returncode == 1 and "fix the row first" in p.stdout, p.stdout + p.stderr
    p = medscrm("quarantine", "fix", entry["id"], "--set", "邮箱=ln@wch.cn", "--set", "医院=华西医院")
    assert p.returncode == 0, p.stdout + p.stderr
    p = medscrm("quarantine", "replay", entry["id"])
    assert p.returncode == 0 and "replayed 1" in p.stdout, p.stdout + p.stderr
    recs = {r["raw"]["客户编号"]: r for r in _records(tenant).values()}
    assert recs["2"]["email"] == "ln@wch.cn"


def test_the_same_rows_in_a_bom_file_read_alike(tmp_path: Path):
    f = tmp_path / "bom.csv"
    f.write_bytes((HEADER + "".join(ROWS)).encode("utf-8-sig"))
    g = tmp_path / "gb.csv"
    g.write_bytes((HEADER + "".join(ROWS)).encode("gb18030"))
    a, b = CsvReader(f), CsvReader(g)
    assert (a.encoding, b.encoding) == ("utf-8-sig", "gb18030") and a.columns == b.columns == COLS
    ra = [(r.number, r.values, [p.code for p in r.problems]) for bt in a.batches(10) for r in bt]
    rb = [(r.number, r.values, [p.code for p in r.problems]) for bt in b.batches(10) for r in bt]
    assert ra == rb
    assert [codes for _, _, codes in ra] == [[], ["short_row"], ["long_row"], [], ["short_row"]]
