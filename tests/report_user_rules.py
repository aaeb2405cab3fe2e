"""Helper module for tests/test_report_user_rules.py (imported by path "report_user_rules:..."
with tests/ put on sys.path): a user rule and a user objective for the report's experiments,
written with the public extension API only (nothing is registered)."""
from __future__ import annotations

from refopt.objectives import make_objective
from refopt.rules import AlphaAdam, AdamS


class CopyAlphaAdam(AlphaAdam):
    """refopt's AlphaAdam under another name: the same numbers, so a report run on it must give
    the built-in rule's verdicts and measurements."""

    name = "copy_alphaadam"


class FixedLrAdamS(AdamS):
    """AdamS that ignores the scheduled learning rate and always steps with 0.05: its iterates
    hover at a noise floor of size O(0.05), so the average gradient norm does not fall with T
    (a planted failure of the rate claim)."""

    name = "fixed_lr_adams"

    def scalars(self, t, lr):
        return super().scalars(t, 0.05)


def shifted_cosh(**constants):
    """sum_i cosh(x_i) built by refopt's factory: a user objective factory taking the block's
    constants (an import path "report_user_rules:shifted_cosh")."""
    return make_objective("cosh", **constants)
