"""refopt.testing: the golden cases as one test each in a porter's own pytest run (issue 14).
The porter's test file is written to a temporary folder and run by a separate pytest."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import refopt
from refopt.testing import assert_conforms, golden_cases, golden_params

PORTER_TESTS = textwrap.dedent('''
    import importlib
    import pytest
    import refopt
    from refopt.testing import golden_params, assert_conforms

    mutants = importlib.import_module("refopt.verify.diagnose")

    def eps_inside_sqrt(**hyper):            # a port with one mistake
        rule = mutants.AdamSMutant(**hyper)
        rule.mistake = "eps_inside_sqrt"
        return rule

    def paper_form_only(lr, betas, eps, weight_decay):   # no bias_correction keyword
        return refopt.get_rule("adams", lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    @pytest.mark.parametrize("case", golden_params("adams", cases="adams_paper_de*_float64"))
    def test_mistaken(case):
        assert_conforms(case, eps_inside_sqrt)

    @pytest.mark.parametrize("case", golden_params("adams", cases="adams_*_defaults_float64"))
    def test_paper_form(case):
        assert_conforms(case, paper_form_only)
''')


def test_a_porters_pytest_run_has_one_test_per_case_and_the_verdict(tmp_path):
    (tmp_path / "test_port.py").write_text(PORTER_TESTS)
    done = subprocess.run([sys.executable, "-m", "pytest", "-v", "-rs", "-p", "no:cacheprovider",
                           str(tmp_path / "test_port.py")], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "test_mistaken[adams_paper_decay_float64] FAILED" in out
    assert "test_mistaken[adams_paper_defaults_float64] FAILED" in out
    assert "diagnosis: matches known mistake: eps inside the square root" in out
    assert "test_paper_form[adams_paper_defaults_float64] PASSED" in out
    # the official-code form needs bias_correction=True, which this port cannot take: skipped
    assert "test_paper_form[adams_official_defaults_float64] SKIPPED" in out
    assert "the port takes no parameter 'bias_correction'" in out
    assert "2 failed, 1 passed, 1 skipped" in out


def test_golden_cases_selects_like_verify_and_params_carry_the_case_id():
    cases = golden_cases("adamnx", dtype="float32", cases="adamx_official_d*")
    assert [c.case_id for c in cases] == ["adamx_official_decay_float32",
                                          "adamx_official_defaults_float32"]
    params = golden_params("adamx", dtype="float32", cases="adamx_official_d*")
    assert [p.id for p in params] == [c.case_id for c in cases]


def test_assert_conforms_returns_the_result_or_raises_the_report():
    (case,) = golden_cases("adams", cases="adams_paper_defaults_float64")
    assert assert_conforms(case, refopt.get_rule("adams")).status == "pass"
    with pytest.raises(AssertionError, match="FAIL") as info:
        assert_conforms(case, lambda **hyper: refopt.get_rule("adamx"))
    assert "first divergence" in str(info.value)
