"""The contract every cache tier fulfils, the value codec, and an in-memory tier for tests.

A tier stores ``bytes`` under ``str`` keys. Tiers never raise for I/O trouble (a cache must
not break a run): a tier that cannot reach its backend answers "miss" and logs. Misuse —
a value that cannot be serialised — raises :class:`~perfect21._errors.CacheError`.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any, Protocol, runtime_checkable

from perfect21._errors import CacheError

__all__ = ["CacheTier", "DictTier", "Level", "MemoryTier", "decode_value", "encode_value"]


class Level(str, Enum):
    """Where a value was found."""

    L1 = "l1"
    L2 = "l2"
    L3 = "l3"


@runtime_checkable
class CacheTier(Protocol):
    """A bytes store with TTLs; every method is safe to call when the backend is down."""

    name: str

    async def get(self, key: str) -> bytes | None: ...

    async def get_many(self, keys: Sequence[str]) -> dict[str, bytes]: ...

    async def set(self, key: str, value: bytes, *, ttl_s: float = 0.0) -> None: ...

    async def set_many(self, items: Mapping[str, bytes], *, ttl_s: float = 0.0) -> None: ...

    async def delete(self, key: str) -> bool: ...

    async def clear(self, prefix: str = "") -> int: ...

    def stats(self) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...


# -- codec -----------------------------------------------------------------------------------
# One tag byte: b"b" raw bytes, b"j" JSON text. JSON (not pickle) because L2 is shared with
# teammates and CI: unpickling someone else's bytes would run their code.
_RAW, _JSON = b"b", b"j"


def encode_value(key: str, value: Any) -> bytes:
    """Bytes for ``value`` (bytes, or JSON-serialisable data); CacheError names the key."""
    if isinstance(value, bytes | bytearray | memoryview):
        return _RAW + bytes(value)
    if value is None:
        raise CacheError(f"cache key {key!r}: None cannot be cached (it means 'miss')")
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise CacheError(
            f"cache key {key!r}: value of type {type(value).__name__} cannot be serialised "
            f"({exc}); cache bytes or JSON data"
        ) from None
    return _JSON + text.encode("utf-8")


def decode_value(data: bytes) -> Any:
    """Inverse of :func:`encode_value`; ValueError for bytes it did not produce."""
    tag, body = data[:1], data[1:]
    if tag == _RAW:
        return body
    if tag == _JSON:
        try:
            return json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"corrupt cached JSON: {exc}") from None
    raise ValueError(f"unknown cached value tag {tag!r}")


# -- in-memory tiers -------------------------------------------------------------------------
class DictTier:
    """A plain dict with TTLs, bounded in entries (oldest out first): the test double."""

    def __init__(self, name: str = "dict", *, max_entries: int = 100_000) -> None:
        self.name = name
        self.max_entries = max_entries
        self._data: OrderedDict[str, tuple[bytes, float]] = OrderedDict()

    def _live(self, key: str) -> bytes | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[1] and item[1] < time.monotonic():
            del self._data[key]
            return None
        return item[0]

    async def get(self, key: str) -> bytes | None:
        return self._live(key)

    async def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        found = {k: self._live(k) for k in keys}
        return {k: v for k, v in found.items() if v is not None}

    async def set(self, key: str, value: bytes, *, ttl_s: float = 0.0) -> None:
        self._data[key] = (bytes(value), time.monotonic() + ttl_s if ttl_s > 0 else 0.0)
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    async def set_many(self, items: Mapping[str, bytes], *, ttl_s: float = 0.0) -> None:
        for key, value in items.items():
            await self.set(key, value, ttl_s=ttl_s)

    async def delete(self, key: str) -> bool:
        return self._data.pop(key, None) is not None

    async def clear(self, prefix: str = "") -> int:
        doomed = [k for k in self._data if k.startswith(prefix)]
        for key in doomed:
            del self._data[key]
        return len(doomed)

    def stats(self) -> dict[str, Any]:
        return {"entries": len(self._data), "bytes": sum(len(v) for v, _ in self._data.values())}

    async def aclose(self) -> None:
        return None


class MemoryTier:
    """The L1 policy cache (:class:`~perfect21.cache.memory.MemoryCache`) as a bytes tier."""

    def __init__(self, max_entries: int = 10_000, max_bytes: int = 64 * 1024 * 1024) -> None:
        from perfect21.cache.memory import MemoryCache

        self.name = "memory"
        self.cache = MemoryCache(max_entries, max_bytes)

    async def get(self, key: str) -> bytes | None:
        value = self.cache.get(key)
        return value if isinstance(value, bytes) else None

    async def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        found = {k: self.cache.get(k) for k in keys}
        return {k: v for k, v in found.items() if isinstance(v, bytes)}

    async def set(self, key: str, value: bytes, *, ttl_s: float = 0.0) -> None:
        self.cache.set(key, bytes(value), size=len(value), ttl_s=ttl_s)

    async def set_many(self, items: Mapping[str, bytes], *, ttl_s: float = 0.0) -> None:
        for key, value in items.items():
            self.cache.set(key, bytes(value), size=len(value), ttl_s=ttl_s)

    async def delete(self, key: str) -> bool:
        return self.cache.delete(key)

    async def clear(self, prefix: str = "") -> int:
        doomed = [k for k in self.cache.key_list() if isinstance(k, str) and k.startswith(prefix)]
        for key in doomed:
            self.cache.delete(key)
        return len(doomed)

    def stats(self) -> dict[str, Any]:
        return {
            "entries": len(self.cache),
            "bytes": self.cache.bytes_used,
            **self.cache.stats.as_dict(),
        }

    async def aclose(self) -> None:
        return None
