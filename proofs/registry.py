r"""The claim registry: every checkable fact of the specs as a proof obligation with a verdict.

A :class:`Claim` holds the *claimed* statement as data (``Claim.data``: the constants, sympy
expressions and printed table values of the spec) and two checkers that read only that data:

* ``derivation(data) -> Verdict``: the exact argument, done with sympy (simplification to 0,
  factorisation, sums of squares, exact limits and series, monotonicity by the sign of a
  derivative that sympy decides). It may answer ``undecided`` when sympy cannot settle a step.
* ``numeric(data) -> Verdict``: a float64 cross-check that runs the refopt reference
  (:func:`refopt.get_rule`, :func:`refopt.trajectory`) on random and adversarial inputs. Tight
  bounds are checked as equalities at their witness, loose ones as inequalities.

Because the checkers read the claim from ``data``, a mutated claim (:func:`mutate`: a constant or
a sign changed) is checked by the same code, and the tests show that it is rejected: no claim can
pass vacuously.

Status of a run (:class:`ClaimResult`):

``proved``
    the derivation holds exactly and the numeric check (if any) agrees;
``checked numerically only``
    no exact derivation (or sympy left it undecided), the numeric check holds;
``refuted``
    a checker found a counterexample, given in ``detail``;
``open``
    the claim cannot be decided here (e.g. AlphaAdam's withdrawn Theorem 3.5, whose statement is
    unknown); ``detail`` records the evidence that was gathered;
``error``
    a checker raised: a bug, never a verdict.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

PROVED = "proved"
NUMERIC = "checked numerically only"
REFUTED = "refuted"
OPEN = "open"
ERROR = "error"
STATUSES = (PROVED, NUMERIC, REFUTED, OPEN, ERROR)

HOLDS, FAILS, UNDECIDED = "holds", "fails", "undecided"


@dataclass(frozen=True)
class Verdict:
    """What one checker found: ``outcome`` in {holds, fails, undecided}, a one-line ``detail``
    and, for derivations, the ``steps`` that a reader can follow (rendered into proofs/*.md)."""

    outcome: str
    detail: str
    steps: tuple[str, ...] = ()


def holds(detail: str, steps: Sequence[str] = ()) -> Verdict:
    return Verdict(HOLDS, detail, tuple(steps))


def fails(detail: str, steps: Sequence[str] = ()) -> Verdict:
    return Verdict(FAILS, detail, tuple(steps))


def undecided(detail: str, steps: Sequence[str] = ()) -> Verdict:
    return Verdict(UNDECIDED, detail, tuple(steps))


def verdict_from(checks: Sequence[tuple[bool, str]], steps: Sequence[str] = ()) -> Verdict:
    """Combine named sub-checks: the first failing one becomes the verdict's detail."""
    for ok, what in checks:
        if not ok:
            return fails(what, steps)
    return holds("; ".join(what for _, what in checks), steps)


Checker = Callable[[Mapping[str, Any]], Verdict]


@dataclass(frozen=True)
class Claim:
    """One proof obligation.

    Attributes
    ----------
    id : str
        Spec label, e.g. ``"adamx.T2"``, ``"adams.A1"``, ``"alphaadam.B4"``.
    rule : str
        ``"adamx"``, ``"adams"`` or ``"alphaadam"``.
    title, statement_latex, statement_words : str
        The claim in a heading, in LaTeX and in plain words.
    source : str
        Where it comes from: the spec section and its label (paper, official code, Derived).
    expected_status : str
        The status this claim must reach (one of :data:`STATUSES` except ``error``).
    kind : str
        identity, inequality, limit, series, table, probability, definition, ...
    tight : bool
        True when the bound is attained (then the numeric check tests the equality).
    data : mapping
        The claimed constants, expressions and printed values; the only input of the checkers.
    derivation, numeric : callable or None
        The checkers (see the module docstring).
    open_reason : str
        Non-empty for a claim that cannot be decided here; its status is then ``open``.
    """

    id: str
    rule: str
    title: str
    statement_latex: str
    statement_words: str
    source: str
    expected_status: str
    kind: str
    tight: bool = False
    data: Mapping[str, Any] = field(default_factory=dict)
    derivation: Checker | None = None
    numeric: Checker | None = None
    open_reason: str = ""


@dataclass(frozen=True)
class ClaimResult:
    """The outcome of :func:`run_claim`; the fields used by ``refopt report`` are stable:
    ``claim_id, rule, title, status, expected_status, seconds, detail, source``."""

    claim_id: str
    rule: str
    title: str
    status: str
    expected_status: str
    seconds: float
    detail: str
    source: str
    kind: str = ""
    derivation: Verdict | None = None
    numeric: Verdict | None = None

    @property
    def as_expected(self) -> bool:
        return self.status == self.expected_status


def mutate(claim: Claim, **overrides: Any) -> Claim:
    """A copy of ``claim`` whose ``data`` has some entries replaced (for mutation tests)."""
    unknown = sorted(set(overrides) - set(claim.data))
    if unknown:
        raise KeyError(f"{claim.id}: no data entries {unknown}; has {sorted(claim.data)}")
    return dataclasses.replace(claim, data={**claim.data, **overrides})


def _safe(checker: Checker | None, data: Mapping[str, Any]) -> Verdict | None:
    if checker is None:
        return None
    return checker(data)


def run_claim(claim: Claim) -> ClaimResult:
    """Run both checkers of ``claim`` and decide its status (see the module docstring)."""
    start = time.perf_counter()
    deriv = num = None
    try:
        deriv = _safe(claim.derivation, claim.data)
        # an exact counterexample already decides the claim: the numeric check adds nothing
        if deriv is None or deriv.outcome != FAILS:
            num = _safe(claim.numeric, claim.data)
    except Exception as exc:  # a checker bug is reported, never hidden as a verdict
        status, detail = ERROR, f"{type(exc).__name__}: {exc}"
    else:
        status, detail = _decide(claim, deriv, num)
    return ClaimResult(claim_id=claim.id, rule=claim.rule, title=claim.title, status=status,
                       expected_status=claim.expected_status,
                       seconds=time.perf_counter() - start, detail=detail, source=claim.source,
                       kind=claim.kind, derivation=deriv, numeric=num)


def _decide(claim: Claim, deriv: Verdict | None, num: Verdict | None) -> tuple[str, str]:
    for label, v in (("derivation", deriv), ("numeric check", num)):
        if v is not None and v.outcome == FAILS:
            if claim.open_reason:
                return OPEN, f"{claim.open_reason} Evidence ({label}): {v.detail}"
            return REFUTED, f"{label}: {v.detail}"
    parts = [f"{label}: {v.detail}" for label, v in (("derivation", deriv), ("numeric", num))
             if v is not None]
    if claim.open_reason:
        return OPEN, " ".join([claim.open_reason, *parts])
    if deriv is not None and deriv.outcome == HOLDS:
        return PROVED, "; ".join(parts)
    if num is not None and num.outcome == HOLDS:
        return NUMERIC, "; ".join(parts)
    return OPEN, "; ".join(parts) or "no checker could decide the claim"


_MODULES = ("adamx_decay", "adams_bounds", "alphaadam_masks")
RULES = ("adamx", "adams", "alphaadam")


def all_claims(rule: str | None = None) -> list[Claim]:
    """Every registered claim in spec order, optionally only those of ``rule``."""
    import importlib

    if rule is not None and rule not in RULES:
        raise ValueError(f"rule must be one of {list(RULES)}, got {rule!r}")
    out: list[Claim] = []
    for name in _MODULES:
        module = importlib.import_module(f"{__package__}.{name}")
        out.extend(module.CLAIMS)
    ids = [c.id for c in out]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise RuntimeError(f"duplicate claim ids {dupes}")
    return [c for c in out if rule is None or c.rule == rule]


def get_claim(claim_id: str) -> Claim:
    for c in all_claims():
        if c.id == claim_id:
            return c
    raise KeyError(f"no claim {claim_id!r}; known: {[c.id for c in all_claims()]}")


def run_all(rule: str | None = None) -> list[ClaimResult]:
    """Run every claim (of ``rule``, if given) and return one :class:`ClaimResult` each."""
    return [run_claim(c) for c in all_claims(rule)]
