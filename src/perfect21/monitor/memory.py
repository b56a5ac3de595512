"""The memory guard: sample RSS in the background, clean up at the soft limit, shed new work
at the hard limit, and never kill work that is already running.

::

    guard = MemoryGuard.from_config(config)
    guard.register_cleanup(plan_cache.clear)
    with guard:                                  # starts / stops the sampling thread
        await guard.wait_for_capacity()          # the executor, before taking a new task
        guard.check_capacity()                   # the API, before accepting a request (503)

Policy (pure, :func:`decide`): above the soft limit the registered clean-up callbacks run and
``gc.collect()`` is called, at most once per cool-down, and an alert is emitted when the soft
limit is first crossed. A clean-up whose callbacks had nothing to free (all returned 0) and
left RSS above the soft limit doubles the cool-down (up to a minute); callbacks that return
nothing count as having freed something. Each round also calls glibc's ``malloc_trim``.
Above the hard limit (measured *after* the clean-up) the guard stops accepting new work
until RSS is back under the soft limit (hysteresis, so it does not flap), or until a clean-up
run while shedding brings it under the hard limit (memory the OS does not get back must not
stop new work forever). While shedding, and in the top quarter of the band between the limits,
clean-ups run at the base cool-down.

Everything it keeps is bounded: the last ``window`` samples for the growth rate and the last
``max_events`` events. psutil is imported on the first sample, not at import.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from perfect21._errors import CapacityError, ValidationError

if TYPE_CHECKING:
    from perfect21._config import Config
    from perfect21.monitor.kpi import Registry

__all__ = [
    "Decision",
    "MemoryEvent",
    "MemoryEventKind",
    "MemoryGuard",
    "MemoryStats",
    "decide",
    "growth_mb_per_hour",
    "limits_for",
    "parse_memory_limit",
    "rss_mb",
]

log = logging.getLogger("perfect21.monitor.memory")

MIB = 1024 * 1024


class MemoryEventKind(str, Enum):
    SOFT_LIMIT = "soft_limit"  # crossed the soft limit: clean-up ran
    HARD_LIMIT = "hard_limit"  # crossed the hard limit: shedding new work
    RECOVERED = "recovered"  # back under the soft limit: accepting again


@dataclass(frozen=True, slots=True)
class MemoryEvent:
    kind: MemoryEventKind
    rss_mb: float
    limit_mb: float
    at: float  # wall-clock time
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "rss_mb": round(self.rss_mb, 2),
            "limit_mb": self.limit_mb,
            "at": self.at,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class MemoryStats:
    current_mb: float
    peak_mb: float
    growth_mb_per_hour: float
    soft_limit_mb: float
    hard_limit_mb: float
    accepting: bool
    samples: int
    cleanups: int
    refused: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "current_mb": round(self.current_mb, 2),
            "peak_mb": round(self.peak_mb, 2),
            "growth_mb_per_hour": round(self.growth_mb_per_hour, 3),
            "soft_limit_mb": self.soft_limit_mb,
            "hard_limit_mb": self.hard_limit_mb,
            "accepting": self.accepting,
            "samples": self.samples,
            "cleanups": self.cleanups,
            "refused": self.refused,
        }


@dataclass(frozen=True, slots=True)
class Decision:
    """What the guard should do after one sample."""

    cleanup: bool
    accepting: bool


def decide(
    rss: float,
    *,
    soft: float,
    hard: float,
    accepting: bool,
    cleanup_due: bool,
    cleaned: bool = False,
) -> Decision:
    """The guard's policy, without I/O.

    ``cleanup_due`` is False while the clean-up cool-down runs. Shedding starts above
    ``hard`` and ends at or below ``soft`` — or at or below ``hard`` right after a clean-up
    (``cleaned``): memory that a clean-up cannot give back to the OS is not relieved by
    refusing work, and waiting for it would stop all new work forever.
    """
    cleanup = rss > soft and cleanup_due
    if rss > hard:
        return Decision(cleanup, False)
    if rss <= soft or cleaned:
        return Decision(cleanup, True)
    return Decision(cleanup, accepting)


GROWTH_MIN_SPAN_S = 60.0


def _malloc_trim() -> None:
    """Ask glibc to give free heap pages back to the OS (no-op elsewhere).

    Large freed blocks stay in glibc's heap otherwise; in the soak this lowered RSS after a
    clean-up from 143 to 118 MiB.
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return
    trim(0)


