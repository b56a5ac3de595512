"""The pure placement and stealing policy, and the deques it works on."""

from __future__ import annotations

from perfect21.executor.stealing import (
    WorkerLoad,
    WorkerQueue,
    choose_steal,
    choose_worker,
)


def _load(worker: int, queued: list[float], running: float = 0.0,
          tail: str = "t") -> WorkerLoad:
    return WorkerLoad(worker, len(queued), sum(queued), running, tail if queued else "",
                      queued[-1] if queued else 0.0)


def test_placement_goes_to_least_occupied_worker() -> None:
    """A ready task goes to the worker with the least queued + running estimate."""
    loads = [_load(0, [3.0], running=2.0), _load(1, [1.0], running=1.0), _load(2, [4.0])]
    assert choose_worker(loads) == 1


def test_placement_ties_break_by_queue_length_then_id() -> None:
    loads = [_load(0, [1.0, 1.0]), _load(1, [2.0]), _load(2, [2.0])]
    assert choose_worker(loads) == 1


def test_idle_thief_steals_tail_of_most_loaded_busy_worker() -> None:
    """An idle worker takes the right-end task of the most occupied worker."""
    thief = _load(0, [])
    victim = _load(1, [1.0, 1.0], running=1.0, tail="last")
    other = _load(2, [1.0], running=1.0, tail="x")
    decision = choose_steal(thief, [thief, victim, other])
    assert decision is not None
    assert (decision.thief, decision.victim, decision.task_id) == (0, 1, "last")
    assert "most loaded" in decision.reason


def test_no_steal_when_it_would_not_help() -> None:
    """occ_thief + cost <= occ_victim - cost/2 must hold: an idle victim keeps its one task."""
    thief = _load(0, [])
    idle_victim = _load(1, [1.0], running=0.0)
    assert choose_steal(thief, [thief, idle_victim]) is None
    busy_victim = _load(1, [1.0], running=0.5)
    assert choose_steal(thief, [thief, busy_victim]) is not None


def test_busy_worker_is_never_a_thief_and_empty_workers_are_never_victims() -> None:
    busy = _load(0, [], running=1.0)
    loaded = _load(1, [1.0, 1.0], running=1.0)
    assert choose_steal(busy, [busy, loaded]) is None
    idle = _load(0, [])
    assert choose_steal(idle, [idle, _load(1, [], running=5.0)]) is None


def test_owner_and_thief_use_opposite_ends() -> None:
    queue = WorkerQueue(0)
    for name, cost in (("big", 3.0), ("mid", 2.0), ("small", 1.0)):
        queue.push(name, cost)
    assert queue.load().tail_task == "small"
    assert queue.steal("small")
    assert queue.pop_own() == "big"
    assert queue.cost == 2.0
    assert len(queue) == 1


def test_steal_is_confirmed_against_the_current_tail() -> None:
    """Second phase: a task no longer at the tail (taken or started) is not stolen."""
    queue = WorkerQueue(0)
    queue.push("a", 1.0)
    queue.push("b", 1.0)
    decision_task = queue.load().tail_task
    assert queue.pop_own() == "a"
    assert queue.pop_own() == "b"  # the owner started it in between
    assert not queue.steal(decision_task)
    assert queue.cost == 0.0


def test_public_names_are_complete() -> None:
    """Every name in ``perfect21.executor.__all__`` exists, and the main values are there."""
    import perfect21.executor as executor

    for name in executor.__all__:
        assert hasattr(executor, name), name
    for name in ("LocalExecutor", "RunStore", "TaskStatus", "TaskCache", "CachedTaskResult"):
        assert name in executor.__all__
