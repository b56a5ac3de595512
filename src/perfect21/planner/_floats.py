"""An exact fast path for ``round(x, 4)``, the rounding of every score in a plan.

``round(x, 4)`` is correctly rounded: CPython takes the exact binary value of ``x``, rounds
it half-to-even to 4 decimals (``_Py_dg_dtoa``) and reads the decimal back as the nearest
double (``_Py_dg_strtod``). That costs ~2,900 instructions a call; the plain float arithmetic
below ~1,650 (−1,250 a call, some 14 calls in a plan with a full team and six rejections).

Why it is exact, for ``0 < x < 1e7`` (anything else goes to ``round``):

* ``y = x * 1e4`` is the exact product ``p = x·10⁴`` rounded once, so
  ``|y − p| <= ulp(y)/2 <= 2⁻¹⁷`` (``y < 1e11 < 2³⁷``, so ``ulp(y) <= 2³⁶⁻⁵² = 2⁻¹⁶``).
* ``f = y % 1.0`` is exact for ``y >= 0`` (fmod is exact, and no correction is added for a
  positive operand), so ``k = y − f`` is ``floor(y)``, an integer, also exact.
* If ``f < 0.4999``, then ``p ∈ [k − 2⁻¹⁷, k + 0.4999 + 2⁻¹⁷] ⊂ (k − ½, k + ½)``: the
  integer nearest to ``p`` is ``k``, with no tie. If ``f > 0.5001``, then
  ``p ∈ [k + 0.5001 − 2⁻¹⁷, k + 1 + 2⁻¹⁷] ⊂ (k + ½, k + 1½)``: it is ``k + 1`` (``k + 1.0``
  is exact: ``k < 2³⁷``). Otherwise ``p`` may be at or near a tie and ``round`` decides.
* The result ``n / 1e4`` (``n`` an integer below ``2⁵³``, ``1e4`` exact) is one correctly
  rounded IEEE division: the double nearest to ``n/10⁴``, ties to even, which is exactly
  what ``_Py_dg_strtod`` returns for the decimal string ``round`` builds.
* The sign: ``x > 0`` gives ``+0.0`` where the result underflows to zero, as ``round`` does.
  ``nan``, infinities, zeros and negative values fail ``0.0 < x`` and go to ``round``.

``tests/planner/test_floats.py`` checks it against ``round`` on random, tie and edge values.
"""

from __future__ import annotations

__all__ = ["round4"]


def round4(x: float) -> float:
    """``round(x, 4)`` of a float, bit for bit (see the module docstring for the proof).
    Scores are always floats (sums started at ``0.0``); an int would come back as a float."""
    if 0.0 < x < 1e7:
        y = x * 1e4
        f = y % 1.0
        if f < 0.4999:
            return (y - f) / 1e4
        if f > 0.5001:
            return (y - f + 1.0) / 1e4
    return round(x, 4)