def growth_mb_per_hour(
    samples: Iterable[tuple[float, float]], *, min_span_s: float = GROWTH_MIN_SPAN_S
) -> float:
    """Least-squares slope of ``(monotonic seconds, MiB)`` samples, in MiB per hour.

    0 until the samples span ``min_span_s``: the first seconds of a process (imports, caches
    warming) would extrapolate to absurd hourly rates.
    """
    samples = list(samples)
    n = len(samples)
    if n < 2 or samples[-1][0] - samples[0][0] < min_span_s:
        return 0.0
    mean_t = sum(t for t, _ in samples) / n
    mean_m = sum(m for _, m in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    if var <= 0:
        return 0.0
    cov = sum((t - mean_t) * (m - mean_m) for t, m in samples)
    return cov / var * 3600.0


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1.0, "k": 1 / 1024, "m": 1.0, "g": 1024.0, "t": 1024.0 * 1024.0}


def parse_memory_limit(text: str) -> float:
    """``"300MB"``, ``"1.5GB"``, ``"512M"``, ``"800MiB"``, ``"300"`` → MiB (binary units).

    A bare number means MiB. Raises :class:`ValidationError` on anything else.
    """
    match = _SIZE.match(str(text))
    unit = (match.group(2) or "").lower() if match else ""
    if not match or (unit and unit[0] not in _UNITS) or unit == "b":
        raise ValidationError(
            f"invalid memory limit {text!r}: expected a size like 300MB, 1.5GB or 512M"
        )
    value = float(match.group(1)) * _UNITS[unit[:1]]
    if value <= 0:
        raise ValidationError(f"invalid memory limit {text!r}: must be greater than zero")
    return value


def limits_for(limit_mb: float) -> tuple[float, float]:
    """``(soft, hard)`` for a single ``--memory-limit``: hard = the limit, soft = 90 % of it."""
    return (round(limit_mb * 0.9, 3), float(limit_mb))


def rss_mb() -> float:
    """Resident set size of this process in MiB (psutil, imported here)."""
    import psutil

    return float(psutil.Process().memory_info().rss) / MIB


