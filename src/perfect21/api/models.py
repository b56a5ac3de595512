"""Pydantic models of the HTTP boundary (and only of it: the core uses frozen dataclasses).

Every request model forbids unknown fields, so a typo — or a ``command`` smuggled into a
run request — is a 422 that names the field instead of being silently ignored.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "BatchBody",
    "BatchItem",
    "DecisionBody",
    "LinksBody",
    "OptionBody",
    "PlanBody",
    "PlanOptions",
    "RunBody",
]

MAX_REQUEST_CHARS = 100_000
MAX_BATCH = 100


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlanOptions(_Strict):
    team_size: str | None = Field(
        default=None, max_length=64,
        description="Team size per complexity: 4-6-8 (fixed) or 1:3-3:6-5:8 (bounds).")
    format: Literal["json", "text", "mermaid", "claude"] = Field(
        default="json", description="json: the plan object (as `perfect21 plan --format "
                                    "json`); others: {'format', 'text'}.")
    record: bool = Field(default=False,
                         description="Also store the plan's decision as a proposed ADR.")


class PlanBody(_Strict):
    request: str = Field(min_length=1, max_length=MAX_REQUEST_CHARS,
                         description="What to build or fix, in any language.")
    options: PlanOptions = Field(default_factory=PlanOptions)


class BatchItem(_Strict):
    id: str | int | None = Field(default=None, description="Echoed back as input_id.")
    request: str = Field(min_length=1, max_length=MAX_REQUEST_CHARS)


class BatchBody(_Strict):
    requests: list[BatchItem] = Field(min_length=1, max_length=MAX_BATCH)
    options: PlanOptions = Field(default_factory=PlanOptions)


class RunBody(_Strict):
    profile: str = Field(min_length=1, max_length=64,
                         description="Name of a runner profile configured on the server.")
    request: str | None = Field(default=None, min_length=1, max_length=MAX_REQUEST_CHARS,
                                description="Plan this request and run it …")
    plan: dict[str, Any] | None = Field(
        default=None, description="… or run this plan (from POST /v1/plan).")

    @model_validator(mode="after")
    def _one_source(self) -> RunBody:
        if (self.request is None) == (self.plan is None):
            raise ValueError("give exactly one of 'request' or 'plan'")
        return self


class OptionBody(_Strict):
    name: str = Field(min_length=1, max_length=2_000)
    pros: list[str] = Field(default_factory=list, max_length=100)
    cons: list[str] = Field(default_factory=list, max_length=100)


class LinksBody(_Strict):
    supersedes: list[str] = Field(default_factory=list, max_length=100)
    superseded_by: str = Field(default="", max_length=200)
    workflow_id: str = Field(default="", max_length=200)
    run_id: str = Field(default="", max_length=200)
    related: list[str] = Field(default_factory=list, max_length=100)


class DecisionBody(_Strict):
    """A new decision record (ADR); the store assigns id, number and times."""

    title: str = Field(min_length=1, max_length=500)
    context: str = Field(default="", max_length=MAX_REQUEST_CHARS)
    decision: str = Field(default="", max_length=MAX_REQUEST_CHARS)
    rationale: str = Field(default="", max_length=MAX_REQUEST_CHARS)
    status: Literal["proposed", "accepted", "rejected", "deprecated", "superseded"] = "proposed"
    options: list[str | OptionBody] = Field(default_factory=list, max_length=100)
    consequences: list[str] = Field(default_factory=list, max_length=100)
    deciders: list[str] = Field(default_factory=list, max_length=100)
    agents: list[str] = Field(default_factory=list, max_length=100)
    tags: list[str] = Field(default_factory=list, max_length=32)
    links: LinksBody = Field(default_factory=LinksBody)
