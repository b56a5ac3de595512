"""Predict the next keys of a session from the ones it just read (order-k Markov with decay).

Pure logic, no I/O: :class:`~perfect21.cache.layered.LayeredCache` feeds it every read of a
session and prefetches what it predicts. Sequences recur (the same plan's tasks in the same
order; the same agent briefs after the same analysis), so "after A, B came next" is a strong
signal, and the previous two keys disambiguate sequences that share a key.

* Contexts are the last 1..``order`` keys of a session; each maps to at most
  ``max_successors`` next keys with weights.
* Weights decay lazily: a context's weights are halved for every ``half_life`` observations
  (of the whole model) since it was last touched, so abandoned habits fade.
* Prediction uses the longest context with enough support (``min_support``) and returns the
  successors whose share is at least ``threshold`` — a high threshold buys precision.
* Every table is bounded: ``max_contexts`` (least recently used out), ``max_successors`` per
  context (lightest out), ``max_sessions`` histories (least recently used out).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass

__all__ = ["MarkovPredictor", "PredictorConfig"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PredictorConfig:
    """Tuning of :class:`MarkovPredictor`; the defaults favour precision over recall."""

    order: int = 2
    threshold: float = 0.6
    min_support: float = 2.0
    max_predictions: int = 2
    max_contexts: int = 20_000
    max_successors: int = 8
    max_sessions: int = 1_024
    half_life: int = 50_000

    def __post_init__(self) -> None:
        if self.order < 1:
            raise ValueError("order must be >= 1")
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError("threshold must be in (0, 1]")


class _Context:
    __slots__ = ("epoch", "next")

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.next: dict[str, float] = {}


class MarkovPredictor:
    """Per-session order-k Markov model over cache keys."""

    def __init__(self, config: PredictorConfig | None = None) -> None:
        self.config = config or PredictorConfig()
        self._contexts: OrderedDict[tuple[str, ...], _Context] = OrderedDict()
        self._sessions: OrderedDict[str, deque[str]] = OrderedDict()
        self._observations = 0

    def __len__(self) -> int:
        return len(self._contexts)

    @property
    def sessions(self) -> int:
        return len(self._sessions)

    def observe(self, session: str, key: str) -> list[str]:
        """Record that ``session`` read ``key``; return the keys it will likely read next."""
        history = self._history(session)
        self._learn(history, key)
        history.append(key)
        return self.predict(session)

    def predict(self, session: str) -> list[str]:
        """Likely next keys of ``session`` (best first), without recording anything."""
        history = self._sessions.get(session)
        if not history:
            return []
        cfg = self.config
        items = tuple(history)
        for order in range(min(cfg.order, len(items)), 0, -1):
            ctx = self._contexts.get(items[-order:])
            if ctx is None:
                continue
            self._decay(ctx)
            total = sum(ctx.next.values())
            if total < cfg.min_support:
                continue
            ranked = sorted(ctx.next.items(), key=lambda kv: kv[1], reverse=True)
            picked = [k for k, w in ranked[: cfg.max_predictions] if w / total >= cfg.threshold]
            return [k for k in picked if k != items[-1]]
        return []

    def forget(self, session: str) -> None:
        self._sessions.pop(session, None)

    # -- internals --------------------------------------------------------------------------
    def _history(self, session: str) -> deque[str]:
        history = self._sessions.get(session)
        if history is None:
            history = deque(maxlen=self.config.order)
            self._sessions[session] = history
            while len(self._sessions) > self.config.max_sessions:
                self._sessions.popitem(last=False)
        else:
            self._sessions.move_to_end(session)
        return history

    def _epoch(self) -> int:
        return self._observations // self.config.half_life

    def _decay(self, ctx: _Context) -> None:
        epoch = self._epoch()
        if ctx.epoch != epoch:
            factor = 0.5 ** (epoch - ctx.epoch)
            ctx.next = {k: w * factor for k, w in ctx.next.items() if w * factor >= 0.05}
            ctx.epoch = epoch

    def _learn(self, history: deque[str], key: str) -> None:
        self._observations += 1
        cfg = self.config
        items = tuple(history)
        for order in range(1, len(items) + 1):
            context = items[-order:]
            ctx = self._contexts.get(context)
            if ctx is None:
                ctx = _Context(self._epoch())
                self._contexts[context] = ctx
                while len(self._contexts) > cfg.max_contexts:
                    self._contexts.popitem(last=False)
            else:
                self._contexts.move_to_end(context)
                self._decay(ctx)
            ctx.next[key] = ctx.next.get(key, 0.0) + 1.0
            if len(ctx.next) > cfg.max_successors:
                lightest = min(ctx.next, key=ctx.next.__getitem__)
                if lightest == key:  # never drop the observation just made
                    lightest = min((k for k in ctx.next if k != key), key=ctx.next.__getitem__)
                del ctx.next[lightest]
