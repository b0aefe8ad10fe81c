"""The durable spool: torn tails are cut, full disks are refused (not acknowledged), and a restart
replays from the checkpoint."""

from __future__ import annotations

import os

import pytest

from medscrm.ingest.spool import Checkpoint, Position, Spool, SpoolFull


def test_append_read_and_restart(tmp_path):
    s = Spool(tmp_path)
    end = s.append([b"a", b"bb"]).result(5)
    s.append([b"ccc"]).result(5)
    recs, pos = s.read(Position(1, 0))
    assert recs == [b"a", b"bb", b"ccc"] and pos == s.end and end < pos
    recs2, _ = s.read(end)
    assert recs2 == [b"ccc"]
    s.close()
    s2 = Spool(tmp_path)  # reopen: everything still there, new records go after it
    s2.append([b"d"]).result(5)
    assert s2.read(Position(1, 0))[0] == [b"a", b"bb", b"ccc", b"d"]
    s2.close()


def test_torn_tail_is_cut_on_open(tmp_path):
    s = Spool(tmp_path)
    s.append([b"kept"]).result(5)
    s.close()
    seg = next(tmp_path.glob("spool-*.log"))
    with open(seg, "ab") as fh:  # a crash in the middle of a write: half a header and payload
        fh.write(b"\x00\x00\x00\x10\x12\x34partial")
    s = Spool(tmp_path)
    assert s.read(Position(1, 0))[0] == [b"kept"]
    s.append([b"after"]).result(5)
    assert s.read(Position(1, 0))[0] == [b"kept", b"after"]
    s.close()


def test_rotation_and_dropping_stored_segments(tmp_path):
    s = Spool(tmp_path, segment_bytes=64)
    for i in range(20):
        s.append([f"record-{i:03d}".encode()]).result(5)
    assert len(s.segments()) > 3
    recs, pos = s.read(Position(1, 0), limit=1000)
    assert [r.decode() for r in recs] == [f"record-{i:03d}" for i in range(20)]
    s.drop_before(pos)
    assert len(s.segments()) <= 2
    s.close()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_full_disk_is_refused_not_acknowledged(tmp_path):
    os.symlink("/dev/full", tmp_path / "spool-000000000001.log")  # a real device that answers ENOSPC
    s = Spool(tmp_path, fsync=False)
    fut = s.append([b"x" * 10_000])
    with pytest.raises(SpoolFull):
        fut.result(5)
    s.close()


def test_checkpoint_is_atomic(tmp_path):
    cp = Checkpoint(tmp_path)
    assert cp.load() == Position(1, 0)
    cp.save(Position(3, 1234))
    assert Checkpoint(tmp_path).load() == Position(3, 1234)
    assert not (tmp_path / "checkpoint.tmp").exists()


def test_append_async_completes_on_the_event_loop(tmp_path):
    import asyncio

    s = Spool(tmp_path)

    async def main() -> list:
        # many concurrent requests: group commits wake the loop once per group
        return await asyncio.gather(*[s.append_async([f"r{i}".encode()]) for i in range(200)])

    ends = asyncio.run(main())
    assert max(ends) == s.end and len(s.read(Position(1, 0), limit=1000)[0]) == 200
    s.close()

    async def after_close() -> None:
        await s.append_async([b"late"])

    with pytest.raises(SpoolFull):
        asyncio.run(after_close())


def test_read_stops_at_max_bytes(tmp_path):
    s = Spool(tmp_path)
    s.append([b"a" * 100, b"b" * 100, b"c" * 100]).result(5)
    recs, pos = s.read(Position(1, 0), max_bytes=150)
    assert recs == [b"a" * 100, b"b" * 100]  # stops once the budget is reached
    assert s.read(pos, max_bytes=1)[0] == [b"c" * 100]  # at least one record each time
    s.close()
