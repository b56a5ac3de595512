"""Order-k Markov predictor: learns sequences, stays bounded, forgets, favours precision."""

from __future__ import annotations

import pytest

from perfect21.bench.cache import session_trace
from perfect21.cache.predictive import MarkovPredictor, PredictorConfig


def test_learns_a_recurring_sequence() -> None:
    predictor = MarkovPredictor()
    for _ in range(3):
        for key in ("plan", "analyse", "route", "render"):
            predictor.observe("s1", key)
    predictor.forget("s1")
    assert predictor.observe("s1", "plan") == ["analyse"]
    assert predictor.observe("s1", "analyse") == ["route"]


def test_second_order_context_disambiguates_shared_keys() -> None:
    """'b' is followed by 'c' after 'a', but by 'y' after 'x'."""
    predictor = MarkovPredictor()
    for _ in range(4):
        for key in ("a", "b", "c", "x", "b", "y"):
            predictor.observe("s", key)
    predictor.forget("s")
    predictor.observe("s", "a")
    assert predictor.observe("s", "b") == ["c"]
    predictor.observe("s", "x")
    assert predictor.observe("s", "b") == ["y"]


def test_sessions_are_separate() -> None:
    predictor = MarkovPredictor()
    for _ in range(3):
        predictor.observe("s1", "a")
        predictor.observe("s2", "q")  # interleaved, but a different session
        predictor.observe("s1", "b")
    predictor.forget("s1")
    assert predictor.observe("s1", "a") == ["b"]


def test_no_prediction_without_enough_support() -> None:
    predictor = MarkovPredictor()
    assert predictor.observe("s", "a") == []
    assert predictor.observe("s", "b") == []  # a->b seen once: below min_support
    assert predictor.predict("unknown") == []


def test_tables_are_bounded() -> None:
    cfg = PredictorConfig(max_contexts=50, max_successors=3, max_sessions=4)
    predictor = MarkovPredictor(cfg)
    for i in range(2000):
        predictor.observe(f"s{i % 10}", f"k{(i * 7919) % 300}")
    assert len(predictor) <= 50
    assert predictor.sessions <= 4
    assert all(len(ctx.next) <= 3 for ctx in predictor._contexts.values())


def test_old_habits_decay() -> None:
    """After 'a->b' stops and 'a->c' takes over, the prediction follows the new habit."""
    predictor = MarkovPredictor(PredictorConfig(half_life=20))
    for _ in range(30):
        predictor.observe("s", "a")
        predictor.observe("s", "b")
    for _ in range(30):
        predictor.observe("s", "a")
        predictor.observe("s", "c")
    predictor.forget("s")
    assert predictor.observe("s", "a") == ["c"]


def test_precision_on_noisy_sessions() -> None:
    """On recurring sequences with 10 % noise, most predictions come true."""
    predictor = MarkovPredictor()
    pending: dict[str, list[str]] = {}
    made = right = 0
    for session, key in session_trace(8000, seed=3):
        if session in pending:
            made += len(pending[session])
            right += key in pending[session]
        pending[session] = predictor.observe(session, key)
    assert made > 2000
    assert right / made > 0.8


def test_invalid_config() -> None:
    with pytest.raises(ValueError):
        PredictorConfig(order=0)
    with pytest.raises(ValueError):
        PredictorConfig(threshold=0.0)
