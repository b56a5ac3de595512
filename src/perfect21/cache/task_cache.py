"""The executor's task-result cache, backed by the layered cache (L1 ▸ L2 Redis ▸ L3 disk).

``perfect21 run`` calls :func:`open_task_cache` when this module is importable; the executor
talks to the result through the :class:`~perfect21.executor.cache_hook.TaskCache` protocol
(``get``/``put``) and reads ``source_of_last_hit`` to record which level served a hit.
"""

from __future__ import annotations

import contextvars
import logging
import uuid
from typing import TYPE_CHECKING

from perfect21._errors import CacheError
from perfect21.cache.layered import LayeredCache, open_cache
from perfect21.executor.cache_hook import CachedTaskResult

if TYPE_CHECKING:
    from perfect21._config import Config

__all__ = ["NAMESPACE", "VERSION", "LayeredTaskCache", "open_task_cache"]

log = logging.getLogger("perfect21.cache")

NAMESPACE = "task"
# Bump when CachedTaskResult's byte format changes: old entries become unreachable.
VERSION = 1

_last_level: contextvars.ContextVar[str] = contextvars.ContextVar(
    "p21_task_cache_level", default=""
)


class LayeredTaskCache:
    """:class:`~perfect21.executor.cache_hook.TaskCache` on a :class:`LayeredCache`.

    The level of the last hit is kept per asyncio task (a context variable), so tasks that
    run in parallel each read their own. The reads of one adapter form one prefetch session:
    a re-run asks for the same results in the same order, and the predictor learns that.
    """

    def __init__(self, cache: LayeredCache) -> None:
        self.cache = cache
        self.session = uuid.uuid4().hex

    @property
    def source_of_last_hit(self) -> str:
        return _last_level.get()

    async def get(self, key: str) -> CachedTaskResult | None:
        hit = await self.cache.lookup(key, session=self.session)
        if hit is None or not isinstance(hit.value, bytes):
            _last_level.set("")
            return None
        try:
            result = CachedTaskResult.from_bytes(hit.value)
        except CacheError as exc:
            log.warning("task cache: entry %s is unreadable (%s); dropped", key, exc)
            await self.cache.delete(key)
            _last_level.set("")
            return None
        _last_level.set(hit.level.value)
        return result

    async def put(self, key: str, value: CachedTaskResult) -> None:
        await self.cache.set(key, value.to_bytes())

    async def aclose(self) -> None:
        await self.cache.aclose()


def open_task_cache(config: Config) -> LayeredTaskCache:
    """L1 + L2 (when ``config.redis_url``) + L3 at ``config.home / "cache"``."""
    return LayeredTaskCache(open_cache(config, namespace=NAMESPACE, version=VERSION))
