"""``perfect21 cache stats|warm|clear``: thin wrappers on :mod:`perfect21.cache`."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from perfect21.cli._common import add_command, config_from, echo, echo_json, int_range, subcommands

if TYPE_CHECKING:
    import argparse

__all__ = ["configure"]

_LEVELS = ("l1", "l2", "l3")


DESCRIPTION = """\
Inspect, warm and clear the layered cache (L1 memory, L2 Redis, L3 disk).

Examples:
  perfect21 cache stats
  perfect21 cache stats --format json
  perfect21 cache warm --limit 500
  perfect21 cache clear --level l3
  PERFECT21_REDIS_URL=redis://127.0.0.1:6379/0 perfect21 cache stats

L3 lives in <home>/cache/l3.sqlite; L2 is used when PERFECT21_REDIS_URL is set.
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    subs = subcommands(parser)
    p = add_command(subs, "stats", stats)
    p.add_argument("--format", dest="fmt", choices=("text", "json"), default="text",
                   help="[default: text]")
    p = add_command(subs, "warm", warm)
    p.add_argument("--namespace", default="task", help="Cache namespace. [default: task]")
    p.add_argument("--limit", type=int_range(1, 1_000_000), default=None, metavar="N",
                   help="How many of the most used keys (default: half of L1). [1<=x<=1000000]")
    p.add_argument("--format", dest="fmt", choices=("text", "json"), default="text")
    p = add_command(subs, "clear", clear)
    p.add_argument("--level", dest="levels", choices=_LEVELS, action="append", default=[],
                   help="Level to clear (repeatable); all levels by default.")
    p.add_argument("--format", dest="fmt", choices=("text", "json"), default="text")


def stats(fmt: str) -> None:
    """Entries, bytes and cumulative hit counts per level, and prefetch precision.

    Examples:
      perfect21 cache stats
      perfect21 cache stats --format json | jq .levels.l3

    Hit counts are cumulative over every process that used this home's cache.
    """
    report = asyncio.run(_stats())
    if fmt == "json":
        echo_json(report)
        return
    _print_stats(report)


async def _stats() -> dict[str, Any]:
    from perfect21.cache.disk import DiskTier
    from perfect21.cache.redis import RedisTier

    config = config_from()
    l3 = DiskTier(config.home / "cache" / "l3.sqlite", config.cache_l3_bytes)
    try:
        disk = await l3.info()
    finally:
        await l3.aclose()
    counters: dict[str, int] = disk.pop("counters", {}) or {}
    redis: dict[str, Any] = {"enabled": False}
    if config.redis_url:
        l2 = RedisTier(config.redis_url)
        try:
            redis = {"enabled": True, **await l2.info()}
        finally:
            await l2.aclose()
    requests = counters.get("requests", 0)
    hits = {level: counters.get(f"{level}_hits", 0) for level in _LEVELS}
    loaded = counters.get("prefetch_loaded", 0)
    return {
        "enabled": config.cache_enabled,
        "requests": requests,
        "hits": hits,
        "hit_ratio": round(sum(hits.values()) / requests, 6) if requests else 0.0,
        "computes": counters.get("computes", 0),
        "events": {
            name: counters.get(name, 0)
            for name in (
                "l1_evictions",
                "l2_outages",
                "l3_evictions",
                "l3_corrupt_entries",
                "l3_rebuilds",
            )
        },
        "prefetch": {
            "enabled": config.cache_prefetch,
            "loaded": loaded,
            "used": counters.get("prefetch_used", 0),
            "precision": round(counters.get("prefetch_used", 0) / loaded, 6) if loaded else 0.0,
        },
        "levels": {
            "l1": {
                "note": "in-process; lives as long as each run",
                "max_entries": config.cache_l1_entries,
                "max_bytes": config.cache_l1_bytes,
            },
            "l2": redis,
            "l3": {"enabled": True, **disk},
        },
    }


