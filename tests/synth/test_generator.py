"""Tests for medscrm.synth: determinism, file formats, ground truth, mappings, noise, bad rows."""

from __future__ import annotations

import collections
import csv
import json
import re
import unicodedata
from pathlib import Path

import orjson
import phonenumbers
import pyarrow.parquet as pq
import pytest
import yaml
from openpyxl import load_workbook

from medscrm.reference import HOSPITAL_GRADES, hospitals_by_alias, load_hospitals
from medscrm.synth import (
    GROUND_TRUTH_COLUMNS,
    IDENTIFYING_FIELDS,
    RESOLVE_COLUMNS,
    SOURCES_BY_NAME,
    STANDARD_FIELDS,
    SynthManifest,
    generate,
)
from medscrm.synth.pools import PROVINCES

HCPS = 300


@pytest.fixture(scope="module")
def run1(tmp_path_factory) -> tuple[Path, SynthManifest]:
    out = tmp_path_factory.mktemp("synth1")
    return out, generate(out, hcps=HCPS, seed=42)


@pytest.fixture(scope="module")
def gt(run1) -> list[dict]:
    with open(run1[0] / "ground_truth.csv", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def records(run1) -> list[dict]:
    with open(run1[0] / "all_records.csv", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def read_source(out: Path, name: str) -> tuple[list[str], list[dict]]:
    """Read a source file back as (columns, rows) the way an importer would."""
    spec = SOURCES_BY_NAME[name]
    path = out / spec.file
    if spec.format == "csv":
        with open(path, encoding=spec.encoding, newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            return list(reader.fieldnames or []), rows
    if spec.format == "jsonl":
        rows = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
        cols: dict[str, None] = {}
        for r in rows:
            cols.update(dict.fromkeys(r))
        return list(cols), rows
    if spec.format == "xlsx":
        wb = load_workbook(path, read_only=True)
        it = wb.active.iter_rows(values_only=True)
        header = [str(c) for c in next(it)]
        rows = [dict(zip(header, r, strict=False)) for r in it]
        wb.close()
        return header, rows
    table = pq.read_table(path)
    return table.column_names, table.to_pylist()


EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}$")


def phone_ok(raw: str) -> bool:
    try:
        num = phonenumbers.parse(unicodedata.normalize("NFKC", raw).strip(), "CN")
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(num)


def row_problems(r: dict) -> list[str]:
    """A reference validator: what an importer should quarantine."""
    out = []
    if r["phone"].strip() and not phone_ok(r["phone"]):
        out.append("phone")
    if r["email"].strip() and not EMAIL_RE.match(r["email"].strip()):
        out.append("email")
    if r["license_no"].strip() and not re.fullmatch(r"\d{15}", r["license_no"].strip()):
        out.append("licence")
    # a name without a letter or digit (an emoji-only nickname) identifies nobody
    if not any(r[f].strip() for f in IDENTIFYING_FIELDS if f != "name") and not any(
        c.isalnum() for c in r["name"]
    ):
        out.append("noid")
    return out


def digits(raw: str) -> str:
    d = "".join(c for c in unicodedata.normalize("NFKC", raw) if c.isdigit())
    return d[-11:]


# ------------------------------------------------------------------------------------------------
def test_manifest(run1):
    out, m = run1
    d = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert d["seed"] == 42 and d["hcps"] == HCPS and d["tenant"] == "demo"
    assert d["ground_truth"] == "ground_truth.csv" and d["resolve_input"] == "all_records.csv"
    names = [s["name"] for s in d["sources"]]
    assert names == ["crm", "webinar", "wechat", "wecom", "events", "survey", "patients"]
    assert SynthManifest.load(out) == m
    for s in m.sources:
        assert (out / s.file).exists() and (out / s.mapping).exists()
        _, rows = read_source(out, s.name)
        assert len(rows) == s.rows > 0, s.name
    crm = m.source("crm").rows
    assert 0.6 * HCPS < crm < 0.85 * HCPS
    assert m.patients == HCPS // 5


def test_deterministic(run1, tmp_path):
    out1, _ = run1
    out2 = tmp_path / "again"
    generate(out2, hcps=HCPS, seed=42)
    files = sorted(p.relative_to(out1) for p in out1.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(out2) for p in out2.rglob("*") if p.is_file())
    for rel in files:  # csv, jsonl, yaml, json and also xlsx / parquet
        assert (out1 / rel).read_bytes() == (out2 / rel).read_bytes(), rel
    out3 = tmp_path / "other_seed"
    generate(out3, hcps=HCPS, seed=7)
    assert (out3 / "crm_export.csv").read_bytes() != (out1 / "crm_export.csv").read_bytes()


def test_encodings(run1):
    out, _ = run1
    raw = (out / "crm_export.csv").read_bytes()
    text = raw.decode("gb18030")
    assert text.startswith("客户编号,姓名")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    web = (out / "webinar_signups.csv").read_bytes()
    assert web.startswith(b"\xef\xbb\xbf") and web.decode("utf-8-sig").startswith("signup_id,")
    assert (out / "patient_program.csv").read_bytes().decode("utf-8").startswith("患者编号,")
    assert (out / "event_signups.xlsx").read_bytes()[:2] == b"PK"


def test_ground_truth_covers_every_row(run1, gt, records):
    out, m = run1
    assert list(gt[0]) == list(GROUND_TRUTH_COLUMNS)
    assert list(records[0]) == list(RESOLVE_COLUMNS)
    assert len(gt) == sum(s.rows for s in m.sources) == m.total_rows == len(records)
    ids = [r["record_id"] for r in gt]
    assert len(set(ids)) == len(ids)
    assert ids == [r["record_id"] for r in records]
    by_source = collections.defaultdict(set)
    for r in gt:
        assert r["record_id"] == f"{r['source']}:{r['source_key']}"
        assert r["person_key"]
        by_source[r["source"]].add(r["source_key"])
    for s in m.sources:
        spec = SOURCES_BY_NAME[s.name]
        _, rows = read_source(out, s.name)
        keys = {str(r[spec.record_key]) for r in rows}
        assert keys == by_source[s.name], s.name
        assert {r["person_type"] for r in gt if r["source"] == s.name} == {spec.person_type}


def test_all_records_are_raw(run1, records):
    out, _ = run1
    _, crm = read_source(out, "crm")
    mine = {f"crm:{r['客户编号']}": r for r in crm}
    for rec in records:
        if rec["source"] == "crm":
            raw = mine[rec["record_id"]]
            assert (rec["name"], rec["phone"], rec["hospital"]) == (raw["姓名"], raw["手机"], raw["医院"])
    _, wechat = read_source(out, "wechat")
    wx = {f"wechat:{r['openid']}": r for r in wechat}
    for rec in records:
        if rec["source"] == "wechat":
            raw = wx[rec["record_id"]]
            # the HCP-verification name wins over the nickname (first non-empty mapped column)
            assert rec["name"] == (raw.get("real_name") or raw["nickname"])
            assert rec["phone"] == (raw.get("verified_mobile") or "")
            assert rec["gender"] == str(raw["sex"])
    verified = [r for r in wechat if r.get("real_name")]
    assert 0.3 < len(verified) / len(wechat) < 0.6  # HCP_VERIFICATION of the followers
    assert all(r.get("verified_mobile") for r in verified)


def test_mappings_reference_real_columns(run1):
    out, m = run1
    for s in m.sources:
        doc = yaml.safe_load((out / s.mapping).read_text(encoding="utf-8"))
        assert doc["source"] == s.name
        assert doc["person_type"] in ("hcp", "patient")
        header, _ = read_source(out, s.name)
        assert doc["record_key"] in header
        assert set(doc["columns"]) <= set(header), s.name
        assert set(doc["columns"].values()) <= set(STANDARD_FIELDS)
        assert "name" in doc["columns"].values()
        assert set(doc["custom"]) <= set(header), s.name
        for attr, typ in doc.get("custom_types", {}).items():
            assert attr in doc["custom"].values()
            assert typ in ("string", "int", "float", "bool", "date")
    wechat = yaml.safe_load((out / "mappings/wechat.yaml").read_text(encoding="utf-8"))
    # the verification name first, then the nickname (the first non-empty wins)
    assert [c for c, f in wechat["columns"].items() if f == "name"] == ["real_name", "nickname"]
    wecom = yaml.safe_load((out / "mappings/wecom.yaml").read_text(encoding="utf-8"))
    assert wecom["custom"]["remark"] == "rep_remark" and wecom["custom"]["rep_userid"] == "rep_userid"


def test_noise_is_present(run1, gt, records):
    out, _ = run1
    person = {r["record_id"]: r["person_key"] for r in gt}
    phones = collections.defaultdict(set)
    for r in records:
        if r["phone"] and phone_ok(r["phone"]):
            phones[person[r["record_id"]]].add(r["phone"])
    # same person, same number, written differently in different records
    assert any(len(v) >= 2 and len({digits(p) for p in v}) < len(v) for v in phones.values())
    raw_phones = [r["phone"] for r in records]
    assert any(p.startswith("+86") for p in raw_phones)
    assert any(" " in p.strip() for p in raw_phones)
    # a number shared by several people (department landline, rep's phone)
    owners = collections.defaultdict(set)
    for r in records:
        if r["phone"] and phone_ok(r["phone"]):
            owners[digits(r["phone"])].add(person[r["record_id"]])
    assert any(len(v) > 1 for v in owners.values())
    # namesakes: different people, same name
    with open(out / "persons.csv", encoding="utf-8", newline="") as f:
        persons = [p for p in csv.DictReader(f) if p["person_type"] == "hcp"]
    by_name = collections.Counter(p["name"] for p in persons)
    assert any(n > 1 for n in by_name.values())
    # webinar names in Latin script, WeChat nicknames that are not the real name
    assert any(r["name"].isascii() and r["name"].strip() for r in records if r["source"] == "webinar")
    real = {p["person_key"]: p["name"] for p in persons}
    wx = [(r["name"], real[person[r["record_id"]]]) for r in records if r["source"] == "wechat"]
    assert sum(n == rn for n, rn in wx) < 0.6 * len(wx)
    assert any(
        n != rn and n.startswith(rn[0]) and n.endswith(("医生", "主任", "大夫", "老师")) for n, rn in wx
    )


def test_same_hospital_namesakes(tmp_path):
    generate(tmp_path, hcps=1500, seed=3, patients=0)
    with open(tmp_path / "persons.csv", encoding="utf-8", newline="") as f:
        persons = list(csv.DictReader(f))
    groups = collections.defaultdict(list)
    for p in persons:
        groups[(p["name"], p["hospital_id"])].append(p["department"])
    assert any(len(set(d)) > 1 for d in groups.values())
    assert not (tmp_path / "patient_program.csv").exists()


def test_bad_rows(tmp_path):
    m = generate(tmp_path, hcps=HCPS, seed=11, bad_row_rate=0.1)
    with open(tmp_path / "ground_truth.csv", encoding="utf-8", newline="") as f:
        bad = {r["record_id"]: r["is_bad"] == "1" for r in csv.DictReader(f)}
    with open(tmp_path / "all_records.csv", encoding="utf-8", newline="") as f:
        recs = list(csv.DictReader(f))
    assert 0.06 < sum(bad.values()) / len(bad) < 0.14
    assert m.bad_rows == sum(bad.values())
    kinds = collections.Counter()
    for r in recs:
        problems = row_problems(r)
        if bad[r["record_id"]]:
            assert problems, r  # every bad row must be detectably bad
            kinds.update(problems)
        else:
            assert not problems, (problems, r)  # noise in good rows stays valid after normalisation
    assert set(kinds) == {"phone", "email", "licence", "noid"}
    assert len({r["source"] for r in recs if bad[r["record_id"]]}) == 7


def test_default_rate_rows_validate(records, gt):
    bad = {r["record_id"]: r["is_bad"] == "1" for r in gt}
    for r in records:
        assert bool(row_problems(r)) == bad[r["record_id"]], r


def test_reference_hospitals():
    hs = load_hospitals()
    assert len(hs) >= 150
    assert len({h["hospital_id"] for h in hs}) == len(hs) == len({h["name"] for h in hs})
    for h in hs:
        assert h["grade"] in HOSPITAL_GRADES and h["province"] in PROVINCES and h["city"]
        assert isinstance(h["aliases"], list)
    by_alias = hospitals_by_alias()
    assert {h["city"] for h in by_alias["协和医院"]} >= {"北京", "武汉", "福州"}
    assert len({h["city"] for h in by_alias["人民医院"]}) >= 10
    assert "PUMCH" in next(h for h in hs if h["name"] == "中国医学科学院北京协和医院")["aliases"]
    assert {h["grade"] for h in hs} >= {"三级甲等", "二级甲等", "一级"}


def test_wechat_login_captures_unionid(run1, gt, records):
    """Webinar and event sign-ups go through WeChat login, so most rows carry the person's unionid;
    WeCom returns the unionid of contacts who also follow the official account."""
    with open(run1[0] / "persons.csv", encoding="utf-8", newline="") as f:
        persons = {p["person_key"]: p for p in csv.DictReader(f)}
    key = {g["record_id"]: g["person_key"] for g in gt}
    bad = {g["record_id"] for g in gt if g["is_bad"] == "1"}
    good = [r for r in records if r["record_id"] not in bad]
    follower_uids: dict[str, set[str]] = collections.defaultdict(set)
    for r in good:
        if r["source"] == "wechat" and r["wechat_unionid"]:
            follower_uids[key[r["record_id"]]].add(r["wechat_unionid"])
    matched = checked = 0
    for src in ("webinar", "events"):
        rows = [r for r in good if r["source"] == src]
        with_uid = [r for r in rows if r["wechat_unionid"]]
        assert len(with_uid) >= 0.5 * len(rows), src
        assert len(with_uid) < len(rows), src  # some sign-ups still came without WeChat login
        for r in with_uid:
            p = persons[key[r["record_id"]]]
            assert r["wechat_unionid"] in (p["wechat_unionid"], p["wechat_unionid2"])
            if follower_uids.get(p["person_key"]):
                checked += 1
                matched += r["wechat_unionid"] in follower_uids[p["person_key"]]
    assert checked > 20 and matched >= 0.9 * checked
    # WeCom contacts who follow the official account (their follower row shows the unionid) mostly
    # carry it; those who do not follow carry it only sometimes
    followers = [r for r in good if r["source"] == "wecom" and follower_uids.get(key[r["record_id"]])]
    others = [r for r in good if r["source"] == "wecom" and not follower_uids.get(key[r["record_id"]])]
    assert followers and sum(bool(r["wechat_unionid"]) for r in followers) >= 0.85 * len(followers)
    assert others and sum(bool(r["wechat_unionid"]) for r in others) < 0.8 * len(others)
    # the hard cases remain: followers with nothing but a nickname, seen in no other source
    by_person = collections.Counter(key[r["record_id"]] for r in good)
    assert any(r["source"] == "wechat" and by_person[key[r["record_id"]]] == 1 for r in good)
