"""refopt report --config with a user's own rule or objective (issue 17): an experiment block
names ``rule_under_test`` (and, in adams_rate, ``objective``) by import path; the report says
which was used. The helper module is tests/report_user_rules.py (by import path, nothing
registered)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from refopt.experiments import adams_rate as S
from refopt.experiments import alphaadam_masks as A

HERE = Path(__file__).resolve().parent


@pytest.fixture
def user_module(monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    return "report_user_rules"


def test_a_config_runs_alphaadam_masks_on_a_user_rule_and_the_report_names_it(
        tmp_path, user_module):
    from refopt.cli import main

    path = tmp_path / "user_alpha.json"
    path.write_text(json.dumps({"base": "tiny", "alphaadam_masks": {
        "rule_under_test": f"{user_module}:CopyAlphaAdam"}}))
    out = tmp_path / "r"
    assert main(["report", "--out", str(out), "--config", str(path), "--rules", "alphaadam",
                 "--skip-proofs", "--quiet"]) == 0
    text = (out / "report.md").read_text()
    assert f"Rule under test: `{user_module}:CopyAlphaAdam`" in text
    summary = json.loads((out / "report.json").read_text())
    mine = next(e for e in summary["experiments"] if e["name"] == "alphaadam_masks")
    assert mine["numbers"]["rule_under_test"] == f"{user_module}:CopyAlphaAdam"
    assert all(v["summary"].startswith(f"rule under test {user_module}:CopyAlphaAdam: ")
               for v in mine["verdicts"])
    # The copy of AlphaAdam got the alpha_rule / first_step variants: every number is the
    # built-in rule's, so are the verdicts.
    builtin = A.run("tiny", tmp_path / "builtin")
    assert mine["numbers"]["budget_loss"] == builtin.numbers["budget_loss"]
    assert mine["numbers"]["stationary_floor"] == builtin.numbers["stationary_floor"]
    assert [v["verdict"] for v in mine["verdicts"]] == [v.verdict for v in builtin.verdicts]
    assert builtin.numbers["rule_under_test"] == "alphaadam"
    assert list((out / "results").glob("alphaadam_masks_user_alpha_report_user_rules_Copy*"))


def test_a_user_rule_without_alphaadams_options_runs_its_defaults(user_module):
    # Lion-like rules have no alpha_rule or first_step: the variants are its defaults.
    variants = A.variants(f"{user_module}:FixedLrAdamS")
    assert variants["alphaadam:none"] == (f"{user_module}:FixedLrAdamS", {})
    assert A.variants()["alphaadam:none"] == ("alphaadam", {"alpha_rule": "none"})


def test_adams_rate_on_a_user_objective_and_a_user_rule(tmp_path, monkeypatch, user_module):
    base = {**S.CONFIGS["tiny"], "Ts": [100, 300, 1000]}
    monkeypatch.setitem(S.CONFIGS, "u_builtin", base)
    monkeypatch.setitem(S.CONFIGS, "u_objective",
                        {**base, "objective": f"{user_module}:shifted_cosh"})
    monkeypatch.setitem(S.CONFIGS, "u_rule",
                        {**base, "rule_under_test": f"{user_module}:FixedLrAdamS"})
    builtin = S.run("u_builtin", tmp_path)
    same = S.run("u_objective", tmp_path)
    # The user factory builds the same cosh from the block's constants: the same fit.
    assert same.numbers["objective"] == f"{user_module}:shifted_cosh"
    assert same.numbers["fit_mean_grad_norm"] == builtin.numbers["fit_mean_grad_norm"]
    assert f"objective {user_module}:shifted_cosh" in same.verdict("S-rate").evidence
    # A rule that ignores the schedule's learning rate does not converge at the claimed rate,
    # and the verdict says which rule it is about.
    bad = S.run("u_rule", tmp_path)
    v = bad.verdict("S-rate")
    assert builtin.verdict("S-rate").verdict == "reproduced"
    assert v.verdict == "not reproduced"
    assert v.summary.startswith(f"rule under test {user_module}:FixedLrAdamS: ")
    assert bad.numbers["fit_mean_grad_norm"]["slope"] > -0.2
    assert {r.name for r in (tmp_path / "results").iterdir()} >= {
        "adams_rate_u_builtin_theorem.jsonl",
        "adams_rate_u_rule_theorem_report_user_rules_FixedLrAdamS_cosh.jsonl"}


def test_a_user_rule_without_betas_is_refused_by_the_rate_sweep(monkeypatch, user_module):
    # The schedule sets lr and betas: a rule without betas (sign descent) cannot follow it.
    import importlib

    import numpy as np

    from refopt.extend import define_rule

    cls = define_rule("sign_descent", init=lambda p: {}, defaults={"lr": 1e-3}, buffers=(),
                      step=lambda p, g, b, t, lr, h: (p - lr * np.sign(g), {}))
    monkeypatch.setattr(importlib.import_module(user_module), "SignDescent", cls, raising=False)
    with pytest.raises(ValueError, match=r"adams_rate\.rule_under_test "
                                         r"'report_user_rules:SignDescent' has no 'betas'"):
        S.rate_specs({**S.CONFIGS["tiny"], "rule_under_test": f"{user_module}:SignDescent"})
