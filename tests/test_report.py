"""The verdict's report points at the bug (issue 14): failures first, identical notes grouped,
where each buffer first leaves the tolerance with both values, hyperparameter patterns across
cases, ``ok*`` values, errors after the pointwise horizon apart, ``--failures-only``, colour and
progress only on a terminal, and the same content in ``--json``."""
from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import refopt
from refopt.cli import main as refopt_main
from refopt.verify import STATUS_ORDER, verify_cases, verify_rule
from refopt.verify.cli import _colour_wanted, terminal_progress

sys.path.insert(0, str(Path(__file__).parent / "ports"))
import casekit  # noqa: E402


class _Wrapped:
    """A refopt rule with one planted change applied after each step (a rule-like port)."""

    def __init__(self, rule_name, change, **hyper):
        self.rule = refopt.get_rule(rule_name, **hyper)
        self.buffers = self.rule.buffers
        self.change = change

    def init(self, params):
        return self.rule.init(params)

    def step(self, params, grads, state, *, lr=None):
        params, state = self.rule.step(params, grads, state, lr=lr)
        return self.change(params, state)


def _v_coefficient_off(params, state):
    # a wrong coefficient of v: exp_avg_sq 1e-6 too large at every step
    return params, state._replace(exp_avg_sq=tuple(v * (1 + 1e-6) for v in state.exp_avg_sq))


def _factory(change):
    return lambda **hyper: _Wrapped(hyper.pop("_rule", "adamx"), change, **hyper)


def test_per_buffer_divergence_points_at_the_wrong_coefficient():
    """v off by 1e-6 from step 1: the params leave the tolerance only at t=2, m never; the
    per-buffer lines say so, with both values."""
    case = casekit.make_case("adamx", n_steps=6)
    rep = verify_cases([case], _factory(_v_coefficient_off), rule="adamx", diagnose=False)
    table = rep.table()
    per_buffer = table.split("first divergence per buffer (golden vs port):")[1]
    line = [ln for ln in per_buffer.splitlines() if ln.startswith(f"  {case.case_id}")][0]
    assert "exp_avg within tolerance" in line and "exp_avg_sq t=1 exp_avg_sq." in line
    assert "param t=2 param." in line
    assert "golden " in line and "port " in line and "(rel 1.0e-06)" in line
    d = rep.to_dict()["cases"][0]
    assert d["buffers"]["exp_avg"] == "within tolerance"
    assert d["buffers"]["exp_avg_sq"]["step"] == 1 and d["buffers"]["param"]["step"] == 2


def test_status_order_puts_what_needs_attention_first():
    assert sorted(STATUS_ORDER, key=STATUS_ORDER.get) == ["FAIL", "ERROR", "adv", "ok*", "pass",
                                                          "n/a"]


def test_identical_notes_are_one_line():
    cases = [casekit.make_case("adamx", n_steps=4, seed=s) for s in range(4)]
    for k, c in enumerate(cases):
        c.case_id = f"adamx_c{k}_float64"
    rep = verify_cases(cases, lambda **hyper: refopt.get_rule("adams"), rule="adamx")
    notes = rep.table().split("notes:")[1].split("\n\n")[0].strip().splitlines()
    assert len(notes) == 1 and notes[0].strip().startswith("4 cases [FAIL]"), notes


def test_pattern_names_the_hyperparameter_that_separates_failures():
    """A port that drops weight decay fails exactly the cases with weight_decay != 0."""
    def no_decay(**hyper):
        return refopt.get_rule("adamx", **{**hyper, "weight_decay": 0.0})
    cases = []
    for k, wd in enumerate((0.0, 0.1, 0.0, 0.2)):
        c = casekit.make_case("adamx", n_steps=4, seed=k, weight_decay=wd)
        c.case_id = f"adamx_wd{k}_float64"
        cases.append(c)
    rep = verify_cases(cases, no_decay, rule="adamx", diagnose=False)
    assert [r.status for r in rep.results] == ["pass", "FAIL", "pass", "FAIL"]
    rows = [line.split()[0] for line in rep.table().splitlines()[3:7]]
    assert rows == ["adamx_wd1_float64", "adamx_wd3_float64", "adamx_wd0_float64",
                    "adamx_wd2_float64"]                             # failures first
    assert "every failing case has weight_decay != 0, every passing one weight_decay = 0" \
        in rep.table()
    assert "weight_decay != 0" in rep.to_dict()["pattern"]


