"""``medscrm serve --workers N`` (PostgreSQL): which spool and which background jobs each process owns.

One Python process serves the API from one core (the GIL). With N worker processes, each process
holds a *slot* (an exclusive ``flock`` on ``SPOOL/.slot-K.lock``, released by the OS when the process
dies, so a restarted worker takes the slot back):

* slot K owns a spool directory of its own (slot 0: ``SPOOL`` itself, as a single process uses;
  slot K > 0: ``SPOOL/worker-K``), so event API writes never interleave across processes, and a
  restarted worker stores what its predecessor spooled;
* slot 0 is the *leader*: it alone runs the segment refresher, and at start it stores what is left in
  the spools of slots that no longer exist (``--workers`` lowered since the last run).
"""

from __future__ import annotations

import fcntl
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from medscrm.common import MedscrmError

#: environment variable through which ``medscrm serve`` tells its worker processes how many there are
WORKERS_ENV = "MEDSCRM_SERVE_WORKERS"


@dataclass
class Slot:
    index: int
    spool_dir: Path
    _lock: IO

    @property
    def leader(self) -> bool:
        return self.index == 0

    def release(self) -> None:
        self._lock.close()


def spool_of(root: Path, index: int) -> Path:
    return root if index == 0 else root / f"worker-{index}"


def take_slot(root: Path, workers: int, wait_s: float = 30.0) -> Slot:
    """Hold the first free slot of ``workers`` (waits while all are held, e.g. during a restart)."""
    root.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    while True:
        for i in range(workers):
            f = open(root / f".slot-{i}.lock", "a+")  # noqa: SIM115 — kept open: it is the lock
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.close()
                continue
            f.seek(0)
            f.truncate()
            f.write(str(os.getpid()))
            f.flush()
            spool = spool_of(root, i)
            spool.mkdir(parents=True, exist_ok=True)
            return Slot(i, spool, f)
        if time.monotonic() > deadline:
            raise MedscrmError(f"serve: all {workers} worker slots under {root} are held by other processes")
        time.sleep(0.2)


def take_slot_dir(spool: Path) -> IO | None:
    """Lock the slot of a worker spool directory (``SPOOL/worker-K``), or None if a process holds it."""
    index = spool.name.removeprefix("worker-")
    f = open(spool.parent / f".slot-{index}.lock", "a+")  # noqa: SIM115
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        return None
    return f


def orphan_spools(root: Path, workers: int) -> list[Path]:
    """Spool directories of slots at or beyond ``workers`` (left by a run with more workers)."""
    out = []
    for d in sorted(root.glob("worker-*")):
        suffix = d.name.removeprefix("worker-")
        if d.is_dir() and suffix.isdigit() and int(suffix) >= workers:
            out.append(d)
    return out
