"""One contract, every tier: dict (test double), memory (L1), disk (L3), Redis (L2)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from perfect21.cache.base import CacheTier, DictTier, MemoryTier
from perfect21.cache.disk import DiskTier

TIERS = ["dict", "memory", "disk", pytest.param("redis", marks=pytest.mark.integration)]


@pytest.fixture(params=TIERS)
async def tier(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CacheTier]:
    made: CacheTier
    if request.param == "dict":
        made = DictTier()
    elif request.param == "memory":
        made = MemoryTier()
    elif request.param == "disk":
        made = DiskTier(tmp_path / "l3.sqlite")
    else:
        from perfect21.cache.redis import RedisTier

        made = RedisTier(request.getfixturevalue("redis_url"))
    assert isinstance(made, CacheTier)
    yield made
    await made.aclose()


async def test_set_get_delete(tier: CacheTier) -> None:
    assert await tier.get("a") is None
    await tier.set("a", b"1")
    assert await tier.get("a") == b"1"
    await tier.set("a", b"2")
    assert await tier.get("a") == b"2"
    assert await tier.delete("a")
    assert await tier.get("a") is None
    assert not await tier.delete("a")


async def test_binary_and_large_values_round_trip(tier: CacheTier) -> None:
    blob = bytes(range(256)) * 4096  # 1 MiB, compressible
    noise = bytes((i * 7919 + 13) % 251 for i in range(50_000))
    await tier.set_many({"blob": blob, "noise": noise, "empty": b""})
    assert await tier.get("blob") == blob
    assert await tier.get("noise") == noise
    assert await tier.get("empty") == b""


async def test_get_many_returns_only_found(tier: CacheTier) -> None:
    await tier.set_many({f"k{i}": str(i).encode() for i in range(20)})
    found = await tier.get_many([f"k{i}" for i in range(0, 40, 2)])
    assert found == {f"k{i}": str(i).encode() for i in range(0, 20, 2)}
    assert await tier.get_many([]) == {}


async def test_clear_by_prefix(tier: CacheTier) -> None:
    await tier.set_many({"ns1/a": b"1", "ns1/b": b"2", "ns2/a": b"3"})
    assert await tier.clear("ns1/") == 2
    assert await tier.get("ns1/a") is None and await tier.get("ns2/a") == b"3"
    assert await tier.clear() >= 1
    assert await tier.get("ns2/a") is None


async def test_ttl_expires(tier: CacheTier) -> None:
    await tier.set("short", b"x", ttl_s=0.15)
    await tier.set("long", b"y", ttl_s=60)
    assert await tier.get("short") == b"x"
    await asyncio.sleep(0.3)
    assert await tier.get("short") is None
    assert await tier.get("long") == b"y"


async def test_stats_is_a_dict(tier: CacheTier) -> None:
    await tier.set("a", b"1")
    assert isinstance(tier.stats(), dict)
