"""L2 Redis with a real redis-server: compression, outages, reconnect, invalidation."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from perfect21.cache import LayeredCache, Level
from perfect21.cache.disk import DiskTier
from perfect21.cache.redis import RedisTier, redact_url

if TYPE_CHECKING:
    from tests.cache.conftest import RedisServer

pytestmark = pytest.mark.integration


async def test_large_values_are_compressed(redis_url: str) -> None:
    import redis.asyncio as aioredis

    tier = RedisTier(redis_url, compress_min=1024)
    await tier.set_many({"big": b"abc" * 10_000, "small": b"tiny"})
    raw = aioredis.Redis.from_url(redis_url)
    big, small = await raw.mget(["p21:big", "p21:small"])
    await raw.aclose()
    assert big[:1] == b"\x01" and len(big) < 1000
    assert small == b"\x00tiny"
    assert await tier.get("big") == b"abc" * 10_000
    await tier.aclose()


async def test_unreachable_redis_is_a_quiet_miss(
    dead_redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    tier = RedisTier(dead_redis_url, max_backoff_s=0.05)
    with caplog.at_level(logging.WARNING, "perfect21.cache"):
        for _ in range(5):
            await tier.set("k", b"v")
            assert await tier.get("k") is None
            await asyncio.sleep(0.06)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "unreachable" in warnings[0].getMessage()
    assert not tier.available and tier.errors >= 2
    await tier.aclose()


async def test_redis_killed_mid_run_then_back(
    own_redis: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Kill: every call still works, one warning, results kept locally. Restart: shared again."""
    caplog.set_level(logging.INFO, "perfect21.cache")
    cache = LayeredCache(
        l2=RedisTier(own_redis.url, max_backoff_s=0.2),
        l3=DiskTier(tmp_path / "a.sqlite"),
        namespace="t",
    )
    async with cache:
        await cache.set("before", "shared")
        own_redis.stop()
        for i in range(30):
            await cache.set(f"during{i}", i)
            assert await cache.get(f"during{i}") == i
            assert await cache.get("before") == "shared"
        cache.l1.clear()
        assert (await cache.lookup("during7")).level is Level.L3  # type: ignore[union-attr]
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "unreachable" in warnings[0].getMessage()

        own_redis.start()  # empty: no persistence
        await asyncio.sleep(0.5)  # longer than the backoff
        await cache.set("after", "shared again")
        assert any("is back" in r.getMessage() for r in caplog.records)
    other = LayeredCache(
        l2=RedisTier(own_redis.url), l3=DiskTier(tmp_path / "b.sqlite"), namespace="t"
    )
    async with other:
        hit = await other.lookup("after")
        assert hit is not None and hit.value == "shared again" and hit.level is Level.L2
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


_WATCHER = textwrap.dedent(
    """
    import asyncio, sys, time
    from perfect21.cache import LayeredCache
    from perfect21.cache.redis import RedisTier

    async def main():
        async with LayeredCache(l2=RedisTier(sys.argv[1]), namespace="t") as cache:
            assert await cache.get("k") == "v1"
            assert (await cache.lookup("k")).level.value == "l1"
            await asyncio.sleep(0.3)  # subscribed by now
            print("ready", flush=True)
            deadline = time.time() + 5
            while time.time() < deadline:
                hit = await cache.lookup("k")
                if hit.value != "v1":
                    print("changed", hit.level.value, time.time(), flush=True)
                    return
                await asyncio.sleep(0.005)
            print("stale", flush=True)

    asyncio.run(main())
    """
)


async def test_invalidation_reaches_another_process_within_a_second(redis_url: str) -> None:
    writer = LayeredCache(l2=RedisTier(redis_url), namespace="t")
    async with writer:
        await writer.set("k", "v1")
        proc = subprocess.Popen(
            [sys.executable, "-c", _WATCHER, redis_url], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        line = await asyncio.to_thread(proc.stdout.readline)
        assert line.strip() == "ready"
        written_at = time.time()
        await writer.set("k", "v2")
        line = await asyncio.to_thread(proc.stdout.readline)
        proc.communicate(timeout=10)
    word, level, seen_at = line.split()
    assert word == "changed" and level == "l2"
    assert float(seen_at) - written_at < 1.0


_WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from perfect21.cache.redis import RedisTier

    async def main():
        tier = RedisTier(sys.argv[1])
        value = sys.argv[2].encode() * 300_000
        for _ in range(30):
            await tier.set("same", value)
        await tier.aclose()

    asyncio.run(main())
    """
)


async def test_two_processes_writing_one_key(redis_url: str) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, redis_url, c]) for c in "AB"]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    tier = RedisTier(redis_url)
    assert await tier.get("same") in (b"A" * 300_000, b"B" * 300_000)
    await tier.aclose()


def test_redact_url() -> None:
    assert redact_url("redis://:secret@host:6379/0") == "redis://:***@host:6379/0"
    assert redact_url("redis://user:pw@host/1") == "redis://user:***@host/1"
    assert redact_url("redis://host:6379/0") == "redis://host:6379/0"


async def test_clearing_l1_tells_the_other_processes(redis_url: str) -> None:
    """`cache clear --level l1` semantics: every L1 on the same Redis drops its entries."""
    a = LayeredCache(l2=RedisTier(redis_url), namespace="t")
    b = LayeredCache(l2=RedisTier(redis_url), namespace="t")
    async with a, b:
        await a.set("k", "v")
        assert await b.get("k") == "v" and len(b.l1) == 1
        await asyncio.sleep(0.2)  # both subscribed
        await a.clear([Level.L1])
        deadline = time.monotonic() + 1.0
        while len(b.l1) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert len(b.l1) == 0
        assert await b.get("k") == "v"  # still in L2