class MemoryGuard:
    """Background RSS sampling with soft/hard limits; see the module docstring."""

    def __init__(
        self,
        *,
        soft_limit_mb: float = 450.0,
        hard_limit_mb: float = 500.0,
        interval_s: float = 1.0,
        sampler: Callable[[], float] = rss_mb,
        registry: Registry | None = None,
        on_event: Callable[[MemoryEvent], None] | None = None,
        cleanup_cooldown_s: float | None = None,
        window: int = 720,
        max_events: int = 256,
        max_cleanups: int = 64,
    ) -> None:
        if not 0 < soft_limit_mb <= hard_limit_mb:
            raise ValidationError(
                f"memory limits: need 0 < soft ({soft_limit_mb}) <= hard ({hard_limit_mb})"
            )
        if interval_s <= 0:
            raise ValidationError(f"memory sample interval must be > 0, got {interval_s}")
        self.soft_limit_mb = float(soft_limit_mb)
        self.hard_limit_mb = float(hard_limit_mb)
        self.interval_s = float(interval_s)
        self._sampler = sampler
        self._registry = registry
        self.on_event = on_event
        self._base_cooldown = 5 * interval_s if cleanup_cooldown_s is None else cleanup_cooldown_s
        self._cooldown = self._base_cooldown
        self._max_cooldown = max(self._base_cooldown, 60.0)
        self._max_cleanups = max_cleanups
        self._lock = threading.RLock()  # serialises samples; callbacks may read stats()
        self._count_lock = threading.Lock()  # refusals are counted without waiting for a sample
        self._cleanups: list[Callable[[], object]] = []
        self._history: collections.deque[tuple[float, float]] = collections.deque(maxlen=window)
        self.events: collections.deque[MemoryEvent] = collections.deque(maxlen=max_events)
        self._accepting = threading.Event()
        self._accepting.set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._current = 0.0
        self._peak = 0.0
        self._samples = 0
        self._cleanup_rounds = 0
        self._refused = 0
        self._last_cleanup = float("-inf")
        self._over_soft = False

    @classmethod
    def from_config(cls, config: Config, **kwargs: Any) -> MemoryGuard:
        """A guard with the configured limits, reporting to the process-wide KPI registry."""
        if "registry" not in kwargs:
            from perfect21.monitor.kpi import default_registry

            kwargs["registry"] = default_registry()
        return cls(
            soft_limit_mb=config.memory_soft_limit_mb,
            hard_limit_mb=config.memory_hard_limit_mb,
            interval_s=config.memory_sample_interval_s,
            **kwargs,
        )

    @classmethod
    def for_limit(cls, config: Config, limit_mb: float | None, **kwargs: Any) -> MemoryGuard:
        """A guard for ``--memory-limit``: hard = the limit, soft = 90 % (config if None)."""
        if limit_mb is None:
            return cls.from_config(config, **kwargs)
        soft, hard = limits_for(limit_mb)
        return cls.from_config(
            config.replace(memory_soft_limit_mb=soft, memory_hard_limit_mb=hard), **kwargs
        )

    # -- clean-up callbacks ------------------------------------------------------------------
    def register_cleanup(self, callback: Callable[[], object]) -> Callable[[], None]:
        """Run ``callback`` when memory crosses the soft limit; returns an unregister function.

        Callbacks must be quick and thread-safe (they run on the sampling thread). One may
        return how many items it freed (0 = nothing to free); at most ``max_cleanups``.
        """
        with self._lock:
            if len(self._cleanups) >= self._max_cleanups:
                raise ValidationError(f"at most {self._max_cleanups} clean-up callbacks")
            self._cleanups.append(callback)

        def unregister() -> None:
            with self._lock:
                if callback in self._cleanups:
                    self._cleanups.remove(callback)

        return unregister

    # -- admission ---------------------------------------------------------------------------
    @property
    def accepting(self) -> bool:
        """False from when RSS goes over the hard limit until it is back under the soft one
        (or a clean-up leaves it under the hard one)."""
        return self._accepting.is_set()

    def check_capacity(self) -> None:
        """Raise :class:`CapacityError` when new work must be refused (the API answers 503)."""
        if not self._accepting.is_set():
            with self._count_lock:
                self._refused += 1
            if self._registry is not None:
                self._registry.inc("memory_refused_total")
            raise CapacityError(
                f"memory {self._current:.0f} MiB is over the hard limit "
                f"({self.hard_limit_mb:.0f} MiB); new work is refused until it is back under "
                f"{self.soft_limit_mb:.0f} MiB"
            )

    async def wait_for_capacity(self, timeout: float | None = None) -> None:
        """Wait (without blocking the loop) until the guard accepts new work.

        When the sampling thread is not running, this samples by itself so that it cannot
        wait forever. Raises :class:`CapacityError` after ``timeout`` seconds.
        """
        if self._accepting.is_set():
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        poll = min(self.interval_s, 0.05)
        while not self._accepting.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                self.check_capacity()
            if not self.running:
                self.sample()
                if self._accepting.is_set():
                    return
            await asyncio.sleep(poll)

    # -- sampling ----------------------------------------------------------------------------
    def sample(self) -> float:
        """Take one sample now and apply the policy; returns RSS in MiB (after any clean-up)."""
        with self._lock:
            return self._sample_locked()

    def _sample_locked(self) -> float:
        rss = self._record(self._sampler())
        now = time.monotonic()
        shedding = not self._accepting.is_set()
        # Near or above the hard limit (or while shedding) the back-off does not apply: the
        # top quarter of the soft..hard band cleans at the base cool-down, so memory is
        # cleaned before it reaches the hard limit between two samples.
        near_hard = self.soft_limit_mb + 0.75 * (self.hard_limit_mb - self.soft_limit_mb)
        pressing = shedding or rss > near_hard
        cooldown = self._base_cooldown if pressing else self._cooldown
        decision = decide(
            rss,
            soft=self.soft_limit_mb,
            hard=self.hard_limit_mb,
            accepting=not shedding,
            cleanup_due=now - self._last_cleanup >= cooldown,
        )
        crossed_soft = rss > self.soft_limit_mb and not self._over_soft
        ran = decision.cleanup
        if ran:
            self._last_cleanup = now
            freed = self._run_cleanups()
            rss = self._record(self._sampler())
            decision = decide(
                rss,
                soft=self.soft_limit_mb,
                hard=self.hard_limit_mb,
                accepting=not shedding,
                cleanup_due=False,
                cleaned=True,
            )
            # When the callbacks had nothing left to free and RSS is still above soft (Python
            # does not always give freed memory back to the OS), wait longer before the next
            # round (doubling, up to a minute) instead of running them for nothing. Caches
            # that refill between rounds are cleared at the base cool-down: that is what
            # keeps a process under a tight limit.
            if rss > self.soft_limit_mb and not freed:
                self._cooldown = min(self._cooldown * 2, self._max_cooldown)
        if rss <= self.soft_limit_mb:
            self._cooldown = self._base_cooldown
        if crossed_soft:
            did = "clean-up ran" if ran else "no clean-up due yet"
            self._emit(
                MemoryEventKind.SOFT_LIMIT,
                rss,
                self.soft_limit_mb,
                f"memory crossed the soft limit ({self.soft_limit_mb:.0f} MiB); "
                f"{did}, now {rss:.1f} MiB",
            )
        self._over_soft = rss > self.soft_limit_mb
        if not shedding and not decision.accepting:
            self._accepting.clear()
            self._emit(
                MemoryEventKind.HARD_LIMIT,
                rss,
                self.hard_limit_mb,
                f"memory {rss:.1f} MiB is over the hard limit ({self.hard_limit_mb:.0f} MiB); "
                "new work is refused, running work continues",
            )
        elif shedding and decision.accepting:
            self._accepting.set()
            where = "soft" if rss <= self.soft_limit_mb else "hard (after a clean-up)"
            self._emit(
                MemoryEventKind.RECOVERED,
                rss,
                self.soft_limit_mb,
                f"memory {rss:.1f} MiB is back under the {where} limit; accepting new work",
            )
        if self._registry is not None:
            self._registry.set("memory_accepting", 1.0 if decision.accepting else 0.0)
        return rss

    def _record(self, rss: float) -> float:
        self._current = rss
        self._peak = max(self._peak, rss)
        self._samples += 1
        self._history.append((time.monotonic(), rss))
        if self._registry is not None:
            self._registry.set("memory_rss_mb", rss)
            self._registry.set("memory_peak_mb", self._peak)
            self._registry.set("memory_growth_mb_per_hour", growth_mb_per_hour(self._history))
            self._registry.set("memory_soft_limit_mb", self.soft_limit_mb)
            self._registry.set("memory_hard_limit_mb", self.hard_limit_mb)
        return rss

    def cleanup_now(self) -> float:
        """Run the clean-up callbacks and ``gc.collect()`` now; returns RSS (MiB) afterwards."""
        with self._lock:
            self._last_cleanup = time.monotonic()
            self._run_cleanups()
            return self._record(self._sampler())

    def _run_cleanups(self) -> bool:
        """Run every callback, ``gc.collect()`` and ``malloc_trim``; False when every callback
        said it had nothing to free (returned 0 or False)."""
        freed_something = False  # gc alone does not count: back off if that is all there is
        for callback in list(self._cleanups):
            try:
                result = callback()
            except Exception:  # a broken callback must not stop the guard or the others
                log.exception("memory clean-up callback %r failed", callback)
                continue
            # None means "did not say": count it as having freed something.
            if result is None or (not isinstance(result, bool | int) or result > 0):
                freed_something = True
        gc.collect()
        _malloc_trim()
        self._cleanup_rounds += 1
        if self._registry is not None:
            self._registry.inc("memory_cleanups_total")
        return freed_something

    def _emit(self, kind: MemoryEventKind, rss: float, limit: float, message: str) -> None:
        event = MemoryEvent(kind, rss, limit, time.time(), message)
        self.events.append(event)
        log.warning("%s", message)
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:
                log.exception("memory event handler failed")

    # -- statistics --------------------------------------------------------------------------
    def stats(self) -> MemoryStats:
        with self._lock:
            return MemoryStats(
                current_mb=self._current,
                peak_mb=self._peak,
                growth_mb_per_hour=growth_mb_per_hour(self._history),
                soft_limit_mb=self.soft_limit_mb,
                hard_limit_mb=self.hard_limit_mb,
                accepting=self._accepting.is_set(),
                samples=self._samples,
                cleanups=self._cleanup_rounds,
                refused=self._refused,
            )

    # -- background thread -------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> MemoryGuard:
        if self.running:
            return self
        self._stop.clear()
        self.sample()
        self._thread = threading.Thread(
            target=self._loop, name="perfect21-memory-guard", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(1.0, 2 * self.interval_s))
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sample()
            except Exception:  # keep sampling; one failed sample is not fatal
                log.exception("memory sample failed")

    def __enter__(self) -> MemoryGuard:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
