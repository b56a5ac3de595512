"""The decision record (ADR) as a frozen value, with validation that names the field and limit.

A :class:`Decision` is validated when it is built, so the store can trust it: the write path
only serialises. Fields the store assigns (``id``, ``number``, ``created``, ``updated``) are
empty/zero until the decision is recorded; :meth:`DecisionStore.record` returns the stored copy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TypeVar

from perfect21._errors import ValidationError

__all__ = [
    "LIMITS",
    "Decision",
    "Links",
    "Option",
    "Status",
    "format_number",
    "trusted",
    "utc_now",
]

# One place for every size limit; error messages quote them.
LIMITS: Mapping[str, int] = {
    "title": 500,  # characters, as the HTTP API allows
    "text": 100_000,  # context, decision, rationale: characters each
    "item": 2_000,  # one consequence, pro, con, option name, decider, agent: characters
    "items": 100,  # entries in options, consequences, pros, cons, deciders, agents, links
    "tag": 64,  # characters of one tag
    "tags": 32,  # tags per decision
    "ref": 200,  # characters of a link target, legacy id
}

# Kept out of list items: the store uses them as delimiters (see ``_schema.extra_of``).
_SEPARATORS = re.compile("[\x1c-\x1f]")
_ID_CHARS = frozenset("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


class Status(str, Enum):
    """Where a decision stands (MADR's statuses)."""

    PROPOSED = "proposed"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    DEPRECATED = "deprecated"
    SUPERSEDED = "superseded"

    @classmethod
    def parse(cls, value: Any, *, what: str = "status") -> Status:
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            try:
                return cls(value.strip().lower())
            except ValueError:
                pass
        allowed = ", ".join(s.value for s in cls)
        raise ValidationError(f"{what}: {value!r} is not one of {allowed}")


def utc_now() -> str:
    """The current time as stored: ISO 8601, UTC, microseconds, ``Z`` suffix."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def format_number(number: int) -> str:
    """``12`` -> ``ADR-0012``."""
    return f"ADR-{number:04d}"


def _text(
    name: str, value: Any, limit: int, *, required: bool = False, item: bool = False
) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{name}: expected text, got {type(value).__name__}")
    if item and _SEPARATORS.search(value):
        raise ValidationError(f"{name}: control characters U+001C to U+001F are not allowed")
    if required and not value.strip():
        raise ValidationError(f"{name}: must not be empty")
    if len(value) > limit:
        raise ValidationError(
            f"{name}: too long ({len(value):,} characters; the limit is {limit:,})"
        )
    return value


def _texts(name: str, value: Any, limit: int = LIMITS["item"]) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValidationError(f"{name}: expected a list of text, got {type(value).__name__}")
    items = tuple(value)
    if len(items) > LIMITS["items"]:
        raise ValidationError(
            f"{name}: too many entries ({len(items)}; the limit is {LIMITS['items']})"
        )
    for i, item in enumerate(items):
        _text(f"{name}[{i}]", item, limit, required=True, item=True)
    return items


def _timestamp(name: str, value: Any) -> str:
    """Accept ISO 8601 (naive = UTC) and return the stored form; ``""`` stays empty."""
    if value == "":
        return ""
    if not isinstance(value, str):
        raise ValidationError(f"{name}: expected an ISO 8601 timestamp, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError(
            f"{name}: {value!r} is not an ISO 8601 timestamp (e.g. 2025-09-17T10:00:00Z)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class Option:
    """One considered option, with its pros and cons (MADR's "Pros and Cons of the Options")."""

    name: str
    pros: tuple[str, ...] = ()
    cons: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _text("option name", self.name, LIMITS["item"], required=True, item=True)
        object.__setattr__(self, "pros", _texts(f"option {self.name!r} pros", self.pros))
        object.__setattr__(self, "cons", _texts(f"option {self.name!r} cons", self.cons))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "pros": list(self.pros), "cons": list(self.cons)}

    @classmethod
    def from_value(cls, value: Any) -> Option:
        """An :class:`Option`, a plain name, or ``{"name", "pros", "cons"}``."""
        if isinstance(value, Option):
            return value
        if isinstance(value, str):
            return cls(value)
        if isinstance(value, Mapping):
            if "name" not in value:
                raise ValidationError("options: an option needs a 'name'")
            return cls(value["name"], value.get("pros", ()), value.get("cons", ()))
        raise ValidationError(f"options: expected a name or an object, got {value!r}")


@dataclass(frozen=True, slots=True)
class Links:
    """How a decision relates to others and to the work that produced it."""

    supersedes: tuple[str, ...] = ()  # ids of the decisions this one replaces
    superseded_by: str = ""  # id of the decision that replaced this one
    workflow_id: str = ""  # the plan id (``perfect21 plan``) this decision came from
    run_id: str = ""  # the run (``perfect21 run``) this decision came from
    related: tuple[str, ...] = ()  # other references (e.g. legacy related_decisions)

    def __post_init__(self) -> None:
        ref = LIMITS["ref"]
        object.__setattr__(self, "supersedes", _texts("links.supersedes", self.supersedes, ref))
        object.__setattr__(self, "related", _texts("links.related", self.related, ref))
        _text("links.superseded_by", self.superseded_by, ref, item=True)
        _text("links.workflow_id", self.workflow_id, ref, item=True)
        _text("links.run_id", self.run_id, ref, item=True)

    def __bool__(self) -> bool:
        return bool(
            self.supersedes or self.superseded_by or self.workflow_id or self.run_id or self.related
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "supersedes": list(self.supersedes),
            "superseded_by": self.superseded_by,
            "workflow_id": self.workflow_id,
            "run_id": self.run_id,
            "related": list(self.related),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Links:
        if isinstance(data, Links):
            return data
        if not isinstance(data, Mapping):
            raise ValidationError(f"links: expected an object, got {type(data).__name__}")
        unknown = set(data) - {"supersedes", "superseded_by", "workflow_id", "run_id", "related"}
        if unknown:
            raise ValidationError(f"links: unknown field(s) {', '.join(sorted(unknown))}")
        return cls(
            supersedes=data.get("supersedes", ()),
            superseded_by=data.get("superseded_by", ""),
            workflow_id=data.get("workflow_id", ""),
            run_id=data.get("run_id", ""),
            related=data.get("related", ()),
        )


_NO_LINKS = Links()


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """An architecture decision record. Build it, then ``record()`` it; it never changes.

    Lists may be given as lists and are stored as tuples; ``status`` may be given as text;
    an option may be given as its name. Invalid values raise :class:`ValidationError`.
    """

    title: str
    context: str = ""
    decision: str = ""
    rationale: str = ""
    status: Status = Status.PROPOSED
    options: tuple[Option, ...] = ()
    consequences: tuple[str, ...] = ()
    deciders: tuple[str, ...] = ()  # people
    agents: tuple[str, ...] = ()  # agents that took part or were chosen
    tags: tuple[str, ...] = ()
    links: Links = field(default=_NO_LINKS)
    legacy_id: str = ""  # id in the old system, when imported
    # assigned by the store:
    id: str = ""
    number: int = 0
    created: str = ""
    updated: str = ""

    def __post_init__(self) -> None:
        setattr_ = object.__setattr__
        _text("title", self.title, LIMITS["title"], required=True)
        for name in ("context", "decision", "rationale"):
            _text(name, getattr(self, name), LIMITS["text"])
        if type(self.status) is not Status:
            setattr_(self, "status", Status.parse(self.status))
        if self.options:
            if isinstance(self.options, str | Mapping) or not isinstance(self.options, Iterable):
                raise ValidationError("options: expected a list of options")
            options = tuple(Option.from_value(o) for o in self.options)
            if len(options) > LIMITS["items"]:
                raise ValidationError(
                    f"options: too many entries ({len(options)}; the limit is {LIMITS['items']})"
                )
            setattr_(self, "options", options)
        else:
            setattr_(self, "options", ())
        setattr_(self, "consequences", _texts("consequences", self.consequences))
        setattr_(self, "deciders", _texts("deciders", self.deciders))
        setattr_(self, "agents", _texts("agents", self.agents))
        setattr_(self, "tags", _tags(self.tags))
        if type(self.links) is not Links:
            setattr_(self, "links", Links.from_dict(self.links))
        _text("legacy_id", self.legacy_id, LIMITS["ref"])
        if self.id and not (len(self.id) == 26 and _ID_CHARS.issuperset(self.id)):
            raise ValidationError(f"id: {self.id!r} is not a 26-character ULID")
        if type(self.number) is not int or self.number < 0:
            raise ValidationError(f"number: expected a whole number >= 0, got {self.number!r}")
        setattr_(self, "created", _timestamp("created", self.created))
        setattr_(self, "updated", _timestamp("updated", self.updated))

    @property
    def ref(self) -> str:
        """``ADR-0012`` once stored, else the title."""
        return format_number(self.number) if self.number else self.title

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``--format json``, export, HTTP)."""
        return {
            "id": self.id,
            "number": self.number,
            "ref": format_number(self.number) if self.number else "",
            "title": self.title,
            "status": self.status.value,
            "context": self.context,
            "options": [o.to_dict() for o in self.options],
            "decision": self.decision,
            "rationale": self.rationale,
            "consequences": list(self.consequences),
            "deciders": list(self.deciders),
            "agents": list(self.agents),
            "tags": list(self.tags),
            "links": self.links.to_dict(),
            "legacy_id": self.legacy_id,
            "created": self.created,
            "updated": self.updated,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Decision:
        """Rebuild from the JSON form; unknown keys are an error naming them."""
        if not isinstance(data, Mapping):
            raise ValidationError(f"decision: expected an object, got {type(data).__name__}")
        known = {*_FIELD_NAMES, "ref"}
        unknown = set(data) - known
        if unknown:
            raise ValidationError(f"decision: unknown field(s) {', '.join(sorted(unknown))}")
        if "title" not in data:
            raise ValidationError("title: missing")
        values = {k: v for k, v in data.items() if k in _FIELD_NAMES}
        if "links" in values:
            values["links"] = Links.from_dict(values["links"])
        if values.get("number") is None:
            values.pop("number", None)
        return cls(**values)


_FIELD_NAMES = frozenset(Decision.__dataclass_fields__)


def _tags(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValidationError(f"tags: expected a list of text, got {type(value).__name__}")
    tags = tuple(value)
    if not tags:
        return ()
    if len(tags) > LIMITS["tags"]:
        raise ValidationError(f"tags: too many ({len(tags)}; the limit is {LIMITS['tags']})")
    for tag in tags:
        if not isinstance(tag, str) or tag.split() != [tag]:
            raise ValidationError(f"tags: {tag!r} must be non-empty text without spaces")
        if len(tag) > LIMITS["tag"]:
            raise ValidationError(
                f"tags: {tag[:20]!r}… too long ({len(tag)} characters; the limit is "
                f"{LIMITS['tag']})"
            )
    if len(set(tags)) != len(tags):
        tags = tuple(dict.fromkeys(tags))
    return tags


_T = TypeVar("_T", Decision, Option, Links)
_SETTERS: dict[type, tuple[Any, ...]] = {
    cls: tuple(cls.__dict__[name].__set__ for name in cls.__dataclass_fields__)
    for cls in (Decision, Option, Links)
}


def trusted(cls: type[_T], *values: Any) -> _T:
    """An instance from values in field order, *without* validation.

    Only for values that were validated before: rows the store wrote, copies of a valid
    value with store-assigned fields. Building a :class:`Decision` this way costs ~2 µs
    instead of ~20 µs, which is most of a search's time.
    """
    obj = object.__new__(cls)
    for set_field, value in zip(_SETTERS[cls], values, strict=True):
        set_field(obj, value)
    return obj
