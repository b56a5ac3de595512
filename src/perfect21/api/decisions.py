"""Adapter between the HTTP routes and :mod:`perfect21.decisions` (the async, group-commit
store): JSON in and out, the store's own errors passed through to the one error map."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any

from perfect21._config import Config

if TYPE_CHECKING:
    from perfect21.api.models import DecisionBody
    from perfect21.planner.models import Plan

__all__ = ["DecisionsAdapter", "decision_from_plan", "open_store"]


def open_store(config: Config) -> DecisionsAdapter | None:
    """The adapter over ``<home>/decisions.db``, or ``None`` when the package is missing."""
    try:
        from perfect21.decisions import DecisionStore
    except ImportError:
        return None
    return DecisionsAdapter(DecisionStore.open(config=config))


def decision_from_plan(plan: Plan) -> Any:
    """The same proposed ADR as ``perfect21 plan --record`` (one definition, in decisions)."""
    from perfect21.decisions.planner_hook import decision_from_plan as from_plan

    return from_plan(plan)


class DecisionsAdapter:
    """The decision store as the routes use it (dicts in and out)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    async def start(self) -> None:
        await self.store.start()

    async def close(self) -> None:
        await self.store.close()

    async def list(self, *, limit: int, status: str | None = None,
                   tag: str | None = None) -> list[dict[str, Any]]:
        items = await self.store.list(status=status, tag=tag, limit=limit)
        return [d.to_dict() for d in items]

    async def get(self, ref: str) -> dict[str, Any]:
        decision = await self.store.get(ref)
        result: dict[str, Any] = decision.to_dict()
        return result

    async def search(self, query: str, *, limit: int) -> builtins.list[dict[str, Any]]:
        return [d.to_dict() for d in await self.store.search(query, limit=limit)]

    async def add(self, body: DecisionBody) -> dict[str, Any]:
        from perfect21.decisions import Decision

        data = body.model_dump()
        data["options"] = [o if isinstance(o, str) else dict(o) for o in data["options"]]
        stored = await self.store.record(Decision.from_dict(data))
        result: dict[str, Any] = stored.to_dict()
        return result

    async def record_plan(self, plan: Plan) -> dict[str, Any]:
        stored = await self.store.record(decision_from_plan(plan))
        result: dict[str, Any] = stored.to_dict()
        return result
