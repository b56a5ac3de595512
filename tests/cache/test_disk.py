"""L3 disk tier: persistence, byte bound, corruption (entry and file), two writers."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from perfect21.cache.disk import DiskTier


async def test_survives_a_restart(tmp_path: Path) -> None:
    first = DiskTier(tmp_path / "l3.sqlite")
    await first.set("k", b"value")
    await first.aclose()
    second = DiskTier(tmp_path / "l3.sqlite")
    assert await second.get("k") == b"value"
    await second.aclose()


async def test_bounded_in_bytes_least_recently_used_first(tmp_path: Path) -> None:
    tier = DiskTier(tmp_path / "l3.sqlite", max_bytes=10_000)
    await tier.set_many({f"old{i}": b"x" * 500 for i in range(10)})
    await tier.get("old0")  # read: recently used now
    await tier.aclose()  # flushes the access time
    tier = DiskTier(tmp_path / "l3.sqlite", max_bytes=10_000)
    for i in range(15):
        await tier.set(f"new{i}", b"y" * 500)
    info = await tier.info()
    assert info["bytes"] <= 10_000 and info["evictions"] > 0
    assert await tier.get("old0") == b"x" * 500
    assert await tier.get("old1") is None
    assert await tier.get("new14") == b"y" * 500
    await tier.aclose()


async def test_corrupt_entry_is_dropped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "l3.sqlite"
    tier = DiskTier(path)
    await tier.set_many({"good": b"fine", "bad": b"original"})
    await tier.aclose()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE entries SET value = ? WHERE key = 'bad'", (b"tampered",))
    tier = DiskTier(path)
    with caplog.at_level(logging.WARNING, "perfect21.cache"):
        assert await tier.get("bad") is None
    assert "'bad' is corrupt" in caplog.text
    assert await tier.get("good") == b"fine"
    assert tier.stats()["corrupt_entries"] == 1
    assert (await tier.info())["entries"] == 1
    await tier.aclose()


@pytest.mark.parametrize("where", ["header", "pages"])
async def test_corrupt_file_is_rebuilt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    """Overwritten bytes: the file is moved aside, a new one is built, the run goes on."""
    path = tmp_path / "l3.sqlite"
    tier = DiskTier(path)
    await tier.set_many({f"k{i}": b"v" * 3000 for i in range(40)})
    await tier.aclose()
    data = bytearray(path.read_bytes())
    if where == "header":
        data[0:100] = b"\xff" * 100
    else:
        data[4096 : len(data) - 4096] = b"\x5a" * (len(data) - 8192)
    path.write_bytes(bytes(data))
    tier = DiskTier(path)
    with caplog.at_level(logging.WARNING, "perfect21.cache"):
        assert await tier.get("k1") is None
    assert "was corrupt" in caplog.text and "rebuilt" in caplog.text
    assert (tmp_path / "l3.sqlite.corrupt").exists()
    await tier.set("after", b"works")
    assert await tier.get("after") == b"works"
    assert tier.stats()["rebuilds"] == 1
    await tier.aclose()


async def test_unusable_location_is_a_miss_not_a_crash(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache folder should be")
    tier = DiskTier(blocker / "l3.sqlite")
    with caplog.at_level(logging.WARNING, "perfect21.cache"):
        await tier.set("k", b"v")
        assert await tier.get("k") is None
        assert await tier.get("k") is None
    assert caplog.text.count("treated as a miss") == 1  # warned once
    assert tier.stats()["errors"] >= 2
    await tier.aclose()


async def test_most_used_orders_by_hits(tmp_path: Path) -> None:
    tier = DiskTier(tmp_path / "l3.sqlite")
    await tier.set_many({"ns/a": b"1", "ns/b": b"2", "ns/c": b"3", "other/x": b"4"})
    for key, reads in (("ns/a", 1), ("ns/b", 5), ("other/x", 9)):
        for _ in range(reads):
            await tier.get(key)
    assert (await tier.most_used("ns/", 10))[:2] == [("ns/b", 5), ("ns/a", 1)]
    assert [k for k, _ in await tier.most_used("ns/", 10)] == ["ns/b", "ns/a", "ns/c"]
    await tier.aclose()


_WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from perfect21.cache.disk import DiskTier

    async def main():
        tier = DiskTier(sys.argv[1])
        value = sys.argv[2].encode() * 200_000
        for _ in range(40):
            await tier.set("same", value)
        await tier.aclose()

    asyncio.run(main())
    """
)


async def test_two_processes_writing_one_key(tmp_path: Path) -> None:
    """Both write 200 kB values to one key at once: one whole value wins, never a mix."""
    path = tmp_path / "l3.sqlite"
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(path), letter])
        for letter in ("A", "B")
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    tier = DiskTier(path)
    value = await tier.get("same")
    assert value in (b"A" * 200_000, b"B" * 200_000)
    assert tier.stats()["corrupt_entries"] == 0
    await tier.aclose()
