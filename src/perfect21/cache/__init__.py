"""Layered cache: L1 memory (W-TinyLFU) ▸ L2 Redis (shared) ▸ L3 SQLite disk, with prefetch.

Importing this package is cheap: Redis and SQLite tiers are imported when they are built.

Example::

    async with open_cache(load_config(), namespace="plans") as cache:
        plan = await cache.get_or_compute(key, compute)
"""

from __future__ import annotations

from perfect21.cache.base import CacheTier, DictTier, Level, MemoryTier, decode_value, encode_value
from perfect21.cache.layered import Hit, LayeredCache, open_cache
from perfect21.cache.memory import MemoryCache
from perfect21.cache.predictive import MarkovPredictor, PredictorConfig
from perfect21.cache.stats import CacheStats

__all__ = [
    "CacheStats",
    "CacheTier",
    "DictTier",
    "Hit",
    "LayeredCache",
    "Level",
    "MarkovPredictor",
    "MemoryCache",
    "MemoryTier",
    "PredictorConfig",
    "decode_value",
    "encode_value",
    "open_cache",
]
