"""Exactness of the build phase's fast paths: ``is_normalized`` against ``normalize_request``
(for every code point), ``plan_id`` against the plain one-call BLAKE2b of the joined text,
and values built as drafts against the classes' own ``__init__``."""

from __future__ import annotations

import math
import random
import sys

import pytest

from perfect21._digest import blake2b
from perfect21.planner import Planner, is_normalized
from perfect21.planner._floats import round2
from perfect21.planner.models import STAGE_ORDER, Plan, Stage, StageMode, Task
from perfect21.planner.text import normalize_request
from perfect21.planner.workflow import _TASK_HOURS, plan_id

from .conftest import built_as_draft

ALL_CHARS = [chr(c) for c in range(sys.maxunicode + 1)]


def test_isprintable_is_false_for_every_split_whitespace_but_the_space() -> None:
    """The claim ``is_normalized`` rests on, for all code points of this Python's Unicode."""
    whitespace = [c for c in ALL_CHARS if len(f"a{c}b".split()) == 2]
    assert " " in whitespace and "\u3000" in whitespace and "\x1f" in whitespace
    assert [c for c in whitespace if c.isprintable()] == [" "]


@pytest.mark.parametrize("text", [
    "", " ", "a", "a b", " a", "a ", "a  b", "a\tb", "a\nb", "实现 用户", "实现\u3000用户",
    "a\u200bb", "a\xa0b", "a\x85b", "a\u2028b", "a\x1cb", "\ud800", "a \ud800 b", "x" * 300,
])
def test_is_normalized_matches_normalize_request(text: str) -> None:
    assert is_normalized(text) <= (normalize_request(text) == text)
    if text.isprintable():
        assert is_normalized(text) == (normalize_request(text) == text)


def test_is_normalized_on_every_code_point_and_random_texts() -> None:
    """Never True for a text that normalising would change; True for every printable one
    that it would not."""
    for c in ALL_CHARS:
        for text in (c, f"a{c}b"):
            same = normalize_request(text) == text
            assert not is_normalized(text) or same, repr(text)
            if text.isprintable():
                assert is_normalized(text) == same, repr(text)
    rng = random.Random(21)
    alphabet = [" ", " ", " ", "\t", "\n", "\u3000", "\xa0", "\u200b", "\x1c", "\x85", "a", "b",
                "实", "é", "😀"]
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(8)))
        same = normalize_request(text) == text
        assert not is_normalized(text) or same, repr(text)
        if text.isprintable():
            assert is_normalized(text) == same, repr(text)


def test_is_normalized_is_exact_for_ascii() -> None:
    rng = random.Random(7)
    alphabet = [chr(c) for c in range(128)] + [" "] * 40 + ["a"] * 40
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(12)))
        assert is_normalized(text) == (normalize_request(text) == text), repr(text)
    for c in map(chr, range(128)):
        for text in (c, f"a{c}b", f"{c}{c}", f"a {c}"):
            assert is_normalized(text) == (normalize_request(text) == text), repr(text)


def _plain_plan_id(request: str, version: str, options: str) -> str:
    """The plan id as first written: one BLAKE2b call on the joined text."""
    data = "\0".join((request, version, options)).encode("utf-8", "replace")
    return "plan-" + blake2b(data, digest_size=8).hexdigest()[:16]


def test_plan_id_equals_the_plain_hash() -> None:
    """Any text (lone surrogates, NULs, long), several catalogs and options interleaved (the
    encoded tail is kept for the last ones), equal strings that are distinct objects."""
    rng = random.Random(5)
    alphabet = ["a", " ", "\0", "实", "é", "😀", "\ud800", "\udfff", "\n", "-"]
    versions = ["", "v1", "0123456789abcdef", "\ud800v", "实"]
    options = ["", "complex=5:8;medium=3:6;simple=1:3", "x\0y", "\udc80"]
    for _ in range(3_000):
        size = rng.choice((0, 1, 5, 127, 128, 129, 300, 3000))
        request = "".join(rng.choice(alphabet) for _ in range(size))
        version = rng.choice(versions)
        if rng.random() < 0.5:
            version = "".join(list(version))  # a new object (when 2+ chars), equal to an old one
        option = rng.choice(options)
        assert plan_id(request, version, option) == _plain_plan_id(request, version, option)
    assert plan_id("a", "v") == _plain_plan_id("a", "v", "")


