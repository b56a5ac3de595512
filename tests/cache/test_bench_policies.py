"""The reference policies of ``bench cache``: Belady is optimal, traces are deterministic."""

from __future__ import annotations

import itertools

from perfect21.bench.cache import (
    a0_hit_ratio,
    belady_hit_ratio,
    l1_hit_ratio,
    lru_hit_ratio,
    online_bound_hit_ratio,
    s3fifo_hit_ratio,
    session_trace,
    zipf_trace,
)


def _brute_force_opt(trace: list[int], capacity: int) -> int:
    """Most hits any cache (with bypass) can get: search every eviction choice."""
    best = 0

    def go(i: int, cached: frozenset[int], hits: int) -> None:
        nonlocal best
        if i == len(trace):
            best = max(best, hits)
            return
        key = trace[i]
        if key in cached:
            go(i + 1, cached, hits + 1)
            return
        go(i + 1, cached, hits)  # bypass
        if len(cached) < capacity:
            go(i + 1, cached | {key}, hits)
        else:
            for victim in cached:
                go(i + 1, (cached - {victim}) | {key}, hits)

    go(0, frozenset(), 0)
    return best


def test_belady_matches_brute_force_on_small_traces() -> None:
    for trace in (
        [1, 2, 3, 1, 2, 4, 1, 2, 3, 4],
        [1, 2, 1, 3, 1, 4, 1, 2, 3, 2, 4, 4],
        [5, 1, 5, 2, 5, 3, 1, 2, 3, 5],
    ):
        for capacity in (1, 2, 3):
            expected = _brute_force_opt(trace, capacity) / len(trace)
            assert abs(belady_hit_ratio(trace, capacity) - expected) < 1e-12


def test_belady_is_an_upper_bound() -> None:
    trace = zipf_trace(2_000, 20_000, seed=11)
    bound = belady_hit_ratio(trace, 100)
    for policy in (lru_hit_ratio, s3fifo_hit_ratio, l1_hit_ratio, a0_hit_ratio):
        assert policy(trace, 100) <= bound


def test_traces_are_deterministic() -> None:
    assert zipf_trace(100, 50) == zipf_trace(100, 50)
    assert session_trace(200) == session_trace(200)
    counts = [0] * 100
    for key in zipf_trace(100, 20_000):
        counts[key] += 1
    top = sorted(counts, reverse=True)
    assert top[0] > 5 * top[20]  # skewed


def test_lru_by_hand() -> None:
    assert lru_hit_ratio([1, 2, 1, 3, 2, 1], 2) == 1 / 6
    assert list(itertools.islice(zipf_trace(10, 5), 5)) == zipf_trace(10, 5)


def _top_counts_by_hand(trace: list[int], capacity: int, n_keys: int) -> float:
    """The bound's definition, computed naively: sort all counts before every request."""
    counts = dict.fromkeys(range(n_keys), 0)
    hits = 0.0
    for key in trace:
        ranked = sorted(counts.values(), reverse=True)
        threshold = ranked[capacity - 1]
        above = sum(1 for c in ranked if c > threshold)
        tied = sum(1 for c in ranked if c == threshold)
        if counts[key] > threshold:
            hits += 1
        elif counts[key] == threshold:
            hits += (capacity - above) / tied
        counts[key] += 1
    return hits / len(trace)


def test_online_bound_matches_its_definition() -> None:
    trace = zipf_trace(30, 400, seed=5)
    for capacity in (1, 3, 10):
        expected = _top_counts_by_hand(trace, capacity, 30)
        assert abs(online_bound_hit_ratio(trace, capacity, 30) - expected) < 1e-9


def test_online_bound_sits_between_online_policies_and_belady() -> None:
    # One trace is one sample, so an online policy may beat the bound's expectation by a
    # little noise; on 50k requests the margin is far below these gaps.
    trace = zipf_trace(5_000, 50_000, seed=3)
    bound = online_bound_hit_ratio(trace, 200, 5_000)
    assert bound < belady_hit_ratio(trace, 200)
    for policy in (lru_hit_ratio, s3fifo_hit_ratio, l1_hit_ratio):
        assert policy(trace, 200) <= bound + 0.005
