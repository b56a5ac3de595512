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
    """A proposed ADR for a plan: which agents, in which stages, and why."""
    from perfect21.decisions import Decision, Links

    title = plan.request if len(plan.request) <= 120 else plan.request[:119] + "…"
    stages = "; ".join(f"{s.name}: {', '.join(s.agents)}" for s in plan.stages)
    reasons = [f"{c.name}: {c.reasons[0]}" for c in plan.agents if c.reasons]
    return Decision(title=f"Plan: {title}", context=plan.request,
                    decision=f"{plan.analysis.complexity.value} workflow — {stages}",
                    rationale="\n".join(reasons)[:100_000],
                    agents=tuple(c.name for c in plan.agents)[:100], tags=("plan",),
                    links=Links(workflow_id=plan.id))


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
