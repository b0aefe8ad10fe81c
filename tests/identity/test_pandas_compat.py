"""OneID on pandas 2 and pandas 3.

pandas 3 stores text in its ``str`` dtype, whose missing value is NaN (a float), and copies on
write. The lock pins pandas 2 (a dev tool needs it), but ``pip install medscrm`` takes the newest
pandas: the ``pandas3`` fixture switches the locked pandas 2 to pandas 3's behaviour
(``future.infer_string``, ``mode.copy_on_write``) so these run the pandas 3 path in every test run;
on pandas 3 it changes nothing. ``scripts/check_wheel.sh`` runs the CLI on a real pandas 3.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from medscrm.identity.deterministic import deterministic_links
from medscrm.identity.features import FEATURE_COLUMNS, build_features
from medscrm.identity.resolve import read_table, resolve_file, resolve_records
from medscrm.identity.settings import load_settings

PANDAS_MAJOR = int(pd.__version__.split(".")[0])
TEXT_COLUMNS = [
    c
    for c in FEATURE_COLUMNS
    if c not in ("name_partial", "name_from_remark", "hospital_from_remark", "title_rank")
]


@pytest.fixture
def pandas3():
    if PANDAS_MAJOR >= 3:
        yield
        return
    with pd.option_context("future.infer_string", True, "mode.copy_on_write", True):
        yield


def _doctor(rid, name, **kw):
    return {"record_id": rid, "name": name, **kw}


# one shared clinic line among different doctors (a shared value, not an identity), a typo'd
# name on a personal mobile (one person), nicknames and nameless records next to full names,
# and a licence conflict on one phone: every branch of the deterministic guards sees missing values
RECORDS = [
    *[
        _doctor(f"c{i}", n, hospital="北京协和医院", phone="010-69156114", department="心内科")
        for i, n in enumerate(["王建国", "李秀英", "张志强", "刘桂芳"])
    ],
    _doctor("a1", "张伟", hospital="北京协和医院", phone="13811112222", department="心内科"),
    _doctor("a2", "张威", hospital="协和医院", city="北京", phone="138 1111 2222"),
    _doctor("a3", "张医生", phone="13811112222"),
    _doctor("a4", None, phone="13811112222", email="zw@example.com"),
    _doctor("a5", "小伟", email="zw@example.com"),
    _doctor("l1", "陈静", phone="13900001111", license_no="110101199001011"),
    _doctor("l2", "陈静", phone="13900001111", license_no="310101198505054"),
    _doctor("u1", "微信用户", wechat_unionid="o6_bmjrPTlm6_2sgVt7hMZOPfL2M"),
    _doctor("u2", "Lily", wechat_unionid="o6_bmjrPTlm6_2sgVt7hMZOPfL2M"),
    *[
        _doctor(f"f{i}", n, hospital="华山医院", department="呼吸科", phone=f"1390000{i:04d}", city="上海")
        for i, n in enumerate(["王伟", "李娜", "刘洋", "陈静", "杨帆", "赵磊"])
    ],
]


def _records_frame() -> pd.DataFrame:
    # as read from a CSV file: every column text, missing cells missing
    return pd.DataFrame(RECORDS).astype(str).where(pd.DataFrame(RECORDS).notna(), None)


def test_fixture_switches_to_string_dtype(pandas3):
    # the premise: under the fixture text columns come back in pandas' string dtype, NaN missing
    df = pd.DataFrame({"a": ["x", None]})
    assert df["a"].dtype != object
    assert isinstance(df["a"].to_numpy(dtype=object)[1], float)


def test_feature_table_text_columns_hold_none_for_missing(pandas3):
    feats, _ = build_features(_records_frame())
    for c in TEXT_COLUMNS:
        assert feats[c].dtype == object, c
        assert {type(v) for v in feats[c]} <= {str, type(None)}, c
    assert feats.loc[feats["unique_id"] == "a4", "name_py"].item() is None
    assert str(feats["title_rank"].dtype) == "Int64"


def _edges(feats: pd.DataFrame):
    res = deterministic_links(feats, load_settings())
    return (
        sorted(map(tuple, res.edges.to_numpy().tolist())),
        sorted((s["column"], s["value"], s["records"], s["persons"]) for s in res.shared),
        res.features,
    )


def test_deterministic_links_accept_string_dtype_features(pandas3):
    feats, _ = build_features(_records_frame())
    expected_edges, expected_shared, _ = _edges(feats)
    # a feature table whose text columns are in pandas' string dtype (a cached table read back,
    # or one a caller built): missing values are NaN there
    as_str = feats.copy()
    for c in TEXT_COLUMNS:
        as_str[c] = pd.Series(feats[c].tolist(), dtype=pd.StringDtype("python", na_value=np.nan))
    assert isinstance(as_str["name_py"].to_numpy(dtype=object)[6], float)  # a3's nickname: NaN
    edges, shared, out = _edges(as_str)
    assert edges == expected_edges
    assert shared == expected_shared
    # the clinic line is a shared value (nulled), the personal mobile links 张伟 / 张威 and the
    # nickname / nameless records, the e-mail the nameless record and 小伟, the unionid both
    assert shared == [("phone", "+861069156114", 4, 4)]
    assert edges == [
        ("a1", "a2", "phone"),
        ("a1", "a3", "phone"),
        ("a1", "a4", "phone"),
        ("a4", "a5", "email"),
        ("u1", "u2", "unionid"),
    ]  # and never l1-l2: one phone, two licences
    assert out.loc[out["unique_id"] == "c0", "phone"].isna().item()


def test_resolve_records_is_the_same_with_pandas3_strings(pandas3):
    res = resolve_records(_records_frame())
    with pd.option_context("future.infer_string", False) if PANDAS_MAJOR < 3 else _nothing():
        ref = resolve_records(pd.DataFrame(RECORDS))
    got = dict(zip(res.clusters["record_id"], res.clusters["person_id"], strict=True))
    want = dict(zip(ref.clusters["record_id"], ref.clusters["person_id"], strict=True))
    assert got == want
    assert got["a1"] == got["a2"]
    assert len({got[f"c{i}"] for i in range(4)}) == 4
    assert got["l1"] != got["l2"]


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_resolve_file_from_csv_with_pandas3_strings(pandas3, tmp_path):
    # the CLI path: `medscrm resolve records.csv --output out.csv` reads a CSV with gaps
    subprocess.run(
        [sys.executable, "-m", "medscrm", "synth", "--hcps", "120", "--out", str(tmp_path / "s")],
        check=True,
        capture_output=True,
    )
    src = tmp_path / "s" / "all_records.csv"
    df = read_table(src)
    assert df.isna().any().any()  # the synthetic sources leave cells empty
    out = tmp_path / "out.csv"
    report = resolve_file(src, out)
    clusters = pd.read_csv(out, dtype=str)
    assert len(clusters) == len(df) and report["output"] == str(out)
    assert clusters["person_id"].notna().all()
    assert clusters["person_id"].nunique() < len(clusters)  # duplicates across sources were merged
