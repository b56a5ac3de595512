"""Exact fast paths for ``round(x, 4)`` (every score in a plan) and ``round(x, 2)`` (its hours).

``round(x, n)`` is correctly rounded: CPython takes the exact binary value of ``x``, rounds
it half-to-even to 4 decimals (``_Py_dg_dtoa``) and reads the decimal back as the nearest
double (``_Py_dg_strtod``). That costs ~2,900 instructions a call; the float arithmetic of
``round4`` ~1,550 with the call (−1,350 a call, 11-13 calls in a plan with a full team and
six rejections). ``round2`` is the same with 10² for 10⁴.

Why ``round4`` is exact, for ``0 < x < 1e7`` (anything else goes to ``round``), with IEEE 754
doubles rounding to nearest, which CPython requires since 3.11 (for ``round2`` every bound
below is smaller: ``y < 1e9 < 2³⁰``, ``|y − p| <= 2⁻²³``):

* ``y = x * 1e4`` is the exact product ``p = x·10⁴`` rounded once, so
  ``|y − p| <= ulp(y)/2 <= 2⁻¹⁷`` (``y < 1e11 < 2³⁷``, so ``ulp(y) <= 2³⁶⁻⁵² = 2⁻¹⁶``).
* ``_SHIFT = 1.5·2⁵²``: the doubles in ``[2⁵², 2⁵³)`` are exactly the integers, so for
  ``0 <= y < 2⁵¹`` the sum ``y + _SHIFT`` rounds to ``_SHIFT + n``, ``n`` the integer
  nearest to ``y``; subtracting ``_SHIFT`` again is exact, so ``r = n`` (``+0.0`` for
  ``y < ½``). ``y − r`` is exact too (``r = 0``, or ``r/2 <= y <= 2r``: Sterbenz).
* If ``|y − r| < 0.4999``, then ``p ∈ (r − 0.4999 − 2⁻¹⁷, r + 0.4999 + 2⁻¹⁷) ⊂ (r − ½, r + ½)``:
  the integer nearest to ``p`` is ``r``, with no tie. Otherwise ``p`` may be at or near a
  tie, and ``round`` decides.
* The result ``r / 1e4`` (``r`` an integer below ``2⁵³``, ``1e4`` exact) is one correctly
  rounded IEEE division: the double nearest to ``r/10⁴``, ties to even, which is exactly
  what ``_Py_dg_strtod`` returns for the decimal string ``round`` builds.
* The sign: ``x > 0`` gives ``+0.0`` where the result is zero, as ``round`` does. ``nan``,
  infinities, zeros and negative values fail ``0.0 < x`` and go to ``round``.

``tests/planner/test_floats.py`` checks it against ``round`` on random, tie and edge values.
"""

from __future__ import annotations

__all__ = ["round2", "round4"]

_SHIFT = 6755399441055744.0  # 1.5 * 2**52: adding and subtracting it rounds to an integer


def round4(x: float) -> float:
    """``round(x, 4)`` of a float, bit for bit (see the module docstring for the proof).
    Scores are always floats (sums started at ``0.0``); an int would come back as a float.
    The tests are the module docstring's ``0 < x < 1e7`` and ``|y − r| < 0.4999``, written
    as two plain comparisons each, with ``y − r`` kept in ``y``: −50 instructions a call
    against the chained comparisons (no stack shuffling, no temporary kept)."""
    if x > 0.0 and x < 1e7:
        y = x * 1e4
        r = (y + _SHIFT) - _SHIFT
        y -= r
        if y < 0.4999 and y > -0.4999:
            return r / 1e4
    return round(x, 4)


def round2(x: float) -> float:
    """``round(x, 2)`` of a float, bit for bit (the proof of ``round4``, with 10² for 10⁴)."""
    if x > 0.0 and x < 1e7:
        y = x * 100.0
        r = (y + _SHIFT) - _SHIFT
        y -= r
        if y < 0.4999 and y > -0.4999:
            return r / 100.0
    return round(x, 2)
