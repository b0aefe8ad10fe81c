"""OneID incremental linking: new records into a resolved workspace, beside a full re-run.

    uv run python benchmarks/identity_incremental.py --quick    # synth 50k HCPs (~145k records)
    uv run python benchmarks/identity_incremental.py            # synth 350k HCPs (~1M records)
    uv run python benchmarks/identity_incremental.py --hcps N --batch 1000 --singles 200 [--out F.json]
    uv run python benchmarks/identity_incremental.py --hcps 780000 --out identity_incremental_1m.json
                                                                    # ~1M persons (~2.3M records)

The synth data set (with ground truth) is split: ``batch + singles`` records drawn at random are
held out, the rest is resolved in full (the existing workspace). Then

* ``singles`` held-out records are linked one at a time (latency p50/p95/max per record);
* the ``batch`` held-out records are linked in one call (seconds per batch);
* the whole data set is resolved again in full (the reference, same run, same machine): pairwise
  precision/recall/F1 of the incremental clusters and of the full re-run against the ground truth,
  and the F1 difference (target |ΔF1| ≤ 0.001), plus the pairwise agreement of the two clusterings.

Index build time and the process's peak RSS are reported. Writes
``benchmarks/results/identity_incremental.json``; the last line is ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from medscrm.identity.incremental import IncrementalLinker
from medscrm.identity.resolve import resolve_records


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _current_rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return round(int(f.read().split()[1]) * resource.getpagesize() / 2**20, 1)
    except OSError:
        return float("nan")


def _pairs(assign: dict[str, str]) -> set[tuple[str, str]]:
    groups: dict[str, list[str]] = {}
    for r, p in assign.items():
        groups.setdefault(p, []).append(r)
    out: set[tuple[str, str]] = set()
    for g in groups.values():
        if len(g) > 1:
            out.update(itertools.combinations(sorted(g), 2))
    return out


def _prf(pred: set, true: set) -> dict:
    tp = len(pred & true)
    p = tp / len(pred) if pred else 1.0
    r = tp / len(true) if true else 1.0
    return {
        "precision": round(p, 5),
        "recall": round(r, 5),
        "f1": round(2 * p * r / (p + r) if p + r else 0, 5),
    }


def _load_synth(hcps: int) -> tuple[pd.DataFrame, dict[str, str]]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from identity_accuracy import _with_wecom_remarks

    with tempfile.TemporaryDirectory() as d:
        subprocess.run(
            [sys.executable, "-m", "medscrm", "synth", "--hcps", str(hcps), "--out", d],
            check=True,
            capture_output=True,
        )
        df = pd.read_csv(Path(d) / "all_records.csv", dtype=str, keep_default_na=False, na_values=[""])
        truth = pd.read_csv(Path(d) / "ground_truth.csv", dtype=str)
        df = _with_wecom_remarks(df, Path(d) / "wecom_contacts.jsonl")
    return df, dict(zip(truth["record_id"], truth["person_key"], strict=True))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--hcps", type=int, default=None)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--singles", type=int, default=200)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default=None, help="result file name under benchmarks/results/")
    args = ap.parse_args()
    hcps = args.hcps or (50_000 if args.quick else 350_000)
    out: dict = {"mode": "quick" if args.quick else "full", "hcps": hcps}

    t = time.perf_counter()
    df, truth = _load_synth(hcps)
    out["records"] = len(df)
    out["synth_seconds"] = round(time.perf_counter() - t, 1)
    rng = random.Random(args.seed)
    held = rng.sample(range(len(df)), args.batch + args.singles)
    singles_idx, batch_idx = held[: args.singles], held[args.singles :]
    base = df.drop(index=held).reset_index(drop=True)
    print(f"synth {hcps:,} HCPs: {len(df):,} records; workspace {len(base):,}, new {len(held):,}", flush=True)

    t = time.perf_counter()
    res = resolve_records(base)
    out["workspace_resolve_seconds"] = round(time.perf_counter() - t, 2)
    out["workspace_persons"] = int(res.clusters["person_id"].nunique())
    gc.collect()
    rss0 = _current_rss_mb()
    t = time.perf_counter()
    linker = IncrementalLinker.from_resolve(res)
    out["index_build_seconds"] = round(time.perf_counter() - t, 2)
    gc.collect()
    out["index_rss_mb"] = round(_current_rss_mb() - rss0, 1)  # approximate: RSS growth while building
    print(
        f"workspace resolved in {out['workspace_resolve_seconds']} s ({out['workspace_persons']:,} persons); "
        f"index built in {out['index_build_seconds']} s (+{out['index_rss_mb']} MB)",
        flush=True,
    )
    del res

    lat, cpu = [], []
    for i in singles_idx:
        rec = df.iloc[[i]]
        t, c = time.perf_counter(), time.process_time()
        linker.link(rec)
        lat.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    lat.sort()
    cpu.sort()

    def q(xs: list[float], f: float) -> float:
        return round(xs[min(len(xs) - 1, int(f * len(xs)))], 2)

    out["single_record_ms"] = {
        "p50": q(lat, 0.5),
        "p95": q(lat, 0.95),
        "max": round(lat[-1], 2),
        "n": len(lat),
    }
    # CPU time of this process: what the work costs when the shared machine is busy with others
    out["single_record_cpu_ms"] = {"p50": q(cpu, 0.5), "p95": q(cpu, 0.95), "max": round(cpu[-1], 2)}
    batch = df.iloc[batch_idx]
    t, c = time.perf_counter(), time.process_time()
    lr = linker.link(batch)
    out["batch_seconds"] = round(time.perf_counter() - t, 4)
    out["batch_cpu_seconds"] = round(time.process_time() - c, 4)
    out["batch_records"] = len(batch)
    out["batch_stats"] = {k: v for k, v in lr.stats.items() if k != "features"}
    out["batch_outcome"] = {
        "attached_to_existing": sum(lr.grown.values()),
        "new_persons": len(lr.created),
        "merges": len(lr.merged),
        "review_pairs": len(lr.review),
        "refused_links": len(lr.refused),
    }
    print(
        f"single record: {out['single_record_ms']}; batch of {len(batch)}: {out['batch_seconds']} s",
        flush=True,
    )

    inc_assign = {r: p for p, rs in linker.persons().items() for r in rs}
    del linker
    t = time.perf_counter()
    full = resolve_records(df)
    out["full_rerun_seconds"] = round(time.perf_counter() - t, 2)
    full_assign = dict(zip(full.clusters["record_id"], full.clusters["person_id"], strict=True))
    del full
    true_pairs = _pairs({r: truth[r] for r in df["record_id"]})
    inc_pairs, full_pairs = _pairs(inc_assign), _pairs(full_assign)
    out["incremental"] = _prf(inc_pairs, true_pairs)
    out["full_rerun"] = _prf(full_pairs, true_pairs)
    out["f1_difference"] = round(out["incremental"]["f1"] - out["full_rerun"]["f1"], 5)
    out["agreement_with_full_rerun"] = _prf(inc_pairs, full_pairs)
    out["peak_rss_mb"] = _rss_mb()
    out["load_average_1m"] = round(os.getloadavg()[0], 2)
    out["targets"] = {
        "batch_seconds_lt_1": out["batch_seconds"] < 1.0,
        "batch_cpu_seconds_lt_1": out["batch_cpu_seconds"] < 1.0,
        "single_p95_ms_lt_50": out["single_record_ms"]["p95"] < 50,
        "single_p95_cpu_ms_lt_50": out["single_record_cpu_ms"]["p95"] < 50,
        "abs_f1_difference_le_0.001": abs(out["f1_difference"]) <= 0.001,
    }
    print(
        f"incremental {out['incremental']} vs full re-run {out['full_rerun']} "
        f"(ΔF1 {out['f1_difference']:+.5f}); peak RSS {out['peak_rss_mb']} MB",
        flush=True,
    )
    res_dir = Path(__file__).resolve().parent / "results"
    res_dir.mkdir(exist_ok=True)
    name = args.out or ("identity_incremental.json" if args.quick else "identity_incremental_full.json")
    (res_dir / name).write_text(json.dumps(out, indent=2, ensure_ascii=False), encoding="utf-8")
    print("RESULT " + json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
