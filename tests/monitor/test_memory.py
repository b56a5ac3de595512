"""The memory guard: limit parsing, the pure policy, and the guard with fake and real RSS."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable

import pytest

from perfect21._errors import CapacityError, ValidationError
from perfect21.monitor.kpi import Registry
from perfect21.monitor.memory import (
    MemoryEvent,
    MemoryEventKind,
    MemoryGuard,
    decide,
    growth_mb_per_hour,
    limits_for,
    parse_memory_limit,
    rss_mb,
)

MIB = 1024 * 1024


@pytest.mark.parametrize(
    ("text", "mib"),
    [("300MB", 300), ("1.5GB", 1536), ("512M", 512), ("800MiB", 800), ("300", 300),
     ("2g", 2048), ("1024KB", 1), (" 80 MB ", 80)],
)  # fmt: skip
def test_parse_memory_limit(text: str, mib: float) -> None:
    """Sizes in the usual spellings become MiB."""
    assert parse_memory_limit(text) == pytest.approx(mib)


@pytest.mark.parametrize("text", ["", "MB", "-5MB", "0", "12XB", "1.2.3GB", "10 bytes", "5B"])
def test_parse_memory_limit_rejects(text: str) -> None:
    """Anything else is a ValidationError that says what is expected."""
    with pytest.raises(ValidationError, match="memory limit"):
        parse_memory_limit(text)


def test_limits_for_one_number() -> None:
    assert limits_for(100) == (90.0, 100.0)


def test_policy() -> None:
    """Clean up above soft (when due); shed above hard; resume only at or below soft."""
    d = decide(100, soft=90, hard=95, accepting=True, cleanup_due=True)
    assert d.cleanup and not d.accepting
    d = decide(92, soft=90, hard=95, accepting=False, cleanup_due=False)
    assert not d.cleanup and not d.accepting  # hysteresis: still shedding between soft and hard
    d = decide(92, soft=90, hard=95, accepting=True, cleanup_due=True)
    assert d.cleanup and d.accepting
    d = decide(89, soft=90, hard=95, accepting=False, cleanup_due=True)
    assert not d.cleanup and d.accepting
    d = decide(92, soft=90, hard=95, accepting=False, cleanup_due=False, cleaned=True)
    assert d.accepting  # a clean-up just ran and RSS is under hard: resume


def test_growth_rate() -> None:
    """Slope of samples in MiB/hour; flat or too few samples give 0."""
    assert growth_mb_per_hour([]) == 0.0
    assert growth_mb_per_hour([(0.0, 10.0), (0.0, 11.0)]) == 0.0
    assert growth_mb_per_hour([(0.0, 10.0), (1800.0, 11.0), (3600.0, 12.0)]) == pytest.approx(2.0)
    assert growth_mb_per_hour([(0.0, 10.0), (5.0, 20.0)]) == 0.0  # too short to extrapolate
    assert growth_mb_per_hour([(0.0, 10.0), (5.0, 20.0)], min_span_s=1) == pytest.approx(7200)


def test_invalid_limits() -> None:
    with pytest.raises(ValidationError):
        MemoryGuard(soft_limit_mb=100, hard_limit_mb=50)
    with pytest.raises(ValidationError):
        MemoryGuard(interval_s=0)


def fake(values: list[float]) -> Callable[[], float]:
    """A sampler that returns the next value each call (the last one repeats)."""

    def sample() -> float:
        return values.pop(0) if len(values) > 1 else values[0]

    return sample


def test_guard_soft_then_hard_then_recover() -> None:
    """Soft: clean-up + event; hard: refuse (CapacityError, counted); between the limits it
    keeps refusing (hysteresis); back under soft: accept."""
    events: list[MemoryEvent] = []
    calls: list[str] = []
    reg = Registry()
    rss = [50.0]
    guard = MemoryGuard(
        soft_limit_mb=90, hard_limit_mb=100, sampler=lambda: rss[0], registry=reg,
        on_event=events.append, cleanup_cooldown_s=3600,
    )  # fmt: skip
    guard.register_cleanup(lambda: calls.append("cache"))
    guard.sample()
    assert guard.accepting and not calls
    rss[0] = 95.0
    guard.sample()
    assert calls == ["cache"] and guard.accepting
    assert [e.kind for e in events] == [MemoryEventKind.SOFT_LIMIT]
    rss[0] = 120.0
    guard.sample()  # the next clean-up is not due for an hour
    assert not guard.accepting
    with pytest.raises(CapacityError, match="hard limit"):
        guard.check_capacity()
    rss[0] = 95.0
    guard.sample()
    assert not guard.accepting  # between soft and hard, no clean-up: still shedding
    rss[0] = 80.0
    guard.sample()
    assert guard.accepting
    assert [e.kind for e in events][-2:] == [MemoryEventKind.HARD_LIMIT, MemoryEventKind.RECOVERED]
    stats = guard.stats()
    assert stats.peak_mb == 120 and stats.current_mb == 80 and stats.refused == 1
    assert stats.cleanups == 1
    snap = reg.snapshot()
    assert snap.value("memory_refused_total") == 1
    assert snap.value("memory_peak_mb") == 120
    assert snap.value("memory_accepting") == 1


def test_shedding_ends_when_a_cleanup_leaves_rss_under_hard() -> None:
    """Liveness: if a clean-up while shedding lands between the limits (memory the OS does
    not take back), new work resumes instead of waiting forever for the soft limit."""
    events: list[MemoryEvent] = []
    rss = [120.0]
    guard = MemoryGuard(soft_limit_mb=90, hard_limit_mb=100, sampler=lambda: rss[0],
                        on_event=events.append, cleanup_cooldown_s=0)  # fmt: skip
    guard.register_cleanup(lambda: None)  # frees nothing
    guard.sample()
    assert not guard.accepting
    rss[0] = 95.0  # running work finished; RSS stays above soft
    guard.sample()
    assert guard.accepting
    assert "after a clean-up" in events[-1].message


def test_cleanup_that_frees_enough_avoids_shedding() -> None:
    """The hard limit is judged after the clean-up: freeing memory keeps work flowing."""
    rss = [120.0]
    guard = MemoryGuard(soft_limit_mb=90, hard_limit_mb=100, sampler=lambda: rss[0])

    def free() -> None:
        rss[0] = 70.0

    guard.register_cleanup(free)
    assert guard.sample() == 70.0
    assert guard.accepting and guard.stats().cleanups == 1


def test_cleanup_cooldown_and_broken_callback() -> None:
    """Clean-up runs at most once per cool-down; a failing callback does not stop the others."""
    calls: list[int] = []
    guard = MemoryGuard(
        soft_limit_mb=10, hard_limit_mb=1000, sampler=lambda: 50.0, cleanup_cooldown_s=3600
    )

    def broken() -> None:
        raise RuntimeError("boom")

    guard.register_cleanup(broken)
    unregister = guard.register_cleanup(lambda: calls.append(1))
    guard.sample()
    guard.sample()
    assert calls == [1]
    unregister()
    guard.cleanup_now()
    assert calls == [1]


def test_cleanup_callbacks_are_bounded() -> None:
    guard = MemoryGuard(max_cleanups=2, sampler=lambda: 1.0)
    guard.register_cleanup(lambda: None)
    guard.register_cleanup(lambda: None)
    with pytest.raises(ValidationError):
        guard.register_cleanup(lambda: None)


async def test_wait_for_capacity_without_thread_samples_by_itself() -> None:
    """Not started: waiting samples on its own, so it cannot hang; timeout → CapacityError."""
    rss = [200.0]
    guard = MemoryGuard(
        soft_limit_mb=90, hard_limit_mb=100, interval_s=0.01, sampler=lambda: rss[0]
    )
    guard.sample()
    assert not guard.accepting
    with pytest.raises(CapacityError):
        await guard.wait_for_capacity(timeout=0.05)
    rss[0] = 10.0
    await asyncio.wait_for(guard.wait_for_capacity(), 2)
    assert guard.accepting


async def test_memory_limit_crossed_in_this_process() -> None:
    """Real RSS (psutil), real allocations: clean-up ran, alert fired, new work refused,
    running work finished, and intake resumed after it released its memory."""
    base = rss_mb()
    events: list[MemoryEvent] = []
    cleaned: list[int] = []
    guard = MemoryGuard(
        soft_limit_mb=base + 40, hard_limit_mb=base + 80, interval_s=0.02,
        registry=Registry(), on_event=events.append, cleanup_cooldown_s=0.02,
    )  # fmt: skip
    cache = [b"\x01" * (30 * MIB)]

    def trim_cache() -> None:
        cleaned.append(1)
        cache.clear()

    guard.register_cleanup(trim_cache)
    started = asyncio.Event()
    release = asyncio.Event()

    async def running_work() -> str:
        await guard.wait_for_capacity()  # admitted while memory was fine
        held = [b"\x02" * (130 * MIB)]  # this work needs a lot of memory
        started.set()
        await release.wait()
        held.clear()
        return "finished"

    with guard:
        job = asyncio.create_task(running_work())
        await asyncio.wait_for(started.wait(), 5)
        deadline = time.monotonic() + 5
        while guard.accepting and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert not guard.accepting, guard.stats()
        assert cleaned and not cache
        kinds = [e.kind for e in events]
        assert MemoryEventKind.SOFT_LIMIT in kinds and MemoryEventKind.HARD_LIMIT in kinds
        with pytest.raises(CapacityError):
            guard.check_capacity()
        newcomer = asyncio.create_task(guard.wait_for_capacity())
        await asyncio.sleep(0.1)
        assert not newcomer.done()  # new work waits...
        assert not job.done()  # ...and running work was not killed
        release.set()
        assert await asyncio.wait_for(job, 5) == "finished"
        await asyncio.wait_for(newcomer, 5)  # memory released → intake resumes
    assert guard.accepting
    assert events[-1].kind is MemoryEventKind.RECOVERED
    assert guard.stats().peak_mb > base + 80


def test_for_limit_from_config() -> None:
    """`--memory-limit 300MB` → hard 300, soft 270; None keeps the configured limits."""
    from perfect21._config import Config

    guard = MemoryGuard.for_limit(Config(), parse_memory_limit("300MB"), registry=Registry())
    assert (guard.soft_limit_mb, guard.hard_limit_mb) == (270.0, 300.0)
    default = MemoryGuard.for_limit(Config(), None, registry=Registry())
    assert (default.soft_limit_mb, default.hard_limit_mb) == (450.0, 500.0)


def test_cooldown_backs_off_when_cleanup_does_not_help() -> None:
    """RSS stuck above soft and nothing left to free: clean-ups get further apart (no
    thrashing); back under soft, the cool-down returns to its base value."""
    clock = [0.0]
    rss = [100.0]
    calls: list[float] = []

    def nothing_to_free() -> int:
        calls.append(clock[0])
        return 0

    guard = MemoryGuard(soft_limit_mb=90, hard_limit_mb=200, sampler=lambda: rss[0],
                        cleanup_cooldown_s=1.0)  # fmt: skip
    guard.register_cleanup(nothing_to_free)
    import perfect21.monitor.memory as memory

    real = memory.time.monotonic
    memory.time.monotonic = lambda: clock[0]  # type: ignore[assignment]
    try:
        for step in range(80):
            clock[0] = step * 0.5
            guard.sample()
        gaps = [b - a for a, b in itertools.pairwise(calls)]
        assert gaps == sorted(gaps) and gaps[-1] >= 8, gaps
        assert calls[-1] + 2 * gaps[-1] > 40.0  # without a reset, no clean-up due at 40 s
        rss[0] = 50.0
        guard.sample()  # back under soft: the cool-down returns to 1 s
        rss[0] = 100.0
        clock[0] = 40.0
        guard.sample()
        assert calls[-1] == 40.0
    finally:
        memory.time.monotonic = real  # type: ignore[assignment]


def test_no_backoff_near_the_hard_limit() -> None:
    """In the top quarter of the soft..hard band clean-ups keep the base cool-down, so memory
    is cleaned before it can cross the hard limit between two samples."""
    import perfect21.monitor.memory as memory

    clock = [0.0]
    calls: list[float] = []
    guard = MemoryGuard(soft_limit_mb=80, hard_limit_mb=100, sampler=lambda: 97.0,
                        cleanup_cooldown_s=1.0)  # fmt: skip
    guard.register_cleanup(lambda: calls.append(clock[0]))
    real = memory.time.monotonic
    memory.time.monotonic = lambda: clock[0]  # type: ignore[assignment]
    try:
        for step in range(20):
            clock[0] = float(step)
            guard.sample()
    finally:
        memory.time.monotonic = real  # type: ignore[assignment]
    assert len(calls) == 20 and guard.accepting


def test_no_backoff_while_callbacks_still_free_something() -> None:
    """Caches that refill between rounds are cleared at the base cool-down (a callback that
    returns a count > 0, or nothing, has freed something)."""
    import perfect21.monitor.memory as memory

    clock = [0.0]
    calls: list[float] = []

    def trim() -> int:
        calls.append(clock[0])
        return 10

    guard = MemoryGuard(soft_limit_mb=80, hard_limit_mb=200, sampler=lambda: 100.0,
                        cleanup_cooldown_s=1.0)  # fmt: skip
    guard.register_cleanup(trim)
    real = memory.time.monotonic
    memory.time.monotonic = lambda: clock[0]  # type: ignore[assignment]
    try:
        for step in range(10):
            clock[0] = float(step)
            guard.sample()
    finally:
        memory.time.monotonic = real  # type: ignore[assignment]
    assert len(calls) == 10
