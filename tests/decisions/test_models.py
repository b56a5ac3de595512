"""The decision value: validation names the field and the limit; ids are ULIDs."""

from __future__ import annotations

import re
import threading

import pytest

from perfect21._errors import ValidationError
from perfect21.decisions import Decision, Links, Option, Status
from perfect21.decisions._ids import IdGenerator, id_time_ms, new_id
from perfect21.decisions.models import LIMITS

from .conftest import sample


def test_missing_or_blank_title_is_rejected() -> None:
    with pytest.raises(ValidationError, match="title: must not be empty"):
        Decision(title="   ")
    with pytest.raises(ValidationError, match="title: missing"):
        Decision.from_dict({"context": "no title"})


def test_wrong_types_name_the_field() -> None:
    with pytest.raises(ValidationError, match="title: expected text, got int"):
        Decision(title=12)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="consequences: expected a list of text, got str"):
        Decision(title="t", consequences="just one")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"tags\[1\]|tags: 3"):
        Decision(title="t", tags=("ok", 3))  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="status: 'maybe' is not one of proposed"):
        Decision(title="t", status="maybe")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="number: expected a whole number"):
        Decision(title="t", number=-1)
    with pytest.raises(ValidationError, match="created: 'yesterday' is not an ISO 8601"):
        Decision(title="t", created="yesterday")


def test_oversized_fields_say_the_limit() -> None:
    limit = LIMITS["title"]
    with pytest.raises(ValidationError, match=f"title: too long .* the limit is {limit}"):
        Decision(title="x" * (limit + 1))
    with pytest.raises(ValidationError, match=r"context: too long .*the limit is 100,000"):
        Decision(title="t", context="x" * 100_001)
    with pytest.raises(ValidationError, match=r"tags: too many .*the limit is 32"):
        Decision(title="t", tags=[f"t{i}" for i in range(33)])
    with pytest.raises(ValidationError, match=r"consequences\[0\]: too long"):
        Decision(title="t", consequences=["c" * (LIMITS["item"] + 1)])


def test_tags_and_list_items_exclude_delimiters() -> None:
    """Whitespace in tags and the store's separator characters in list items are refused."""
    with pytest.raises(ValidationError, match="without spaces"):
        Decision(title="t", tags=["two words"])
    with pytest.raises(ValidationError, match="control characters"):
        Decision(title="t", consequences=["a\x1fb"])
    with pytest.raises(ValidationError, match="control characters"):
        Option("a\x1eb")


def test_lists_and_text_are_normalised() -> None:
    d = Decision(
        title="t",
        status="Accepted",  # type: ignore[arg-type]
        options=["A", {"name": "B", "pros": ["fast"], "cons": []}],  # type: ignore[list-item]
        tags=["db", "db", "ops"],
        created="2025-09-17T10:00:00",
    )
    assert d.status is Status.ACCEPTED
    assert d.options == (Option("A"), Option("B", ("fast",), ()))
    assert d.tags == ("db", "ops")
    assert d.created == "2025-09-17T10:00:00.000000Z"  # naive = UTC, stored form


def test_dict_round_trip() -> None:
    d = sample(links=Links(workflow_id="plan-1", supersedes=("01" + "A" * 24,)))
    again = Decision.from_dict(d.to_dict())
    assert again == d
    with pytest.raises(ValidationError, match="unknown field"):
        Decision.from_dict({**d.to_dict(), "colour": "red"})


def test_ids_are_sortable_unique_ulids() -> None:
    gen = IdGenerator()
    ids = gen.take(5000) + gen.take(3000)
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", i) for i in ids)
    # The text is the standard ULID encoding of (ms << 80 | random).
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    value = 0
    for char in ids[0]:
        value = value * 32 + alphabet.index(char)
    assert value >> 80 == id_time_ms(ids[0])


def test_ids_from_many_threads_never_collide() -> None:
    found: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        mine = [new_id() for _ in range(2000)]
        with lock:
            found.extend(mine)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(found)) == 16_000
