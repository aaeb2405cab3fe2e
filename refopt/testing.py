"""The golden cases as tests of a porter's own pytest suite: one test per case, the verdict as
the failure message.

.. code-block:: python

    import pytest
    from refopt.testing import golden_params, assert_conforms
    from mypackage import MyAdamS            # a torch.optim class, an optax factory, ...

    @pytest.mark.parametrize("case", golden_params("adams", dtype="float32"))
    def test_golden(case):
        assert_conforms(case, MyAdamS)

A case the port cannot express (a keyword it does not take, another declared variant) is
skipped with the reason; a failing case fails with refopt's report of it (first divergence,
where each buffer leaves the tolerance, the diagnosis). pytest is imported only by the two
functions that need it.
"""
from __future__ import annotations

from typing import Any, Mapping

from .verify import NOT_RUN, CaseResult, load_cases, verify_cases

__all__ = ["golden_cases", "golden_params", "assert_conforms"]


def golden_cases(rule: str, *, dtype: str | None = None, cases: str = "*",
                 directory: Any = None) -> list:
    """The committed golden cases of ``rule`` (``GoldenCase`` objects, sorted by id), as
    ``refopt verify RULE`` selects them: ``dtype`` ``"float32"``/``"float64"``/None, ``cases``
    an fnmatch pattern on case ids, ``directory`` another suite."""
    return sorted(load_cases(rule, dtype=dtype, cases=cases, directory=directory),
                  key=lambda c: c.case_id)


def golden_params(rule: str, **selection) -> list:
    """:func:`golden_cases` as ``pytest.param`` objects whose test id is the case id (so
    ``pytest -k adams_paper_decay`` selects a case)."""
    import pytest

    return [pytest.param(case, id=case.case_id) for case in golden_cases(rule, **selection)]


def assert_conforms(case, port: Any, *, options: Mapping | None = None,
                    variant: Mapping | None = None, strict: bool = False,
                    diagnose: bool = True) -> CaseResult:
    """Run one golden case through ``port`` (anything ``refopt verify`` takes) and raise
    ``AssertionError`` with refopt's report unless it passes (``pass``, ``ok*`` or an advisory
    ``adv``). A case the port cannot express is ``pytest.skip``-ped with the reason. Returns
    the :class:`~refopt.verify.CaseResult`."""
    report = verify_cases([case], port, options=options, variant=variant, strict=strict,
                          diagnose=diagnose)
    result = report.results[0]
    if result.status == NOT_RUN:
        import pytest

        pytest.skip(f"{case.case_id}: {result.message}")
    if not result.ok:
        raise AssertionError(f"{case.case_id}: {result.status}\n{report.table()}")
    return result