def _print_stats(r: dict[str, Any]) -> None:
    echo(
        f"cache {'enabled' if r['enabled'] else 'disabled'}; requests {r['requests']}, "
        f"hit ratio {r['hit_ratio']:.1%}, computed {r['computes']}"
    )
    hits = r["hits"]
    echo(f"hits by level: l1 {hits['l1']}, l2 {hits['l2']}, l3 {hits['l3']}")
    l1 = r["levels"]["l1"]
    echo(f"L1 memory: up to {l1['max_entries']} entries / {_size(l1['max_bytes'])} per process")
    l2 = r["levels"]["l2"]
    if not l2.get("enabled"):
        echo("L2 redis: off (set PERFECT21_REDIS_URL to share results)")
    elif l2.get("reachable"):
        more = "+" if l2.get("keys_truncated") else ""
        echo(
            f"L2 redis: {l2['url']}: {l2['keys']}{more} keys, server memory "
            f"{_size(l2['used_memory'])}"
        )
    else:
        echo(f"L2 redis: {l2['url']}: unreachable")
    l3 = r["levels"]["l3"]
    if not l3.get("available", True):
        echo(f"L3 disk: {l3['path']}: unavailable (see the warning above)")
    else:
        echo(
            f"L3 disk: {l3['path']}: {l3['entries']} entries, {_size(l3['bytes'])} of "
            f"{_size(l3['max_bytes'])}, {l3['stored_hits']} recorded hits"
        )
    ev = r["events"]
    echo(
        f"events: L1 evictions {ev['l1_evictions']}, Redis outages {ev['l2_outages']}, "
        f"L3 evictions {ev['l3_evictions']}, corrupt entries {ev['l3_corrupt_entries']}, "
        f"rebuilds {ev['l3_rebuilds']}"
    )
    p = r["prefetch"]
    state = "on" if p["enabled"] else "off"
    echo(
        f"prefetch ({state}): loaded {p['loaded']}, used {p['used']}, "
        f"precision {p['precision']:.1%}"
    )


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


def warm(namespace: str, limit: int | None, fmt: str) -> None:
    """Load L3's most used entries into memory and, with Redis, share them via L2.

    Examples:
      perfect21 cache warm
      perfect21 cache warm --limit 200 --format json

    Long-lived processes (perfect21 serve) warm their L1 this way at start-up; from the
    command line the useful effect is pushing this machine's hottest results to Redis.
    """
    from perfect21.cache.task_cache import VERSION

    started = time.perf_counter()
    loaded, to_l2 = asyncio.run(_warm(namespace, VERSION if namespace == "task" else 1, limit))
    result = {
        "namespace": namespace,
        "loaded": loaded,
        "shared_to_l2": to_l2,
        "seconds": round(time.perf_counter() - started, 3),
    }
    if fmt == "json":
        echo_json(result)
        return
    where = "L1 and L2" if to_l2 else "L1"
    echo(
        f"warmed {loaded} entries of '{namespace}' from L3 into {where} "
        f"in {result['seconds']:.2f} s"
    )


async def _warm(namespace: str, version: int, limit: int | None) -> tuple[int, bool]:
    from perfect21.cache.layered import open_cache

    config = config_from()
    async with open_cache(config, namespace=namespace, version=version) as layered:
        loaded = await layered.warm(limit, to_l2=True)
        return loaded, layered.l2 is not None


def clear(levels: list[str], fmt: str) -> None:
    """Remove cached entries from every level, or only the given ones.

    Examples:
      perfect21 cache clear
      perfect21 cache clear --level l3
      perfect21 cache clear --level l1 --level l2

    Clearing l1 tells every other process using the same Redis to drop its memory cache.
    """
    from perfect21.cache.base import Level

    chosen = [Level(x) for x in levels] or list(Level)
    removed = asyncio.run(_clear(chosen))
    if fmt == "json":
        echo_json({"removed": removed})
        return
    for level in chosen:
        name = level.value
        if name not in removed:
            echo(f"{name}: not configured")
        elif name == "l1":
            echo(
                "l1: cleared here; other processes told to drop theirs (via Redis)"
                if "l2_broadcast" in removed
                else "l1: nothing held by this process"
            )
        else:
            echo(f"{name}: removed {removed[name]} entries")


async def _clear(levels: list[Any]) -> dict[str, int]:
    from perfect21.cache.layered import open_cache

    config = config_from()
    async with open_cache(config) as layered:
        removed = await layered.clear(levels)
        if "l1" in removed and layered.l2 is not None:
            removed["l2_broadcast"] = 1
        return removed
