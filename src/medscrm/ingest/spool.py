"""A durable local spool: what the event API has acknowledged is on disk before the 200.

Requests append records; one writer thread gathers whatever is pending, writes it, and calls
``fsync`` once for the group (group commit), then completes every waiting request (coroutines
waiting on one event loop are woken together, with one cross-thread call per group). A separate
consumer (:mod:`medscrm.ingest.flusher`) reads from the last checkpoint, stores the records in the
database, and only then moves the checkpoint forward. After a crash (even ``kill -9``) the consumer
starts from the checkpoint again; records already stored are recognised by their message id.

Record framing: ``length (4 bytes, big-endian) ‖ crc32 (4 bytes) ‖ payload``. A torn tail (a crash
in the middle of a write, never acknowledged) fails the length/CRC check and is cut off on open.
A write that fails (full disk) is rolled back to the last good offset and reported to the callers,
who answer 503 so the client retries: nothing is acknowledged that is not on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import struct
import threading
import zlib
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

_HEADER = struct.Struct(">II")
SEGMENT_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, order=True)
class Position:
    segment: int
    offset: int


class SpoolFull(OSError):
    """The spool could not persist a record (e.g. the disk is full)."""


def _segment_name(n: int) -> str:
    return f"spool-{n:012d}.log"


_CLOSE = object()


class Spool:
    def __init__(self, directory: Path | str, *, segment_bytes: int = SEGMENT_BYTES, fsync: bool = True):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        # appends go through a C queue (no Python-level lock or condition on the request path)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._written = threading.Condition()
        segs = self.segments()
        self._seg = segs[-1] if segs else 1
        self._fh = open(self.dir / _segment_name(self._seg), "ab")  # noqa: SIM115
        self._repair_tail()
        self._end = Position(self._seg, self._fh.tell())
        self._thread = threading.Thread(target=self._writer, name="medscrm-spool-writer", daemon=True)
        self._thread.start()

    # -- layout ------------------------------------------------------------------------------
    def segments(self) -> list[int]:
        out = []
        for p in self.dir.glob("spool-*.log"):
            with contextlib.suppress(ValueError):
                out.append(int(p.stem.split("-")[1]))
        return sorted(out)

    def _repair_tail(self) -> None:
        """Cut a torn record at the end of the current segment (it was never acknowledged)."""
        path = self.dir / _segment_name(self._seg)
        good = 0
        with open(path, "rb") as fh:
            for _payload, end in _iter_file(fh, 0):
                good = end
        if good != path.stat().st_size:
            self._fh.truncate(good)
            self._fh.flush()
            os.fsync(self._fh.fileno())
        self._fh.seek(good)

    # -- writing -----------------------------------------------------------------------------
    def append(self, payloads: list[bytes]) -> Future:
        """Queue records; the future completes (with the end position) once they are on disk."""
        fut: Future = Future()
        if any(not p for p in payloads):
            fut.set_exception(ValueError("empty spool records are not allowed"))
        elif self._closed:
            fut.set_exception(SpoolFull("the spool is closed"))
        else:
            self._queue.put((payloads, fut))
        return fut

    def append_async(self, payloads: list[bytes]) -> asyncio.Future:
        """As :meth:`append`, for a coroutine: an asyncio future of the running loop. The writer
        completes all of a group's futures of one loop with a single wake-up of that loop."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        if any(not p for p in payloads):
            fut.set_exception(ValueError("empty spool records are not allowed"))
        elif self._closed:
            fut.set_exception(SpoolFull("the spool is closed"))
        else:
            self._queue.put((payloads, (loop, fut)))
        return fut

    def append_objects(self, objs: list[dict]) -> Future:
        return self.append([orjson.dumps(o) for o in objs])

    def _writer(self) -> None:
        q = self._queue
        closing = False
        while not closing:
            group = [q.get()]
            while True:
                try:
                    group.append(q.get_nowait())
                except queue.Empty:
                    break
            if _CLOSE in group:
                closing = True
                group = [g for g in group if g is not _CLOSE]
            if group:
                self._write_group(group)

    def _write_group(self, group: list[tuple[list[bytes], Any]]) -> None:
        start = self._fh.tell()
        try:
            buf = bytearray()
            for payloads, _ in group:
                for p in payloads:
                    buf += _HEADER.pack(len(p), zlib.crc32(p))
                    buf += p
            self._fh.write(buf)
            self._fh.flush()
            if self.fsync:
                os.fsync(self._fh.fileno())
        except OSError as exc:
            with contextlib.suppress(OSError):
                self._fh.truncate(start)
                self._fh.seek(start)
            _settle(group, None, SpoolFull(exc.errno, f"spool write failed: {exc.strerror or exc}"))
            return
        end = Position(self._seg, self._fh.tell())
        with self._written:
            self._end = end
            self._written.notify_all()
        _settle(group, end, None)
        if self._fh.tell() >= self.segment_bytes:
            self._rotate()

    def _rotate(self) -> None:
        self._fh.close()
        self._seg += 1
        self._fh = open(self.dir / _segment_name(self._seg), "ab")  # noqa: SIM115
        if self.fsync:
            fd = os.open(self.dir, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        with self._written:
            self._end = Position(self._seg, 0)
            self._written.notify_all()

    @property
    def end(self) -> Position:
        with self._written:
            return self._end

    def wait_for_data(self, after: Position, timeout: float) -> Position:
        """Block until the spool holds data past ``after`` (or the timeout); return the end."""
        with self._written:
            if self._end <= after:
                self._written.wait(timeout)
            return self._end

    def close(self) -> None:
        self._closed = True
        self._queue.put(_CLOSE)
        self._thread.join(timeout=10)
        late = []  # appended while closing: refused, never left waiting
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _CLOSE:
                late.append(item)
        _settle(late, None, SpoolFull("the spool is closed"))
        self._fh.close()

    # -- reading -----------------------------------------------------------------------------
    def read(
        self, start: Position, limit: int = 5000, *, max_bytes: int | None = None
    ) -> tuple[list[bytes], Position]:
        """Up to ``limit`` records after ``start`` (only what the writer has completed), and no
        more records once ``max_bytes`` of payload are gathered (at least one is always returned)."""
        end = self.end
        out: list[bytes] = []
        size = 0
        budget = max_bytes if max_bytes is not None else 1 << 62
        pos = start
        for seg in self.segments():
            if seg < pos.segment or seg > end.segment:
                continue
            offset = pos.offset if seg == pos.segment else 0
            stop = end.offset if seg == end.segment else None
            path = self.dir / _segment_name(seg)
            with open(path, "rb") as fh:
                for payload, rec_end in _iter_file(fh, offset, stop):
                    out.append(payload)
                    size += len(payload)
                    pos = Position(seg, rec_end)
                    if len(out) >= limit or size >= budget:
                        return out, pos
            if seg < end.segment:
                pos = Position(seg + 1, 0)
        return out, pos

    def drop_before(self, pos: Position) -> None:
        """Delete whole segments that lie before ``pos`` (already stored)."""
        for seg in self.segments():
            if seg < pos.segment and seg != self._seg:
                with contextlib.suppress(FileNotFoundError):
                    (self.dir / _segment_name(seg)).unlink()


def _settle(group: list[tuple[list[bytes], Any]], result: Position | None, exc: BaseException | None) -> None:
    """Complete the waiters of a written (or failed) group: thread futures directly, asyncio
    futures with one ``call_soon_threadsafe`` per event loop."""
    by_loop: dict[Any, list[asyncio.Future]] = {}
    for _, waiter in group:
        if isinstance(waiter, Future):
            if exc is None:
                waiter.set_result(result)
            else:
                waiter.set_exception(exc)
        else:
            by_loop.setdefault(waiter[0], []).append(waiter[1])
    for loop, futs in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
            loop.call_soon_threadsafe(_settle_loop, futs, result, exc)


def _settle_loop(futs: list[asyncio.Future], result: Position | None, exc: BaseException | None) -> None:
    for f in futs:
        if f.done():  # the request was cancelled (client went away)
            continue
        if exc is None:
            f.set_result(result)
        else:
            f.set_exception(exc)


def _iter_file(fh, offset: int, stop: int | None = None) -> Iterator[tuple[bytes, int]]:
    fh.seek(offset)
    pos = offset
    while stop is None or pos < stop:
        head = fh.read(_HEADER.size)
        if len(head) < _HEADER.size:
            return
        length, crc = _HEADER.unpack(head)
        if length == 0:  # never written (appends refuse empty records): zeros past the end
            return
        payload = fh.read(length)
        if len(payload) < length or zlib.crc32(payload) != crc:
            return
        pos += _HEADER.size + length
        yield payload, pos


class Checkpoint:
    """The position up to which spooled records are stored in the database (atomic file)."""

    def __init__(self, directory: Path | str):
        self.path = Path(directory) / "checkpoint.json"

    def load(self) -> Position:
        try:
            d = orjson.loads(self.path.read_bytes())
            return Position(int(d["segment"]), int(d["offset"]))
        except FileNotFoundError:
            return Position(1, 0)

    def save(self, pos: Position) -> None:
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            fh.write(orjson.dumps({"segment": pos.segment, "offset": pos.offset}))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