def test_acceptable_rows_show_refopts_value_and_the_ports():
    case = casekit.make_case("adamx", n_steps=3)
    case.result = "acceptable"

    def nan_at_first_step(params, state):
        return [np.full_like(p, np.nan) for p in params], state
    rep = verify_cases([case], _factory(nan_at_first_step), rule="adamx", diagnose=False)
    assert rep.results[0].status == "ok*"
    assert "refopt gives " in rep.table() and "the port nan" in rep.table()


def test_errors_after_the_horizon_have_their_own_column():
    """Closed loop: after the horizon only the invariants count, so the pointwise error there
    is shown apart (rel ...) and does not enter max rel."""
    pytest.importorskip("numba", reason="numba is optional (extra refopt[numba])")
    rep = verify_rule("adams", "numba", cases="adams_official_rosenbrock4_float32")
    (row,) = [ln for ln in rep.table().splitlines() if ln.startswith("adams_official_rosen")]
    assert row.split()[1] == "pass" and row.rstrip().endswith("ok") and " rel " in row, row
    c = rep.results[0].comparison
    assert c.beyond_horizon_rel is not None
    assert rep.to_dict()["cases"][0]["max_rel_after_horizon"] == c.beyond_horizon_rel


def test_failures_only_colour_and_json(tmp_path, capsys):
    out = tmp_path / "r.json"
    code = refopt_main(["verify", "adams", "numpy", "--cases", "adams_paper_defaults_*",
                        "--failures-only", "--json", str(out)])
    text = capsys.readouterr().out
    assert code == 0 and "adams_paper_defaults_float64" not in text and "PASS: 2 passed" in text
    assert "\033[" not in text                                    # not a terminal
    data = json.loads(out.read_text())
    assert len(data["cases"]) == 2 and "pattern" in data           # --json keeps every case
    rep = verify_rule("adams", "numpy", cases="adams_paper_defaults_float64")
    assert "\033[32mpass\033[0m" in rep.table(colour=True)


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_colour_and_progress_only_on_a_terminal(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert _colour_wanted(_Tty()) and not _colour_wanted(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not _colour_wanted(_Tty())
    assert terminal_progress("x", stream=io.StringIO()) is None
    assert terminal_progress("x", quiet=True, stream=_Tty()) is None
    tty = _Tty()
    progress = terminal_progress("refopt verify adams", stream=tty)
    rep = verify_cases(refopt.verify.load_cases("adams", cases="adams_paper_defaults_*"),
                       "numpy", rule="adams", progress=progress)
    assert rep.passed
    shown = tty.getvalue()
    # labelled, with the case as the phase and the count (refopt._progress)
    assert "refopt verify adams [adams_paper_defaults_float32]: 0/2 cases" in shown
    assert "[adams_paper_defaults_float64]: 1/2 cases" in shown and "s left" in shown
    assert shown.endswith("\r\033[K")                              # the line is cleared


def test_option_values_are_typed_usage_errors(capsys):
    """A value for one of the rule's hyperparameters must be one the rule takes (issue 18):
    --option lr=abc used to deselect every case silently."""
    assert refopt_main(["verify", "adams", "numpy", "--option", "lr=abc"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["refopt verify: --option lr='abc': lr must be a real number, got 'abc'"]
    assert refopt_main(["verify", "adams", "numpy", "--variant", "bias_correction=maybe"]) == 2
    assert "bias_correction must be a bool" in capsys.readouterr().err
