"""One event bus for a run: subscribers (progress view, JSONL stream, metrics) and a bounded
history from which ``story(task_id)`` replays one task's decisions."""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable

from perfect21.executor.tasks import Event

__all__ = ["EventBus", "Subscriber"]

Subscriber = Callable[[Event], None]


class EventBus:
    """Synchronous fan-out to subscribers; a failing subscriber is reported once, then dropped."""

    def __init__(self, history: int = 2000) -> None:
        self._subscribers: list[Subscriber] = []
        self.history: deque[Event] = deque(maxlen=history)

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

        return unsubscribe

    def emit(self, event: Event) -> None:
        self.history.append(event)
        for subscriber in tuple(self._subscribers):
            try:
                subscriber(event)
            except Exception as exc:  # an observer must never break the run
                self._subscribers.remove(subscriber)
                print(f"perfect21: event subscriber {subscriber!r} failed and was removed: "
                      f"{type(exc).__name__}: {exc}", file=sys.stderr)

    def story(self, task_id: str) -> list[Event]:
        """The retained events of one task, oldest first (steals, retries, the outcome)."""
        return [e for e in self.history if e.task_id == task_id]