def test_planner_plan_of_unnormalised_text_is_the_normalised_plan(
    builtin_planner: Planner,
) -> None:
    uncached = Planner(builtin_planner.catalog, cache_entries=0)
    text = "实现用户登录功能，使用JWT认证 and a REST API"
    plan = uncached.plan(text)
    assert plan.request == text
    for variant in (f" {text}", f"{text} ", text.replace(" ", "  "), text.replace(" ", "\n"),
                    text.replace(" ", "\u3000")):
        assert uncached.plan(variant) == plan
    assert uncached.plan(text + "\u200b").request == text + "\u200b"  # not whitespace
    for empty in ("", " ", "\n\t\u3000"):
        with pytest.raises(Exception, match="request is empty"):
            uncached.plan(empty)


def test_cached_planner_hits_with_and_without_normalising(builtin_planner: Planner) -> None:
    planner = Planner(builtin_planner.catalog, cache_entries=4)
    plan = planner.plan("add a login page")
    assert planner.plan("add a login page") is plan
    assert planner.plan("add  a login page ") is plan
    assert planner.cache_size == 1


def test_drafts_build_equal_values() -> None:
    task = built_as_draft(Task, "implement.x", "x", "implement", "brief", ("design.y",), 1.5)
    assert type(task) is Task
    assert task == Task("implement.x", "x", "implement", "brief", ("design.y",), 1.5)
    stage = built_as_draft(Stage, "implement", "goal", StageMode.SEQUENTIAL, ("x",), (task,),
                           True, None)
    assert type(stage) is Stage and stage == Stage("implement", "goal", StageMode.SEQUENTIAL,
                                                   ("x",), (task,), True, None)
    with pytest.raises(AttributeError):
        task.brief = "other"  # type: ignore[misc]
    assert "Draft" not in repr(stage) and STAGE_ORDER[1] == stage.name


def _same_float(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) ==
                                                 math.copysign(1, b))


def test_round2_is_round_to_two_places() -> None:
    """Random values of every magnitude, decimal ties (x.xx5) and their neighbours, sums of
    task hours, zeros, negatives, huge values, nan and infinities."""
    rng = random.Random(2)
    values = [0.0, -0.0, 1e-300, 5e-324, 0.005, 0.015, 0.125, 0.375, 2.675, 1.005, 1e7 - 0.005,
              9999999.995, 1e7, 1e9, 1e300, -1.005, -0.004, math.inf, -math.inf, math.nan,
              sys.float_info.max]
    hours = [v for by_stage in _TASK_HOURS.values() for v in by_stage.values()]
    for _ in range(20_000):
        values.append(sum(rng.choice(hours) for _ in range(rng.randrange(1, 33))))
        values.append(rng.uniform(0, 10) ** rng.uniform(-3, 8))
        tie = rng.randrange(0, 10**7) / 100 + 0.005  # the double nearest a decimal tie
        values += [tie, math.nextafter(tie, 0), math.nextafter(tie, math.inf), -tie]
        values.append(rng.randrange(0, 10**9) / 100)
    for x in values:
        assert _same_float(round2(x), round(x, 2)), repr(x)


def test_build_plan_values_are_complete_exact_instances(builtin_planner: Planner) -> None:
    """build_plan inlines the fast constructors: every task and stage of a plan must be an
    exact Task / Stage with every field set, equal to the class's own constructor's value,
    and immutable."""
    texts = ["实现用户登录功能，使用JWT认证", "add a login page",
             "Migrate the billing service from MySQL to PostgreSQL, with a rollback plan, "
             "load tests, a security review, CI/CD pipeline changes and updated docs"]
    for text in texts:
        plan = builtin_planner.plan(text)
        assert type(plan) is Plan
        for stage in plan.stages:
            assert type(stage) is Stage and type(stage.mode) is StageMode
            assert stage == Stage(*[getattr(stage, f) for f in Stage._fields])
            for task in stage.tasks:
                assert type(task) is Task
                assert task == Task(*[getattr(task, f) for f in Task._fields])
                with pytest.raises(AttributeError):
                    task.brief = "x"  # type: ignore[misc]
            with pytest.raises(AttributeError):
                stage.gate = None  # type: ignore[misc]
        assert Plan.from_dict(plan.to_dict()) == plan
