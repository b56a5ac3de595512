"""L2: Redis shared by every process, teammate and CI job that points at the same URL.

* redis-py's asyncio client, imported only when this tier is used (it costs ~200 ms).
* Batches use MGET and non-transactional pipelines; values above ``compress_min`` bytes are
  zlib-compressed when that makes them smaller (one header byte says which).
* Every write publishes the key on ``<prefix>invalidate``; :meth:`listen` delivers other
  processes' messages so they drop the key from their L1 (typically within milliseconds).
* Redis down or unreachable never reaches the caller: the operation answers "miss" / does
  nothing, ONE warning is logged for the outage, and the tier stays quiet (no network
  attempts) for a backoff that doubles up to ``max_backoff_s``; the first successful call
  after that logs "back" and sharing resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from perfect21._errors import ConfigError

__all__ = ["RedisTier", "redact_url"]

log = logging.getLogger("perfect21.cache")
T = TypeVar("T")

_RAW, _ZLIB = b"\x00", b"\x01"
_OFF_LOOP_BYTES = 256 * 1024
_SEP = "\x00"


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for logs and ``cache stats``)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def _pack(value: bytes, compress_min: int) -> bytes:
    if len(value) >= compress_min:
        packed = zlib.compress(value, 6)
        if len(packed) < len(value):
            return _ZLIB + packed
    return _RAW + value


async def _off_loop(fn: Callable[..., T], data: bytes, *args: Any) -> T:
    """Run (de)compression of large values in a thread so the event loop keeps moving."""
    if len(data) < _OFF_LOOP_BYTES:
        return fn(data, *args)
    return await asyncio.to_thread(fn, data, *args)


def _unpack(data: bytes) -> bytes | None:
    tag, body = data[:1], data[1:]
    if tag == _RAW:
        return body
    if tag == _ZLIB:
        try:
            return zlib.decompress(body)
        except zlib.error:
            return None
    return None


class RedisTier:
    """Bytes tier on Redis; see the module docstring for the failure behaviour."""

    def __init__(
        self,
        url: str,
        *,
        name: str = "l2",
        prefix: str = "p21:",
        compress_min: int = 1024,
        connect_timeout_s: float = 0.5,
        op_timeout_s: float = 2.0,
        max_backoff_s: float = 10.0,
    ) -> None:
        scheme = urlsplit(url).scheme
        if scheme not in ("redis", "rediss", "unix"):
            raise ConfigError(
                f"redis_url {redact_url(url)!r}: expected redis://host:port/db, "
                "rediss://… or unix:///path"
            )
        self.name = name
        self.url = url
        self.prefix = prefix
        self.channel = prefix + "invalidate"
        self.compress_min = compress_min
        self.connect_timeout_s = connect_timeout_s
        self.op_timeout_s = op_timeout_s
        self.max_backoff_s = max_backoff_s
        self.origin = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._down = False
        self._down_until = 0.0
        self._backoff = 0.0
        self._listener: asyncio.Task[None] | None = None
        self._closed = False
        self.errors = 0
        self.outages = 0
        self.corrupt_values = 0
        self.invalidations_sent = 0
        self.invalidations_received = 0

    @property
    def available(self) -> bool:
        """False while an outage is being waited out."""
        return not self._down

    # -- connection and failure handling ----------------------------------------------------
    def _make_client(self) -> Any:
        import redis.asyncio as aioredis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # No client-side retries: an outage must cost one fast failure, not seconds of retry.
        return aioredis.Redis.from_url(
            self.url,
            socket_connect_timeout=self.connect_timeout_s,
            socket_timeout=self.op_timeout_s,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )

    def _get_client(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = self._make_client()
            self._loop = loop
        return self._client

    def _mark_down(self, exc: BaseException) -> None:
        self._backoff = min(self.max_backoff_s, max(0.25, self._backoff * 2))
        self._down_until = max(self._down_until, time.monotonic() + self._backoff)
        if not self._down:
            self._down = True
            self.outages += 1
            log.warning(
                "redis %s unreachable (%s): cache continues with memory and disk, "
                "retrying in the background",
                redact_url(self.url),
                exc or type(exc).__name__,
            )

    def _mark_up(self) -> None:
        if self._down:
            log.info("redis %s is back: shared cache resumed", redact_url(self.url))
        self._down = False
        self._backoff = 0.0

    async def _call(self, op: Callable[[Any], Awaitable[T]], default: T) -> T:
        if self._closed or (self._down and time.monotonic() < self._down_until):
            return default
        try:
            from redis.exceptions import ConnectionError as RedisConnectionError
            from redis.exceptions import RedisError
            from redis.exceptions import TimeoutError as RedisTimeoutError
        except ImportError as exc:  # the optional client is missing: L2 is simply off
            self._down_until = float("inf")
            self._mark_down(exc)
            return default

        try:
            result = await op(self._get_client())
        except (TimeoutError, RedisConnectionError, RedisTimeoutError, OSError) as exc:
            self.errors += 1
            self._mark_down(exc)
            return default
        except RedisError as exc:
            self.errors += 1
            log.warning("redis %s: %s (treated as a miss)", redact_url(self.url), exc)
            return default
        self._mark_up()
        return result

    # -- tier API -------------------------------------------------------------------------
    async def get(self, key: str) -> bytes | None:
        return (await self.get_many([key])).get(key)

    async def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        if not keys:
            return {}
        names = [self.prefix + k for k in keys]

        async def op(client: Any) -> list[Any]:
            result: list[Any] = await client.mget(names)
            return result

        none: list[Any] = []
        raw = await self._call(op, default=none)
        found: dict[str, bytes] = {}
        for key, data in zip(keys, raw, strict=False):
            if data is None:
                continue
            value = await _off_loop(_unpack, bytes(data))
            if value is None:
                self.corrupt_values += 1
                continue
            found[key] = value
        return found

    async def set(self, key: str, value: bytes, *, ttl_s: float = 0.0) -> None:
        await self.set_many({key: value}, ttl_s=ttl_s)

    async def set_many(self, items: Mapping[str, bytes], *, ttl_s: float = 0.0) -> None:
        if not items:
            return
        px = int(ttl_s * 1000) if ttl_s > 0 else None
        if self._closed or (self._down and time.monotonic() < self._down_until):
            return  # do not spend CPU compressing for a Redis we will not call
        packed = {k: await _off_loop(_pack, bytes(v), self.compress_min) for k, v in items.items()}

        async def op(client: Any) -> None:
            pipe = client.pipeline(transaction=False)
            for key, value in packed.items():
                pipe.set(self.prefix + key, value, px=px)
            for key in items:
                pipe.publish(self.channel, f"{self.origin}{_SEP}set{_SEP}{key}")
            await pipe.execute()

        await self._call(op, default=None)
        self.invalidations_sent += len(items)

    async def delete(self, key: str) -> bool:
        async def op(client: Any) -> bool:
            pipe = client.pipeline(transaction=False)
            pipe.unlink(self.prefix + key)
            pipe.publish(self.channel, f"{self.origin}{_SEP}del{_SEP}{key}")
            removed, _ = await pipe.execute()
            return bool(removed)

        return await self._call(op, default=False)

    async def clear(self, prefix: str = "") -> int:
        """Remove our keys under ``prefix`` (SCAN + UNLINK) and tell other processes."""
        pattern = self._escape(self.prefix + prefix) + "*"

        async def op(client: Any) -> int:
            removed = 0
            batch: list[Any] = []
            async for name in client.scan_iter(match=pattern, count=1000):
                batch.append(name)
                if len(batch) >= 1000:
                    removed += await client.unlink(*batch)
                    batch = []
            if batch:
                removed += await client.unlink(*batch)
            await client.publish(self.channel, f"{self.origin}{_SEP}clear{_SEP}{prefix}")
            return removed

        return await self._call(op, default=0)

    async def publish_clear(self, prefix: str = "") -> None:
        """Ask every other process to drop its L1 entries under ``prefix``."""

        async def op(client: Any) -> None:
            await client.publish(self.channel, f"{self.origin}{_SEP}clear{_SEP}{prefix}")

        await self._call(op, default=None)

    @staticmethod
    def _escape(text: str) -> str:
        return "".join("\\" + c if c in "*?[]\\" else c for c in text)

    async def info(self, *, scan_limit: int = 100_000) -> dict[str, Any]:
        """Reachability, our key count (bounded SCAN) and server memory, for ``cache stats``."""

        async def op(client: Any) -> dict[str, Any]:
            count = 0
            async for _ in client.scan_iter(match=self._escape(self.prefix) + "*", count=1000):
                count += 1
                if count >= scan_limit:
                    break
            memory = await client.info("memory")
            return {
                "reachable": True,
                "keys": count,
                "keys_truncated": count >= scan_limit,
                "used_memory": int(memory.get("used_memory", 0)),
            }

        found = await self._call(op, default={"reachable": False})
        return {**self.stats(), **found}

    def stats(self) -> dict[str, Any]:
        return {
            "url": redact_url(self.url),
            "available": self.available,
            "errors": self.errors,
            "outages": self.outages,
            "corrupt_values": self.corrupt_values,
            "invalidations_sent": self.invalidations_sent,
            "invalidations_received": self.invalidations_received,
        }

    # -- invalidation listener ----------------------------------------------------------------
    def listen(self, callback: Callable[[str, str], None]) -> None:
        """Start (once) a background task calling ``callback(op, key)`` for other processes'
        writes: ``op`` is ``set``, ``del``, ``clear`` (key = prefix) or ``resync`` (after a
        reconnect, when messages may have been missed: drop everything)."""
        if self._listener is None or self._listener.done():
            self._listener = asyncio.get_running_loop().create_task(
                self._listen(callback), name="perfect21-cache-invalidation"
            )

    async def _listen(self, callback: Callable[[str, str], None]) -> None:
        try:
            from redis.exceptions import RedisError
        except ImportError:  # no client library: L2 is off, nothing to listen to
            return

        delay = 0.1
        first = True
        while not self._closed:
            client = None
            pubsub = None
            try:
                client = self._make_client()
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                await pubsub.subscribe(self.channel)
                if not first:
                    callback("resync", "")
                first = False
                delay = 0.1
                while not self._closed:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None:
                        self._deliver(message.get("data"), callback)
            except (TimeoutError, RedisError, OSError):
                first = False
                await asyncio.sleep(delay)
                delay = min(self.max_backoff_s, delay * 2)
            finally:
                await _quiet_close(pubsub, client)

    def _deliver(self, data: Any, callback: Callable[[str, str], None]) -> None:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
        parts = text.split(_SEP, 2)
        if len(parts) != 3 or parts[0] == self.origin:
            return
        self.invalidations_received += 1
        callback(parts[1], parts[2])

    async def aclose(self) -> None:
        self._closed = True
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None
        if self._client is not None and self._loop is asyncio.get_running_loop():
            await _quiet_close(None, self._client)
        self._client = None


async def _quiet_close(pubsub: Any, client: Any) -> None:
    for thing in (pubsub, client):
        if thing is None:
            continue
        with contextlib.suppress(Exception):
            await thing.aclose()
