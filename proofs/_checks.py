"""Small shared helpers for the checkers: exact sympy tests and comparison with printed digits."""
from __future__ import annotations

import math
import re
from typing import Iterable

import sympy as sp


def is_zero(expr) -> bool:
    """True when sympy shows ``expr`` is identically 0 (simplify, then expand as a fallback)."""
    e = sp.simplify(expr)
    if e == 0:
        return True
    if sp.expand(sp.together(sp.expand(e))) == 0:
        return True
    # powers with symbolic exponents: b**(t-1) -> b**t / b, then rational-function cancellation
    e = sp.expand_power_exp(sp.expand(expr))
    return sp.cancel(sp.together(e)) == 0 or sp.simplify(e) == 0


def sign_is(expr, sign: str) -> bool:
    """True when sympy's assumptions *decide* the sign of ``expr`` (no numeric sampling)."""
    e = sp.simplify(expr)
    attr = {"positive": "is_positive", "nonnegative": "is_nonnegative",
            "negative": "is_negative", "nonpositive": "is_nonpositive"}[sign]
    return bool(getattr(e, attr))


_PRINTED = re.compile(r"^\s*([-+]?[0-9][0-9,]*\.?[0-9]*)(?:e([-+]?[0-9]+))?\s*([kMG%]?)\s*$")


def printed_value(text: str) -> tuple[float, float]:
    """The value of a number as printed in a spec and half a unit in its last printed place.

    Accepts ``"0.5000251258"``, ``"9.995e-2"``, ``"9,950.4"``, ``"4.60 M"``, ``"63.5%"``.
    """
    m = _PRINTED.match(text)
    if not m:
        raise ValueError(f"cannot parse printed number {text!r}")
    mant, exp, suffix = m.group(1).replace(",", ""), int(m.group(2) or 0), m.group(3)
    decimals = len(mant.split(".")[1]) if "." in mant else 0
    scale = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "%": 1e-2}[suffix] * 10.0 ** exp
    return float(mant) * scale, 0.5 * 10.0 ** (-decimals) * scale


def matches_printed(value: float, text: str) -> bool:
    """``value`` rounds to the printed ``text`` (within half a unit of its last digit)."""
    target, half = printed_value(text)
    return math.isfinite(value) and abs(value - target) <= half * (1 + 1e-9) + 1e-300


def table_checks(rows: Iterable[tuple[str, float, str]]) -> list[tuple[bool, str]]:
    """[(ok, message)] for rows (label, computed, printed)."""
    out = []
    for label, value, text in rows:
        ok = matches_printed(value, text)
        out.append((ok, f"{label}: computed {value:.10g} {'rounds to' if ok else 'does NOT round to'}"
                        f" printed {text}"))
    return out


def rel_err(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


def generic_branch(expr):
    """Replace every Piecewise by its first branch whose condition is not an equality.

    sympy's geometric sums come back as Piecewise((t, Eq(c, 1)), (closed form, True)) or, for
    series, Piecewise((closed form, Abs(r) < 1), (Sum(...), True)). The claims here have
    0 < c < 1 (ratio != 1, |ratio| < 1, stated in each derivation), so the generic closed form is
    the branch that applies.
    """
    def pick(pw):
        for branch in pw.args:
            if not isinstance(branch.cond, sp.Equality):
                return branch.expr
        return pw.args[-1].expr
    return expr.replace(lambda e: isinstance(e, sp.Piecewise), pick)


def sign_of(expr, var, depth: int = 3) -> int | None:
    """+1 / -1 when the sign of ``expr`` for ``var`` > 0 is established exactly, else None.

    Rules, each exact: sympy's assumptions; products and quotients multiply signs; a power with a
    positive base is positive; a sum of terms of one sign has that sign; and the monotonicity
    argument "f(0+) = 0 and f' has sign s on var > 0, so f has sign s" (used for 1 - exp(-x)).
    """
    e = sp.factor(sp.powsimp(expr))
    if e.is_positive:
        return 1
    if e.is_negative:
        return -1
    if e.is_Mul:
        signs = [sign_of(f, var, depth) for f in e.args]
        if None in signs:
            return None
        return int(math.prod(signs))
    if e.is_Pow:
        sb = sign_of(e.base, var, depth)
        if sb == 1:
            return 1
        if sb == -1 and e.exp.is_integer:
            return -1 if e.exp.is_odd else (1 if e.exp.is_even else None)
        return None
    if e.is_Add:
        signs = {sign_of(a, var, depth) for a in e.args}
        if len(signs) == 1 and None not in signs:
            return signs.pop()
    if depth > 0 and e.has(var):
        at0 = sp.limit(e, var, 0, "+")
        if at0 == 0:
            return sign_of(sp.diff(e, var), var, depth - 1)
    return None
