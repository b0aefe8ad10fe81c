"""File import on both engines: formats, mapping, validation, quarantine, idempotence, atomicity."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from medscrm.common import MedscrmError
from medscrm.db.schema import imports, quarantine, source_records
from medscrm.ingest import quarantine as qs
from medscrm.ingest.importer import import_file
from medscrm.ingest.mapping import Mapping, load_mapping

HEADER = "客户编号,姓名,手机,邮箱,医院,科室,职称\n"
GOOD = [
    "1,張 偉,138 0013 8000,ZW@PUMCH.CN,北京协和医院,心内科,主任医师\n",
    "2,李娜,+86-139-0013-9000,li.na@163.com,华西医院,呼吸科,副主任\n",
    "3,Ｗａｎｇ Ｆａｎｇ,１３７００１３７０００,,瑞金医院,,主治\n",
]
BAD_PHONE = "4,赵敏,12345,zhao@x.cn,瑞金医院,,\n"


def records(t, source_id: str | None = None) -> list[dict]:
    with t.engine.connect() as c:
        q = sa.select(source_records).where(source_records.c.tenant_id == t.id)
        return [dict(r) for r in c.execute(q.order_by(source_records.c.row_number)).mappings()]


def open_quarantine(t) -> list[dict]:
    with t.engine.connect() as c:
        return qs.list_entries(conn=c, tenant_id=t.id)


def run(t, path: Path, **kw):
    return import_file(engine=t.engine, tenant_id=t.id, source=kw.pop("source", "crm"), path=path, **kw)


def test_gb18030_csv_normalises_and_keeps_raw(tenant, tmp_path):
    f = tmp_path / "crm.csv"
    f.write_bytes((HEADER + "".join(GOOD)).encode("gb18030"))
    rep = run(tenant, f, mapping=Mapping(record_key="客户编号"))
    assert (rep.status, rep.encoding, rep.rows_total, rep.rows_accepted, rep.rows_rejected) == (
        "committed",
        "gb18030",
        3,
        3,
        0,
    )
    assert rep.exit_code == 0
    r = records(tenant)
    assert [x["record_key"] for x in r] == ["1", "2", "3"]
    assert r[0]["name"] == "张伟" and r[0]["raw"]["姓名"] == "張 偉"
    assert r[0]["phone"] == "+8613800138000" and r[0]["raw"]["手机"] == "138 0013 8000"
    assert r[0]["email"] == "zw@pumch.cn"
    assert r[1]["phone"] == "+8613900139000"
    assert r[2]["phone"] == "+8613700137000" and r[2]["name"] == "Wang Fang"
    assert r[0]["department"] == "心血管内科" and r[1]["title"] == "副主任医师"


def test_bad_rows_are_quarantined_with_row_field_reason(tenant, tmp_path):
    f = tmp_path / "crm.csv"
    f.write_text(HEADER + GOOD[0] + BAD_PHONE + "5,,,,协和医院,,\n", encoding="utf-8")
    rep = run(tenant, f)
    assert rep.status == "committed" and rep.exit_code == 1
    assert (rep.rows_accepted, rep.rows_rejected) == (1, 2)
    by_row = {r.row_number: r for r in rep.rejections}
    assert by_row[3].field == "phone" and "12345" in by_row[3].reason
    assert by_row[4].code == "no_identifying_field"
    q = open_quarantine(tenant)
    assert sorted(e["row_number"] for e in q) == [3, 4]
    e3 = next(e for e in q if e["row_number"] == 3)
    assert e3["payload"]["手机"] == "12345" and e3["file_name"] == "crm.csv" and e3["field"] == "phone"


def test_reimport_creates_no_duplicates_and_new_versions_are_kept(tenant, tmp_path):
    f = tmp_path / "crm.csv"
    f.write_text(HEADER + "".join(GOOD) + BAD_PHONE, encoding="utf-8")
    m = Mapping(record_key="客户编号")
    first = run(tenant, f, mapping=m)
    again = run(tenant, f, mapping=m)
    assert (first.rows_accepted, again.rows_accepted, again.rows_duplicate) == (3, 0, 3)
    assert len(records(tenant)) == 3
    assert len(open_quarantine(tenant)) == 1  # the bad row is not quarantined twice
    # the source sends record 1 again with a new phone: a new immutable version, same key
    f.write_text(HEADER + "1,張 偉,13800138001,ZW@PUMCH.CN,北京协和医院,心内科,主任医师\n", encoding="utf-8")
    third = run(tenant, f, mapping=m)
    assert third.rows_accepted == 1
    versions = [r for r in records(tenant) if r["record_key"] == "1"]
    assert sorted(v["phone"] for v in versions) == ["+8613800138000", "+8613800138001"]


def test_duplicate_rows_inside_one_file_count_once(tenant, tmp_path):
    f = tmp_path / "dups.csv"
    f.write_text(HEADER + GOOD[0] + GOOD[0] + GOOD[1], encoding="utf-8")
    rep = run(tenant, f)
    assert (rep.rows_total, rep.rows_accepted, rep.rows_duplicate) == (3, 2, 1)


def test_xlsx_with_numeric_phone(tenant, tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["报名编号", "姓名", "电话", "单位", "科室"])
    ws.append(["E1", "陈静", 13800138000, "四川大学华西医院", "肿瘤科"])
    ws.append(["E2", "刘洋", 13900139000.0, "华西医院", None])
    f = tmp_path / "event.xlsx"
    wb.save(f)
    rep = run(tenant, f, source="events", mapping=Mapping(record_key="报名编号"))
    assert (rep.format, rep.rows_accepted) == ("xlsx", 2)
    r = records(tenant)
    assert [x["phone"] for x in r] == ["+8613800138000", "+8613900139000"]
    assert r[0]["hospital"] == "四川大学华西医院"


def test_jsonl_bad_line_is_quarantined(tenant, tmp_path):
    f = tmp_path / "wechat.jsonl"
    lines = [
        json.dumps(
            {"openid": "o1", "unionid": "oUnion_0001", "nickname": "张医生", "city": "北京"},
            ensure_ascii=False,
        ),
        "{not json",
        json.dumps({"openid": "o2", "unionid": "oUnion_0002", "nickname": "李主任"}, ensure_ascii=False),
        "[1, 2]",
    ]
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rep = run(tenant, f, source="wechat", mapping=Mapping(record_key="openid", columns={"nickname": "name"}))
    assert (rep.rows_total, rep.rows_accepted, rep.rows_rejected) == (4, 2, 2)
    assert {r.code for r in rep.rejections} >= {"bad_json"}
    assert {x["wechat_unionid"] for x in records(tenant)} == {"oUnion_0001", "oUnion_0002"}
    raw_lines = {e["payload"].get("_raw_line") for e in open_quarantine(tenant)}
    assert raw_lines == {"{not json", "[1, 2]"}


def test_several_columns_feed_one_field_first_non_empty_wins(tenant, tmp_path):
    """A follower export joined with the HCP-verification form: the real name when the follower
    verified, the nickname otherwise (null and blank both count as empty)."""
    f = tmp_path / "wechat.jsonl"
    rows = [
        {
            "openid": "o1",
            "unionid": "oUnion_0001",
            "real_name": "张伟",
            "nickname": "张医生",
            "tel": "13800138000",
        },
        {"openid": "o2", "unionid": "oUnion_0002", "real_name": None, "nickname": "李主任", "tel": None},
        {"openid": "o3", "unionid": "oUnion_0003", "real_name": " ", "nickname": "王芳", "tel": ""},
    ]
    f.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    m = Mapping(record_key="openid", columns={"real_name": "name", "nickname": "name", "tel": "phone"})
    rep = run(tenant, f, source="wechat", mapping=m)
    assert (rep.rows_accepted, rep.rows_rejected) == (3, 0)
    got = {x["record_key"]: (x["name"], x["phone"]) for x in records(tenant)}
    assert got == {"o1": ("张伟", "+8613800138000"), "o2": ("李主任", None), "o3": ("王芳", None)}


def test_parquet_with_custom_types(tenant, tmp_path):
    f = tmp_path / "survey.parquet"
    pq.write_table(
        pa.table(
            {
                "response_id": ["r1", "r2"],
                "respondent_name": ["周杰", "吴磊"],
                "phone": ["13600136000", "13500135000"],
                "q1_score": ["5", "five"],
            }
        ),
        f,
    )
    m = Mapping(record_key="response_id", custom_types={"q1_score": "int"})
    rep = run(tenant, f, source="survey", mapping=m)
    assert (rep.rows_accepted, rep.rows_rejected) == (1, 1)
    assert records(tenant)[0]["attributes"]["q1_score"] == 5
    (bad,) = rep.rejections
    assert bad.field == "q1_score" and bad.code == "wrong_type"


@pytest.mark.parametrize(
    ("content", "name", "code_fragment"),
    [
        (b"", "empty.csv", "empty"),
        (b"a,b\n", "header_only.csv", "no data rows"),
        ("姓名,手机,姓名\n张伟,13800138000,张伟\n".encode(), "dup.csv", "duplicate header"),
        (b"x", "data.bin", "cannot tell the format"),
        (b"PK\x03\x04garbage", "broken.xlsx", "not a readable XLSX"),
    ],
)
def test_refused_files_name_the_reason_and_import_nothing(tenant, tmp_path, content, name, code_fragment):
    f = tmp_path / name
    f.write_bytes(content)
    rep = run(tenant, f)
    assert rep.status == "failed" and rep.exit_code == 2
    assert code_fragment in rep.error and name in rep.error
    assert records(tenant) == []


def test_broken_bytes_in_one_row_quarantine_that_row(tenant, tmp_path):
    f = tmp_path / "mixed.csv"
    body = (HEADER + GOOD[0]).encode() + b"9,\xff\xfe\xfa,13800138009,,x,,\n" + GOOD[1].encode()
    f.write_bytes(body)
    rep = run(tenant, f)
    assert rep.encoding == "utf-8"
    assert (rep.rows_accepted, rep.rows_rejected) == (2, 1)
    assert rep.rejections[0].code == "bad_encoding" and rep.rejections[0].field == "姓名"


def test_mapping_errors_name_the_column(tenant, tmp_path):
    f = tmp_path / "crm.csv"
    f.write_text(HEADER + GOOD[0], encoding="utf-8")
    rep = run(tenant, f, mapping=Mapping(columns={"手机号码": "phone"}))
    assert rep.status == "failed" and "手机号码" in rep.error
    rep = run(tenant, f, mapping=Mapping(unknown_columns="reject", auto=False, columns={"姓名": "name"}))
    assert rep.status == "failed" and "unknown column" in rep.error and "手机" in rep.error
    with pytest.raises(ValueError, match="not a standard field"):
        Mapping(columns={"姓名": "full_name"})


def test_load_mapping_reports_bad_keys(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text("columns: {姓名: name}\ncustom_types: {score: integer}\nbogus: 1\n", encoding="utf-8")
    with pytest.raises(MedscrmError) as ei:
        load_mapping(p)
    assert "custom_types" in str(ei.value) and "bogus" in str(ei.value)


class Boom(MedscrmError):
    pass


def test_failure_mid_import_leaves_nothing_half_written(tenant, tmp_path):
    f = tmp_path / "big.csv"
    f.write_text(
        HEADER + "".join(f"{i},王{i},1380013{i:04d},,协和医院,,\n" for i in range(50)) + BAD_PHONE,
        encoding="utf-8",
    )
    calls = []

    def explode(n, _b):
        calls.append(n)
        if len(calls) == 3:
            raise Boom("disk full (simulated)")

    rep = run(tenant, f, batch_size=10, on_progress=explode)
    assert rep.status == "failed" and "disk full" in rep.error
    assert records(tenant) == [] and open_quarantine(tenant) == []
    with tenant.engine.connect() as c:
        st = c.execute(sa.select(imports.c.status).where(imports.c.tenant_id == tenant.id)).scalars().all()
    assert st == ["failed"]
    ok = run(tenant, f, batch_size=10)  # and the same file then imports whole
    assert ok.rows_accepted == 50 and ok.rows_rejected == 1


def test_fix_and_replay_quarantined_row(tenant, tmp_path):
    f = tmp_path / "crm.csv"
    f.write_text(HEADER + GOOD[0] + BAD_PHONE, encoding="utf-8")
    run(tenant, f, mapping=Mapping(record_key="客户编号"))
    (entry,) = open_quarantine(tenant)
    with tenant.engine.begin() as c:
        res = qs.replay(conn=c, tenant_id=tenant.id, entry_ids=[entry["id"]])
    assert res["replayed"] == [] and res["still_bad"][0]["issues"][0]["field"] == "phone"
    with tenant.engine.begin() as c:
        with pytest.raises(MedscrmError, match="unknown column"):
            qs.fix(conn=c, tenant_id=tenant.id, entry_id=entry["id"], changes={"mobile": "1"})
        qs.fix(conn=c, tenant_id=tenant.id, entry_id=entry["id"], changes={"手机": "13512345678"})
        res = qs.replay(conn=c, tenant_id=tenant.id, entry_ids=None)
    assert len(res["replayed"]) == 1
    new = [r for r in records(tenant) if r["record_key"] == "4"]
    assert new and new[0]["phone"] == "+8613512345678" and new[0]["raw"]["手机"] == "13512345678"
    with tenant.engine.connect() as c:
        e = qs.get_entry(conn=c, tenant_id=tenant.id, entry_id=entry["id"])
    assert e["status"] == "replayed" and e["source_record_id"] == new[0]["id"]
    assert e["payload"]["手机"] == "12345"  # the original is kept


def test_tenants_do_not_see_each_other(engine, tmp_path):
    from medscrm.accounts import service as accounts

    with engine.begin() as c:
        a = accounts.ensure_tenant(conn=c, slug="iso-a-" + tmp_path.name[-6:])
        b = accounts.ensure_tenant(conn=c, slug="iso-b-" + tmp_path.name[-6:])
    f = tmp_path / "crm.csv"
    f.write_text(HEADER + GOOD[0] + BAD_PHONE, encoding="utf-8")
    import_file(engine=engine, tenant_id=a["id"], source="crm", path=f)
    with engine.connect() as c:
        nb = c.execute(
            sa.select(sa.func.count())
            .select_from(source_records)
            .where(source_records.c.tenant_id == b["id"])
        ).scalar()
        qb = qs.list_entries(conn=c, tenant_id=b["id"])
        qa = c.execute(
            sa.select(sa.func.count()).select_from(quarantine).where(quarantine.c.tenant_id == a["id"])
        ).scalar()
    assert (nb, qb, qa) == (0, [], 1)
