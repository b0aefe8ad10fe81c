"""``python -m medscrm.synth OUT_DIR --hcps N [--seed S] [--patients P] [--bad-row-rate R]``"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from medscrm.synth.generator import generate


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m medscrm.synth", description=__doc__)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--hcps", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--patients", type=int, default=None)
    ap.add_argument("--bad-row-rate", type=float, default=0.01)
    ap.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    m = generate(
        a.out_dir, hcps=a.hcps, seed=a.seed, patients=a.patients, bad_row_rate=a.bad_row_rate,
        progress=not a.no_progress,
    )  # fmt: skip
    dt = time.perf_counter() - t0
    for s in m.sources:
        print(f"{s.name:10s} {s.file:26s} {s.rows:>10,d} rows")
    print(f"total {m.total_rows:,d} rows ({m.bad_rows:,d} bad) in {dt:.1f}s -> {a.out_dir}")


if __name__ == "__main__":
    main()
