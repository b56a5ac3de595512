"""Work stealing: the per-worker deques and the pure policy that decides placement and steals.

The policy is kept apart from the queues (as in dask's ``distributed/stealing.py``): it looks
at a snapshot of every worker's load and returns a decision; the executor applies it and
records an event. Nothing in this module awaits, sleeps or touches a process.

* A worker's *occupancy* is the estimated cost of the tasks in its deque plus the cost of
  the task it is running.
* Placement (:func:`choose_worker`): a ready task goes to the least occupied worker. Ready
  tasks are placed largest estimate first, so placement is list scheduling in LPT order.
* Owners take from the **left** of their own deque (largest first); thieves take from the
  **right** (the smallest queued task), so an owner and a thief never want the same end.
* Stealing (:func:`choose_steal`): only an idle worker (empty deque, nothing running) is a
  thief; the victim is the most occupied worker with something queued; the steal happens
  only when it helps: ``occ_thief + cost <= occ_victim - cost / 2``.
* Only queued tasks are ever in a deque: a task that has started is not stealable, and
  :meth:`WorkerQueue.steal` re-checks (second phase) that the chosen task is still at the tail.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["STEAL_RULE", "StealDecision", "WorkerLoad", "WorkerQueue", "choose_steal",
           "choose_worker"]


STEAL_RULE = "occ_thief + cost <= occ_victim - cost/2 (idle thief, most loaded victim, tail)"


class WorkerLoad(NamedTuple):
    """A snapshot of one worker, as the policy sees it.

    An immutable NamedTuple rather than a frozen dataclass: one is built per worker for
    every placement and steal decision, and a tuple is several times cheaper to build.
    """

    worker: int
    queued: int
    queued_cost: float
    running_cost: float  # 0.0 when the worker runs nothing
    tail_task: str = ""  # the task a thief would take
    tail_cost: float = 0.0

    @property
    def occupancy(self) -> float:
        return self.queued_cost + self.running_cost

    @property
    def idle(self) -> bool:
        return self.queued == 0 and self.running_cost == 0.0


@dataclass(frozen=True, slots=True)
class StealDecision:
    thief: int
    victim: int
    task_id: str
    cost: float
    thief_occupancy: float
    victim_occupancy: float

    @property
    def reason(self) -> str:
        return (f"worker {self.thief} idle (occupancy {self.thief_occupancy:g}); worker "
                f"{self.victim} most loaded (occupancy {self.victim_occupancy:g}); "
                f"{self.thief_occupancy:g} + {self.cost:g} <= "
                f"{self.victim_occupancy:g} - {self.cost:g}/2")


def choose_worker(loads: Sequence[WorkerLoad]) -> int:
    """The worker a newly ready task goes to: least occupied, then fewest queued, lowest id."""
    if not loads:
        raise ValueError("no workers")
    best = min(loads, key=lambda w: (w.occupancy, w.queued, w.worker))
    return best.worker


def choose_steal(thief: WorkerLoad, loads: Sequence[WorkerLoad]) -> StealDecision | None:
    """Whether ``thief`` should steal, and from whom; ``None`` when no steal helps."""
    if not thief.idle:
        return None
    victims = [w for w in loads if w.worker != thief.worker and w.queued > 0]
    if not victims:
        return None
    victim = max(victims, key=lambda w: (w.occupancy, w.queued, -w.worker))
    cost = victim.tail_cost
    if thief.occupancy + cost <= victim.occupancy - cost / 2:
        return StealDecision(thief.worker, victim.worker, victim.tail_task, cost,
                             thief.occupancy, victim.occupancy)
    return None


class WorkerQueue:
    """One worker's deque of queued (never started) task ids with their estimated costs."""

    __slots__ = ("_costs", "_items", "cost", "running_cost", "worker")

    def __init__(self, worker: int) -> None:
        self.worker = worker
        self._items: deque[str] = deque()
        self._costs: dict[str, float] = {}
        self.cost = 0.0
        self.running_cost = 0.0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._costs

    def push(self, task_id: str, cost: float) -> None:
        self._items.append(task_id)
        self._costs[task_id] = cost
        self.cost += cost

    def pop_own(self) -> str | None:
        """The owner's end (left): the oldest, i.e. largest-estimate, queued task."""
        if not self._items:
            return None
        task_id = self._items.popleft()
        self._forget(task_id)
        return task_id

    def steal(self, task_id: str) -> bool:
        """Confirm and take ``task_id`` from the thieves' end (right); False if it moved."""
        if not self._items or self._items[-1] != task_id:
            return False
        self._items.pop()
        self._forget(task_id)
        return True

    def drain(self) -> list[str]:
        items = list(self._items)
        self._items.clear()
        self._costs.clear()
        self.cost = 0.0
        return items

    def load(self) -> WorkerLoad:
        tail_task = self._items[-1] if self._items else ""
        return WorkerLoad(self.worker, len(self._items), self.cost, self.running_cost,
                          tail_task, self._costs.get(tail_task, 0.0))

    def _forget(self, task_id: str) -> None:
        self.cost -= self._costs.pop(task_id)
        if not self._items:
            self.cost = 0.0  # no float drift on an empty queue
