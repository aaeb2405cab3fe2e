"""refopt.proofs: the claim registry and its sympy derivations with numeric cross-checks.

Installed from the repository's ``proofs/`` folder as ``refopt.proofs``. Entry points:

* :func:`run_all` (``rule=None``) -> list of :class:`ClaimResult` (fields ``claim_id, rule,
  title, status, expected_status, seconds, detail, source``), used by ``refopt report``;
* :func:`all_claims`, :func:`get_claim`, :func:`run_claim`, :func:`mutate`;
* ``refopt prove`` (:mod:`refopt.proofs.cli`) prints the table and renders ``proofs/*.md``.
"""
from .registry import (ERROR, NUMERIC, OPEN, PROVED, REFUTED, STATUSES, Claim, ClaimResult, Verdict,
                       all_claims, get_claim, mutate, run_all, run_claim)

__all__ = ["ERROR", "NUMERIC", "OPEN", "PROVED", "REFUTED", "STATUSES", "Claim", "ClaimResult",
           "Verdict", "all_claims", "get_claim", "mutate", "run_all", "run_claim"]
