"""In-process cost of the request middleware (``medscrm.api.observe.Observe``: request id, X-Request-ID
header, latency histogram) per request, on the event API's fast-lane path.

    uv run python benchmarks/observe_overhead.py --quick

An ASGI app that answers at once (status, headers, body) is called directly (the reference) and
through ``Observe``; the difference per request is the middleware's cost. Best of several rounds (the
minimum is the least disturbed by other load). Writes ``benchmarks/results/observe_overhead.json``;
the last line is ``RESULT {json}``."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from medscrm.api.observe import Observe

HEADERS = [
    (b"host", b"127.0.0.1:8000"),
    (b"authorization", b"Basic d3JpdGUta2V5Og=="),
    (b"content-type", b"application/json"),
    (b"content-length", b"64"),
    (b"user-agent", b"analytics-python/2.3"),
]


async def answer(scope, receive, send) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": b'{"success":true}'})


async def receive() -> dict:
    return {"type": "http.request", "body": b"", "more_body": False}


async def discard(message: dict) -> None:
    return None


async def per_request(app, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        await app(
            {"type": "http", "method": "POST", "path": "/v1/track", "headers": HEADERS}, receive, discard
        )
    return (time.perf_counter() - t0) / n


async def measure(n: int, rounds: int) -> dict:
    wrapped = Observe(answer, fast_paths=frozenset({"/v1/track"}))
    bare, observed = [], []
    for _ in range(rounds):
        bare.append(await per_request(answer, n))
        observed.append(await per_request(wrapped, n))
    b, o = min(bare), min(observed)
    return {
        "requests_per_round": n,
        "rounds": rounds,
        "reference_us": round(b * 1e6, 2),
        "observe_us": round(o * 1e6, 2),
        "overhead_us_per_request": round((o - b) * 1e6, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="50k requests per round (default 200k)")
    args = ap.parse_args()
    out = {"benchmark": "observe_overhead", "mode": "quick" if args.quick else "full"}
    out.update(asyncio.run(measure(50_000 if args.quick else 200_000, 5)))
    print(
        f"reference {out['reference_us']} µs, with Observe {out['observe_us']} µs: "
        f"{out['overhead_us_per_request']} µs per request"
    )
    res = Path(__file__).resolve().parent / "results"
    res.mkdir(exist_ok=True)
    (res / "observe_overhead.json").write_text(json.dumps(out, indent=2), encoding="utf-8")
    print("RESULT " + json.dumps(out))


if __name__ == "__main__":
    main()
