"""What the event API's door checks cost, beside the decoding they guard.

    uv run python benchmarks/door_checks.py --quick

Every ``/v1/track`` and ``/v1/batch`` body is checked before it is spooled: valid UTF-8, nesting at
most 64 levels, numbers both databases store exactly, no lone surrogates
(:func:`medscrm.ingest.protocol.segment.check_text` and ``find_bad_value``). This measures those checks
in process on the same bodies the load benchmark (``ingest_events.py``) sends — 100 realistic
messages per batch, and a single track event — next to the reference: the fast path's own decode and
encode of the same body (``decode_fast`` + ``encode_lines``), and ``orjson.loads`` of it. ``ratio`` =
checks ÷ fast path (what the checks add to a request's decoding). Best of N rounds, in µs per body.
Writes ``benchmarks/results/door_checks.json``; the last line is ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).parent))
from ingest_events import batch_templates, make_track  # noqa: E402

from medscrm.common import utcnow  # noqa: E402
from medscrm.ingest.protocol import segment  # noqa: E402

RESULTS_DIR = Path(__file__).parent / "results"


def best_us(fn: Any, bodies: list[bytes], n: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        for i in range(n):
            fn(bodies[i % len(bodies)])
        best = min(best, (time.perf_counter() - t) / n)
    return round(best * 1e6, 2)


def door(raw: bytes) -> None:
    segment.check_text(raw)
    segment.find_bad_value(raw)


def fast_path(is_batch: bool) -> Any:
    def run(raw: bytes) -> None:
        d = segment.decode_fast(raw, is_batch=is_batch)
        segment.encode_lines(
            d, received_at=utcnow(), tags=("t", "s"), type_hint=None if is_batch else "track"
        )

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds (default 15)")
    args = ap.parse_args()
    rounds = 5 if args.quick else 15
    batches = batch_templates(16)
    tracks = [orjson.dumps(make_track("t", i)) for i in range(16)]
    out: dict[str, Any] = {
        "benchmark": "door_checks",
        "mode": "quick" if args.quick else "full",
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    for name, bodies, is_batch, n in (("batch", batches, True, 300), ("track", tracks, False, 5000)):
        checks = best_us(door, bodies, n, rounds)
        ref = best_us(fast_path(is_batch), bodies, n, rounds)
        loads = best_us(orjson.loads, bodies, n, rounds)
        out[name] = {
            "body_bytes": len(bodies[0]),
            "checks_us": checks,
            "fast_path_us": ref,
            "orjson_loads_us": loads,
            "ratio": round(checks / ref, 3),
        }
        print(
            f"{name}: checks {checks} µs, fast path {ref} µs, orjson.loads {loads} µs, ratio {checks / ref:.2f}"
        )
    RESULTS_DIR.mkdir(exist_ok=True)
    text = json.dumps(out, ensure_ascii=False, indent=2)
    (RESULTS_DIR / "door_checks.json").write_text(text + "\n")
    print("RESULT " + json.dumps({k: out[k] for k in ("mode", "batch", "track")}))


if __name__ == "__main__":
    main()
