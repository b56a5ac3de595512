"""The fast ``round4`` and ``round2`` are ``round(x, 4)`` and ``round(x, 2)`` bit for bit, on
every kind of float."""

from __future__ import annotations

import math
import random
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from perfect21.planner._floats import round2, round4


def _same(x: float) -> None:
    for fast, places in ((round4, 4), (round2, 2)):
        got, want = fast(x), round(x, places)
        assert type(got) is float
        # bit for bit: also the sign of zero, and nan where round gives nan
        assert struct.pack("<d", got) == struct.pack("<d", want) or (
            math.isnan(got) and math.isnan(want)), (x, places, got, want)


def test_edges() -> None:
    edges = [0.0, -0.0, 5e-324, -5e-324, 1e-300, 4.9999e-5, 5e-5, 5.0001e-5, 1.5e-4,
             2.5e-4, 0.00015, 0.00025, 0.12345, 0.12335, 2.67505, 1.00005, 1.00015,
             9999999.99995, 9999999.99994, 1e7, math.nextafter(1e7, 0.0), 1e7 + 1, 1e15,
             1e300, 1.7976931348623157e308, math.inf, -math.inf, math.nan, -1.00005,
             -0.12345, 0.45 * 3.3, 2.2, 4.0, 0.34 * 12.7]
    for x in edges:
        _same(x)
        _same(math.nextafter(x, math.inf))
        _same(math.nextafter(x, -math.inf))
    for x in (0.005, 0.015, 0.125, 2.675, 99999.995, 1e7 - 0.005):  # round2's ties
        _same(x)


def test_ties_and_their_neighbours() -> None:
    rng = random.Random(21)
    for _ in range(10000):
        for scale in (1e4, 1e2):  # round4's and round2's
            # n + 0.5 units of the last place, the decimal ties, as the nearest doubles and
            # their neighbours (also negative)
            x = (rng.randrange(0, 10**11) + 0.5) / scale
            for y in (x, -x, math.nextafter(x, 0.0), math.nextafter(x, math.inf)):
                _same(y)
            # values whose scaled fraction sits at the fast path's cut-offs
            base = rng.randrange(0, 10**9)
            for frac in (0.4999, 0.5001, 0.49989999, 0.50010001, 0.5, 0.49999999, 0.50000001,
                         0.0, 0.99999):
                _same((base + frac) / scale)


def test_random_scores_and_magnitudes() -> None:
    rng = random.Random(4)
    for _ in range(50000):
        _same(rng.uniform(0.0, 40.0))  # the range of agent scores
        _same(rng.uniform(0.0, 1e-3))
        _same(rng.uniform(0.0, 1e7))
        _same(math.ldexp(rng.random(), rng.randrange(-1080, 1025)))


@settings(max_examples=3000)
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_any_float(x: float) -> None:
    _same(x)


@settings(max_examples=3000)
@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_any_bit_pattern(bits: int) -> None:
    _same(struct.unpack("<d", struct.pack("<Q", bits))[0])
