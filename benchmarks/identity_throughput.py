"""OneID throughput: source records resolved per second, time per stage, peak memory.

    uv run python benchmarks/identity_throughput.py --quick          # ~100k synth records
    uv run python benchmarks/identity_throughput.py                  # ~1M synth records
    uv run python benchmarks/identity_throughput.py --records N [--no-reference]

The whole engine (`resolve_records`: features, deterministic links, Splink training + prediction,
guards, clustering) runs on the synth records; the time of each stage comes from the engine's
progress callbacks. The reference in the same run is a plain Splink dedupe of the same records
(raw name / phone / e-mail / hospital / city, exact comparisons, name tf, blocking on phone, e-mail,
name; u sampling, one EM pass, predict, connected components at 0.9). Peak RSS is measured per
stage in a child process (ru_maxrss of the process that ran it). Writes
``benchmarks/results/identity_throughput.json``; the last line is ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd


def _load(records: int, d: str) -> pd.DataFrame:
    hcps = max(100, int(records / 2.9))
    subprocess.run(
        [sys.executable, "-m", "medscrm", "synth", "--hcps", str(hcps), "--out", d],
        check=True,
        capture_output=True,
    )
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from identity_accuracy import _with_wecom_remarks

    df = pd.read_csv(Path(d) / "all_records.csv", dtype=str, keep_default_na=False, na_values=[""])
    return _with_wecom_remarks(df, Path(d) / "wecom_contacts.jsonl")


def _ours(path: str, q: mp.Queue) -> None:
    from medscrm.identity.resolve import resolve_records

    df = pd.read_parquet(path)
    marks: list[tuple[str, float]] = []
    t0 = time.perf_counter()
    c0 = time.process_time()
    res = resolve_records(df, progress=lambda msg, _f: marks.append((msg, time.perf_counter())))
    secs = time.perf_counter() - t0
    stages: dict[str, float] = {}
    prev_name, prev_t = "read", t0
    for name, t in marks:
        key = name.split(" (")[0]
        stages[prev_name] = round(stages.get(prev_name, 0.0) + t - prev_t, 2)
        prev_name, prev_t = key, t
    q.put(
        {
            "seconds": round(secs, 2),
            "cpu_seconds": round(time.process_time() - c0, 2),
            "records_per_s": round(len(df) / secs, 1),
            "stages": stages,
            "persons": int(res.clusters["person_id"].nunique()),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
    )


def _splink(path: str, q: mp.Queue) -> None:
    import logging

    import duckdb
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    df = pd.read_parquet(path)
    t0 = time.perf_counter()
    data = df[["record_id", "name", "phone", "email", "hospital", "city"]].rename(
        columns={"record_id": "unique_id"}
    )
    db = DuckDBAPI(duckdb.connect())
    settings = SettingsCreator(
        link_type="dedupe_only",
        blocking_rules_to_generate_predictions=[block_on("phone"), block_on("email"), block_on("name")],
        comparisons=[
            cl.ExactMatch("name").configure(term_frequency_adjustments=True),
            cl.ExactMatch("phone"),
            cl.ExactMatch("email"),
            cl.ExactMatch("hospital"),
            cl.ExactMatch("city"),
        ],
    )
    linker = Linker(db.register(data), settings, log_level=logging.ERROR)
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=42)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("name"))
    pred = linker.inference.predict(threshold_match_probability=0.5)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pred, 0.9).as_pandas_dataframe()
    secs = time.perf_counter() - t0
    q.put(
        {
            "seconds": round(secs, 2),
            "records_per_s": round(len(df) / secs, 1),
            "persons": int(clusters["cluster_id"].nunique()),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
    )


def _run(fn, path: str) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=fn, args=(path, q))
    p.start()
    out = q.get()
    p.join()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--records", type=int, default=None)
    ap.add_argument("--no-reference", action="store_true")
    args = ap.parse_args()
    n = args.records or (100_000 if args.quick else 1_000_000)
    out: dict = {"mode": "quick" if args.quick else "full", "target_records": n, "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        df = _load(n, d)
        out["records"] = len(df)
        out["synth_seconds"] = round(time.perf_counter() - t, 1)
        path = str(Path(d) / "records.parquet")
        df.to_parquet(path, index=False)
        del df
        print(f"{out['records']:,} synth records", flush=True)
        out["medscrm"] = _run(_ours, path)
        print("medscrm:", out["medscrm"], flush=True)
        if not args.no_reference:
            out["splink_plain"] = _run(_splink, path)
            print("plain splink:", out["splink_plain"], flush=True)
            out["time_ratio_vs_splink"] = round(
                out["medscrm"]["seconds"] / max(1e-9, out["splink_plain"]["seconds"]), 3
            )
    out["records_per_s_per_core"] = round(out["medscrm"]["records_per_s"] / max(1, os.cpu_count() or 1), 1)
    out["load_average_1m"] = round(os.getloadavg()[0], 2)
    stages = out["medscrm"]["stages"]
    out["slowest_stage"] = max(stages, key=stages.get) if stages else None
    res_dir = Path(__file__).resolve().parent / "results"
    res_dir.mkdir(exist_ok=True)
    name = "identity_throughput.json" if args.quick else "identity_throughput_full.json"
    (res_dir / name).write_text(json.dumps(out, indent=2, ensure_ascii=False), encoding="utf-8")
    print("RESULT " + json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
