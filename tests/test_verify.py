"""``refopt verify`` / ``refopt compare``: metrics, adapters, diagnoses, file mode, CLI.

The ports under ``tests/ports/`` are small independent implementations (torch, optax, a
"foreign" numpy script that never imports refopt); the planted-mistake copies there must fail
with the mistake named. Most tests use small cases built here from ``refopt.trajectory``
(``tests/ports/casekit.py``); the ``suite`` tests run the committed golden suite.
"""
from __future__ import annotations

import json
from dataclasses import replace
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from refopt.cli import main as refopt_main
from refopt.verify import load_cases, verify_cases, verify_rule
from refopt.verify.adapters import NotApplicable, case_kwargs, make_port, run_case
from refopt.verify.compare import compare_trajectories, lre, ulp_distance, violation
from refopt.verify.diagnose import MISTAKES, _mutant, mistakes_for, replace_tolerance
from refopt.verify.files import compare_directory, port_case_id, replay_case, write_inputs

PORTS = Path(__file__).parent / "ports"
sys.path.insert(0, str(PORTS))
import casekit  # noqa: E402

RULES = ("adamx", "adams", "alphaadam")


def _cases(rule, dtypes=("float64", "float32"), **options):
    out = []
    for dt in dtypes:
        out.append(casekit.make_case(rule, dt, **options))
        out.append(casekit.make_case(rule, dt, closed_loop=True, schedule=True, seed=1, **options))
    return out


# -- metrics ------------------------------------------------------------------------------

def test_ulp_distance_counts_representable_values():
    one = np.array([1.0])
    assert ulp_distance(np.nextafter(one, 2), one)[0] == 1
    assert ulp_distance(np.array([-0.0]), np.array([0.0]))[0] == 0
    tiny = np.array([5e-324])
    assert ulp_distance(tiny, -tiny)[0] == 2                       # across zero
    f = np.float32
    a = np.array([1.0], f)
    assert ulp_distance(np.nextafter(a, f(0)), a)[0] == 1
    assert ulp_distance(np.array([np.nan]), np.array([np.nan]))[0] == 0
    assert ulp_distance(np.array([np.nan]), one)[0] == np.inf
    big = np.array([np.finfo(np.float64).max])
    assert ulp_distance(big, -big)[0] == 2.0 * (2 ** 63 - 2 ** 52 - 1)   # exact, no overflow


def test_lre_and_violation():
    e = np.array([1.0, 2.0])
    assert lre(e * (1 + 1e-6), e) == pytest.approx(6.0, abs=0.01)
    assert lre(e, e) == pytest.approx(15.95, abs=0.01)
    tol = {"mode": "allclose", "rtol": 1e-8, "atol": 0.0}
    assert np.all(violation(e * (1 + 2e-8), e, tol) > 1)
    assert np.all(violation(e * (1 + 5e-9), e, tol) <= 1)
    assert np.all(violation(np.nextafter(e, 3), e, {"mode": "bitwise"}) > 1)
    assert np.all(violation(np.nextafter(e, 3), e, {"mode": "max_ulp", "max_ulp": 1}) <= 1)


def test_first_divergence_respects_the_horizon():
    steps = np.arange(4)
    e = {"param": [np.zeros((4, 3))]}
    a = {"param": [np.zeros((4, 3))]}
    a["param"][0][3, 1] = 1.0                   # only after the horizon
    a["param"][0][2, 2] = 1e-3
    tol = {"mode": "allclose", "rtol": 0.0, "atol": 1e-6, "pointwise_horizon": 2}
    c = compare_trajectories(e, a, steps, tol, "float64")
    assert not c.passed and c.first_divergence.step == 2
    assert c.first_divergence.index == (2,) and c.first_divergence.name == "param.0"
    assert c.beyond_horizon_rel == np.inf      # measured, not judged
    a["param"][0][2, 2] = 0.0
    assert compare_trajectories(e, a, steps, tol, "float64").passed


# -- the reference and its mutants ----------------------------------------------------------

@pytest.mark.parametrize("rule", RULES)
def test_reference_passes_and_unplanted_mutant_is_the_reference(rule):
    cases = _cases(rule)
    assert verify_cases(cases, "numpy").passed
    for case in cases:
        rep = verify_cases([case], lambda **h: _mutant(case, "", **{}))
        assert rep.passed and rep.results[0].comparison.worst_ulp == 0


@pytest.mark.parametrize("rule", RULES)
def test_every_planted_mutant_is_diagnosed_as_itself_and_nothing_else(rule):
    case = casekit.make_case(rule, "float64")
    keys = [m.key for m in mistakes_for(case)]
    assert len(keys) == len(set(keys)) >= 6
    for mistake in mistakes_for(case):
        built = mistake.build(case)
        for mutant in (built if isinstance(built, list) else [built]):
            rep = verify_cases([case], lambda **h: mutant, rule=rule)
            res = rep.results[0]
            assert res.status == "FAIL", mistake.key
            assert res.diagnosis.keys == [mistake.key], (mistake.key, res.diagnosis.message)


def test_a_mistake_visible_only_after_the_horizon_is_named_by_the_final_loss(suite_ids):
    """A float32 case whose pointwise horizon is 0 (rounding alone parts trajectories there):
    the port matches "up to the horizon", fails final_loss after it, and the diagnosis names the
    mistake whose final loss the port has, flagged as the weaker, after-horizon evidence."""
    # As the file mode runs it: open loop on the reference's gradients (closed loop, the
    # mutant finds its own way to a final loss within tolerance of the golden one).
    case = replay_case(suite_ids["alphaadam_paper-v1_rosenbrock4_float32"])
    assert case.tolerance["pointwise_horizon"] == 0 and case.grads is not None
    mutant = _mutant(case, "alphaadam_mask_from_m_t")
    res = verify_cases([case], lambda **h: mutant, rule="alphaadam").results[0]
    assert res.status == "FAIL" and res.comparison.passed
    assert [r.id for r in res.invariants.failed] == ["final_loss"], res.message
    assert res.diagnosis.after_horizon and res.diagnosis.keys == ["alphaadam_mask_from_m_t"]
    assert res.diagnosis.message.startswith("after the pointwise horizon, the port's final loss")
    # The reference itself passes; a port whose final loss no mistake gives is said so.
    assert verify_cases([case], "numpy").passed
    import refopt

    def off(**hyper):   # another beta1: no known mistake's final loss (124x off at best)
        return refopt.get_rule("alphaadam", **{**hyper, "betas": (0.8, 0.999)})

    res = verify_cases([case], off, rule="alphaadam").results[0]
    assert res.status == "FAIL" and res.diagnosis.after_horizon and not res.diagnosis.matches
    assert "no known mistake gives the port's final loss" in res.diagnosis.message


def test_catalogue_names_every_mistake_of_the_issue():
    keys = {m.key for m in MISTAKES}
    assert {"eps_inside_sqrt", "adams_m_t_denominator", "missing_bias_correction",
            "extra_bias_correction", "wd_coupled", "wd_after_step",
            "alphaadam_mask_from_m_t"} <= keys


# -- configuration of ports ------------------------------------------------------------------

def test_case_kwargs_maps_names_and_refuses_what_the_port_cannot_express():
    case = casekit.make_case("adams", n_steps=2, bias_correction=True)
    kw = case_kwargs(case, {"learning_rate", "b1", "b2", "eps", "weight_decay",
                            "bias_correction"}, False)
    assert kw["learning_rate"] == case.hyper["lr"] and (kw["b1"], kw["b2"]) == (0.9, 0.95)
    with pytest.raises(NotApplicable, match="bias_correction"):
        case_kwargs(case, {"lr", "betas", "eps", "weight_decay"}, False)
    with pytest.raises(NotApplicable, match="--option bias_correction=False"):
        case_kwargs(case, {"lr", "betas", "eps", "weight_decay", "bias_correction"}, False,
                    {"bias_correction": False})


def test_function_port_and_not_applicable_cases():
    import refopt

    def step(params, grads, state, *, t, lr, hyper):
        rule = refopt.get_rule("adams", **hyper)
        state = rule.init(params) if state is None else state
        return rule.step(params, grads, state, lr=lr)

    cases = _cases("adams") + _cases("adams", ("float64",), bias_correction=True)
    assert verify_cases(cases, step).passed
    # --option fixes bias_correction: the other form's cases are not run, not failed.
    rep = verify_cases(cases, step, options={"bias_correction": True})
    assert {r.status for r in rep.results} == {"pass", "n/a"} and rep.exit_status == 0
    assert sum(r.status == "pass" for r in rep.results) == 2
    rep = verify_cases(cases[:1], step, options={"bias_correction": True})
    assert rep.exit_status == 2 and "not run" in rep.results[0].message


def test_rule_port_rebuilds_a_backend_rule_per_case():
    import refopt

    cases = _cases("adamx", ("float64",), weight_decay=0.0) + _cases("adamx", ("float64",))
    rep = verify_rule("adamx", refopt.get_rule("adamx"), cases=cases)
    assert rep.passed and len(rep.counted) == 4
    # A fixed, non-refopt object is used as is: the weight-decay cases fail.
    fixed = refopt.get_rule("adamx", **{**casekit.HYPER["adamx"], "weight_decay": 0.0})
    rep = verify_cases(cases, fixed, adapter="rule")
    rep_fixed = verify_cases(cases, type("Fixed", (), {"init": fixed.init, "step": fixed.step})())
    assert rep.passed  # refopt rule instance: rebuilt per case
    assert [r.status for r in rep_fixed.results] == ["pass", "pass", "FAIL", "FAIL"]
    assert rep_fixed.results[2].diagnosis is not None


# -- torch ports -----------------------------------------------------------------------------

TORCH_PORTS = [("adamx", "AdamX", {}), ("adams", "AdamS", {}),
               ("adams", "AdamS", {"bias_correction": True}), ("alphaadam", "AlphaAdam", {})]

TORCH_MISTAKES = [
    ("adamx", "AdamXEpsInsideSqrt", {}, "eps_inside_sqrt"),
    ("adamx", "AdamXExtraBiasCorrection", {}, "extra_bias_correction"),
    ("adams", "AdamSMtDenominator", {}, "adams_m_t_denominator"),
    ("adams", "AdamSCoupledDecay", {}, "wd_coupled"),
    ("adams", "AdamSIgnoresBiasCorrection", {"bias_correction": True}, "missing_bias_correction"),
    ("alphaadam", "AlphaAdamCautiousMask", {}, "alphaadam_mask_from_m_t"),
    ("alphaadam", "AlphaAdamDecayAfterStep", {}, "wd_after_step"),
    ("alphaadam", "AlphaAdamNoBiasCorrection", {}, "missing_bias_correction"),
]


@pytest.fixture(scope="module")
def torch_ports():
    pytest.importorskip("torch", reason="torch is optional (extra refopt[torch])")
    import torch_ports as module
    return module


@pytest.mark.parametrize("rule,name,options", TORCH_PORTS)
def test_torch_port_passes(torch_ports, rule, name, options):
    cases = _cases(rule, **options) + [casekit.invalid_case(rule, betas=(0.9, 1.0)),
                                       casekit.invalid_case(rule, lr=-1.0)]
    rep = verify_cases(cases, getattr(torch_ports, name))
    assert rep.passed, rep.table()
    assert all(r.status == "pass" for r in rep.results)
    # The state buffers were compared too (torch exposes optimizer.state[p]).
    assert "exp_avg.0" in rep.results[0].comparison.compared


@pytest.mark.parametrize("rule,name,options,key", TORCH_MISTAKES)
def test_torch_planted_mistake_fails_with_its_diagnosis(torch_ports, rule, name, options, key):
    rep = verify_cases([casekit.make_case(rule, **options)], getattr(torch_ports, name))
    res = rep.results[0]
    assert res.status == "FAIL" and rep.exit_status == 1
    assert res.diagnosis.keys == [key], res.diagnosis.message
    assert res.comparison.first_divergence is not None
    assert key in rep.table()


def test_torch_port_without_validation_fails_invalid_cases(torch_ports):
    cases = [casekit.make_case("adams"), casekit.invalid_case("adams", betas=(0.9, 1.0))]
    rep = verify_cases(cases, torch_ports.AdamSNoValidation)
    assert [r.status for r in rep.results] == ["pass", "FAIL"]
    assert "accepted an invalid case" in rep.results[1].message


def test_defaults_only_port_is_not_run_on_other_variants(torch_ports):
    cases = [casekit.make_case("alphaadam"), casekit.make_case("alphaadam", mask_source="m_t")]
    rep = verify_cases(cases, torch_ports.AlphaAdam)
    assert [r.status for r in rep.results] == ["pass", "n/a"]
    assert "mask_source" in rep.results[1].message and rep.exit_status == 0


def test_pytorch_optimizer_adams_is_a_different_algorithm():
    pytest.importorskip("torch", reason="torch is optional")
    po = pytest.importorskip("pytorch_optimizer",
                             reason="pytorch-optimizer is optional (extra refopt[compare])")
    rep = verify_cases(_cases("adams", ("float64",)), po.AdamS)
    assert rep.exit_status == 1
    for res in rep.results:
        assert res.status == "FAIL"
        assert res.comparison.first_divergence.step == 1
        msg = res.diagnosis.message
        assert "no known mistake matches" in msg
        assert "name collision" in msg and "2011.11152" in msg and "2505.16363" in msg
        assert "exp_avg_sq" in msg


# -- optax ports -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def optax_ports():
    pytest.importorskip("jax", reason="jax is optional (extra refopt[jax])")
    pytest.importorskip("optax", reason="optax is optional (extra refopt[jax])")
    import optax_ports as module
    return module


@pytest.mark.parametrize("rule,name,options", [("adamx", "adamx", {}), ("adams", "adams", {}),
                                               ("adams", "adams", {"bias_correction": True}),
                                               ("alphaadam", "alphaadam", {})])
def test_optax_port_passes(optax_ports, rule, name, options):
    cases = _cases(rule, **options) + [casekit.invalid_case(rule, betas=(0.9, 1.0))]
    rep = verify_cases(cases, getattr(optax_ports, name))
    assert rep.passed, rep.table()
    assert "exp_avg.0" in rep.results[0].comparison.compared


@pytest.mark.parametrize("rule,name,key", [
    ("adamx", "adamx_eps_inside_sqrt", "eps_inside_sqrt"),
    ("adams", "adams_m_t_denominator", "adams_m_t_denominator"),
    ("alphaadam", "alphaadam_cautious", "alphaadam_mask_from_m_t")])
def test_optax_planted_mistake_fails_with_its_diagnosis(optax_ports, rule, name, key):
    rep = verify_cases([casekit.make_case(rule)], getattr(optax_ports, name))
    assert rep.results[0].status == "FAIL", rep.results[0].message
    assert rep.results[0].diagnosis.keys == [key]


# -- file mode -------------------------------------------------------------------------------

def _foreign(directory, *extra):
    subprocess.run([sys.executable, str(PORTS / "foreign_adams.py"), str(directory), *extra],
                   check=True, timeout=120)


def test_file_mode_round_trip(tmp_path):
    cases = (_cases("adams") + _cases("adams", ("float64",), bias_correction=True)
             + [casekit.invalid_case("adams", lr=math.nan)])
    written = write_inputs(cases, tmp_path)
    assert written == [c.case_id for c in cases]
    meta = json.loads((tmp_path / port_case_id(cases[1].case_id) / "inputs.json").read_text())
    assert meta["replayed_closed_loop"] and meta["arrays"]["grad.0"]["shape"][0] == 12
    _foreign(tmp_path)
    rep = compare_directory("adams", tmp_path, cases)
    assert rep.passed, rep.table()
    assert "refused as required" in rep.results[-1].message
    _foreign(tmp_path, "--mistake", "m_t")
    rep = compare_directory("adams", tmp_path, cases)
    assert rep.exit_status == 1
    for res in rep.results[:-1]:
        assert res.status == "FAIL" and res.diagnosis.keys == ["adams_m_t_denominator"]
    # A case folder without output is an error, not a pass.
    for p in (tmp_path / port_case_id(cases[0].case_id) / "output").iterdir():
        p.unlink()
    rep = compare_directory("adams", tmp_path, cases)
    assert rep.results[0].status == "ERROR"


def test_file_mode_inputs_do_not_reveal_the_expected_result(tmp_path):
    """Folder names, inputs.json, case.txt and the index carry an opaque name, never the golden
    case id (``invalid-...`` would tell the port to refuse) nor a result or flag; compare maps
    the folders back and shows both names."""
    valid = _cases("adams")[:1]
    invalid = casekit.invalid_case("adams", lr=math.nan)
    cases = valid + [invalid]
    write_inputs(cases, tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert names == sorted(port_case_id(c.case_id) for c in cases)
    assert all(n.startswith("case-") and len(n) == 17 for n in names)
    listing = [json.loads((tmp_path / "index.json").read_text())["cases"],
               (tmp_path / "index.txt").read_text().split()[1:]]
    assert listing[0] == listing[1] == [port_case_id(c.case_id) for c in cases]
    folder = tmp_path / port_case_id(invalid.case_id)
    texts = [(folder / f).read_text() for f in ("inputs.json", "case.txt", "hyper.txt")]
    for text in texts + [(tmp_path / "index.json").read_text()]:
        assert invalid.case_id not in text and "invalid" not in text and '"result"' not in text
    assert json.loads(texts[0])["case_id"] == folder.name
    _foreign(tmp_path)
    rep = compare_directory("adams", tmp_path, cases)
    assert [r.case_id for r in rep.results] == [c.case_id for c in cases]
    assert [r.folder for r in rep.results] == [port_case_id(c.case_id) for c in cases]
    table = rep.table()
    assert "folder" in table.splitlines()[1] and port_case_id(invalid.case_id) in table
    assert rep.to_dict()["cases"][1]["folder"] == port_case_id(invalid.case_id)


# -- the committed suite and the command line ------------------------------------------------

@pytest.fixture(scope="module")
def suite_ids():
    try:
        cases = load_cases("adams") + load_cases("adamx") + load_cases("alphaadam")
    except FileNotFoundError as exc:
        pytest.skip(f"the golden suite is not built in this checkout: {exc}")
    return {c.case_id: c for c in cases}


def test_suite_reference_passes_every_case(suite_ids):
    judged = 0
    for rule in RULES:
        rep = verify_rule(rule, "numpy")
        assert rep.passed, rep.table()
        # Every case ran: the reference can express every variant (no "n/a").
        assert len(rep.counted) == len(rep.results) == len(load_cases(rule)) > 0
        for res in rep.results:
            listed = [i["id"] for i in suite_ids[res.case_id].tolerance.get("invariants") or []]
            if listed:
                # refopt's rule exposes v and the mask: every invariant is judged, and holds.
                got = {r.id: r.status for r in res.invariants.results}
                assert all(got[key] == "pass" for key in listed), (res.case_id, got)
                judged += 1
    assert judged == 18          # the closed-loop cases of adamx, adams, alphaadam (6 + 8 + 4)


TORCH_SUITE = [("adamx", "AdamX"), ("adams", "AdamS"), ("alphaadam", "AlphaAdam")]


@pytest.mark.parametrize("rule,name", TORCH_SUITE)
def test_cli_verify_torch_port_on_the_suite_float64(torch_ports, suite_ids, rule, name,
                                                    monkeypatch, capsys):
    monkeypatch.chdir(PORTS)
    status = refopt_main(["verify", rule, f"torch_ports:{name}", "--dtype", "float64"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "PASS" in out and "first divergence" in out and " FAIL " not in out


def test_torch_ports_float32_suite(torch_ports, suite_ids):
    """float32 with stock torch: every case a torch port can express passes, closed loop
    included. torch's CPU float32 sqrt is not correctly rounded (1 ulp off in ~17 % of elements
    on an AVX-512 host); the suite's tolerances and horizons are measured against faithfully
    rounded implementations (sqrt/division within 1 ulp, FMA contraction; golden FORMAT.md
    section 5), so that difference is legitimate and stays inside them."""
    counted = closed = 0
    for rule, name in TORCH_SUITE:
        rep = verify_cases(load_cases(rule, dtype="float32"), getattr(torch_ports, name))
        assert rep.passed, rep.table()
        counted += len(rep.counted)
        closed += sum(r.status == "pass" and suite_ids[r.case_id].grad_fn is not None
                      for r in rep.results)
        for r in rep.results:
            if r.invariants is not None and suite_ids[r.case_id].tolerance["invariants"]:
                status = {i.id: i.status for i in r.invariants.results}
                assert status["final_loss"] == "pass", (r.case_id, r.message)
                if rule == "alphaadam":     # the torch port keeps no mask in its state
                    assert status["alphaadam_kept_fraction"] == "not checkable"
                    assert "alphaadam_kept_fraction not checkable" in r.message
    assert counted >= 30 and closed == 9      # 3 adamx, 4 adams, 2 alphaadam closed-loop cases


# float32 cases that can show each planted mistake. eps = 1e-8 inside sqrt(v) changes a float32
# denominator only where v ~ eps: no AdamX float32 case gets there (the float64 cases catch it).
# eps inside the sqrt is invisible in float32 wherever v >> eps; the epsscale cases (g^2 near eps)
# exist to catch it, so it must fail at least the float32 one.
_F32_MIN_FAILURES = {"AdamXEpsInsideSqrt": 1, "AlphaAdamDecayAfterStep": 2}


@pytest.mark.parametrize("rule,name,options,key", TORCH_MISTAKES)
def test_torch_planted_mistake_on_the_float32_suite(torch_ports, suite_ids, rule, name, options,
                                                    key):
    """Under the float32 tolerances (measured against faithfully rounded implementations) every
    planted mistake still fails where it is visible, and each failure names it. In closed loop
    a float32 mutant and the torch copy can part ways within the horizon (a mask or a sign
    decided by one rounding), so there the mistake must at least be the closest candidate."""
    rep = verify_rule(rule, getattr(torch_ports, name), dtype="float32")
    failed = [r for r in rep.results if r.status in ("FAIL", "ERROR")]
    assert len(failed) >= _F32_MIN_FAILURES.get(name, 3), rep.table()
    for r in failed:
        assert r.status == "FAIL", (r.case_id, r.message)
        if suite_ids[r.case_id].grad_fn is None:
            assert r.diagnosis.keys == [key], (r.case_id, r.diagnosis.message)
        elif r.diagnosis is None:
            # Caught by the invariants after the horizon (the float32-scalar legitimate run
            # moved some closed-loop horizons earlier): no pointwise evidence to diagnose.
            assert r.message.startswith("within tolerance at every recorded step up to the "
                                        "pointwise horizon"), (r.case_id, r.message)
            assert "FAILED" in r.message, (r.case_id, r.message)
        else:
            assert r.diagnosis.keys in ([key], []), (r.case_id, r.diagnosis.message)
            assert r.diagnosis.closest.mistake.key == key, (r.case_id, r.diagnosis.message)


@pytest.mark.parametrize("rule,name,options,key", TORCH_MISTAKES)
def test_torch_planted_mistake_on_the_suite(torch_ports, suite_ids, rule, name, options, key):
    """On the committed float64 cases every failure of a planted copy names its mistake, and
    nothing else (cases it cannot express are n/a; cases where the mistake is invisible, e.g.
    decay placement with weight_decay = 0, pass)."""
    rep = verify_rule(rule, getattr(torch_ports, name), dtype="float64")
    failed = [r for r in rep.results if r.status in ("FAIL", "ERROR")]
    assert len(failed) >= 3 and rep.exit_status == 1
    for r in failed:
        assert r.status == "FAIL" and r.diagnosis.keys == [key], (r.case_id, r.diagnosis.message)


def test_fused_torch_port(torch_ports, suite_ids):
    """AdamS with torch's fused lerp_ (as the official code; FMA-like single rounding): every
    case passes in both dtypes, closed loop included, since the tolerances were measured
    against implementations that contract a*b + c."""
    for dtype in ("float64", "float32"):
        rep = verify_rule("adams", torch_ports.AdamSFused, dtype=dtype)
        assert rep.passed, rep.table()


def test_cli_planted_torch_mistake_on_the_suite(torch_ports, suite_ids, monkeypatch, capsys):
    monkeypatch.chdir(PORTS)
    status = refopt_main(["verify", "adams", "torch_ports:AdamSMtDenominator", "--dtype",
                          "float64", "--cases", "adams_paper_*"])
    out = capsys.readouterr().out
    assert status == 1 and "adams_m_t_denominator" in out and "ReaLLM-Forge" in out


def test_cli_verify_optax_port_on_the_suite(optax_ports, suite_ids, monkeypatch, capsys):
    monkeypatch.chdir(PORTS)
    # A subset (eager JAX is slow per step): both dtypes, explicit and closed loop.
    for pattern in ("adams_*_s[ci]*", "adams_paper_logcosh_*"):
        status = refopt_main(["verify", "adams", "optax_ports:adams", "--cases", pattern])
        out = capsys.readouterr().out
        assert status == 0, out
        assert "float32" in out and "float64" in out
    status = refopt_main(["verify", "alphaadam", "optax_ports:alphaadam_cautious",
                          "--dtype", "float64", "--cases", "*_signflip_*"])
    out = capsys.readouterr().out
    assert status == 1 and "alphaadam_mask_from_m_t" in out and "Cautious" in out


def test_cli_file_mode_on_the_suite(suite_ids, tmp_path, capsys):
    d = tmp_path / "cases"
    assert refopt_main(["verify", "adams", "--write-inputs", str(d), "--cases",
                        "adams_*_[ils]*"]) == 0
    _foreign(d)
    capsys.readouterr()
    assert refopt_main(["compare", "adams", str(d), "--json", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["passed"] and report["cases"]
    _foreign(d, "--mistake", "m_t")
    assert refopt_main(["compare", "adams", str(d)]) == 1
    assert "adams_m_t_denominator" in capsys.readouterr().out


def test_cli_usage_errors(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(PORTS)
    assert refopt_main(["verify", "adams", "no_such_module:X"]) == 2
    assert refopt_main(["verify", "adams", "casekit"]) == 2          # not module:attribute
    assert refopt_main(["compare", "adams", str(tmp_path)]) == 2      # no inputs there
    with pytest.raises(SystemExit):
        refopt_main(["verify", "adams", "casekit:make_case", "--option", "novalue"])


def test_numba_backend_through_verify_rule(suite_ids):
    pytest.importorskip("numba", reason="numba is optional (extra refopt[numba])")
    import refopt

    for rule in RULES:
        rep = verify_rule(rule, "numba")
        assert rep.passed and len(rep.counted) == len(rep.results), rep.table()
        assert rep.port == "refopt[numba]"
        # The numba rules report AlphaAdam's mask and expose v: nothing is left unchecked.
        assert not any(r.invariants.not_checkable for r in rep.results if r.invariants)
    # A numba rule instance is rebuilt per case on its backend.
    rule = refopt.get_rule("alphaadam", backend="numba")
    assert verify_rule("alphaadam", rule, dtype="float32").passed


# -- after the pointwise horizon: the invariants ---------------------------------------------

class _BreaksAfter:
    """refopt's own rule, so bit-exact up to step ``after``; then it goes wrong: ``"scale"``
    makes every later step 1.5 times as long, ``"stall"`` leaves the params where they are,
    ``"nan"`` turns the first tensor into NaN, ``"v"`` multiplies AdamX's v by 4 once (at step
    after + 1)."""

    def __init__(self, rule, after, how):
        self.rule, self.after, self.how, self.t = rule, after, how, 0

    def init(self, params):
        self.t = 0
        return self.rule.init(params)

    def step_with_info(self, params, grads, state, *, lr=None):
        new, state, info = self.rule.step_with_info(params, grads, state, lr=lr)
        self.t += 1
        if self.t > self.after:
            if self.how == "scale":
                new = [p + (q - p) * q.dtype.type(1.5) for p, q in zip(params, new)]
            elif self.how == "stall":
                new = [np.array(p, copy=True) for p in params]
            elif self.how == "nan":
                new = [np.full_like(q, np.nan) if i == 0 else q for i, q in enumerate(new)]
            elif self.how == "v" and self.t == self.after + 1:
                state = state._replace(exp_avg_sq=tuple(v * v.dtype.type(4)
                                                        for v in state.exp_avg_sq))
        return new, state, info

    def step(self, params, grads, state, *, lr=None):
        return self.step_with_info(params, grads, state, lr=lr)[:2]


def _breaking(rule, after, how):
    import refopt

    def factory(**hyper):
        # "propagate": the NaN port must keep running (the reference would raise on NaN grads).
        return _BreaksAfter(refopt.get_rule(rule, **{**hyper, "nonfinite": "propagate"}),
                            after, how)
    return factory


@pytest.mark.parametrize("case_id,how,failed", [
    ("adams_paper_logcosh_float32", "scale", {"final_loss", "adams_step_bound"}),
    ("adams_official_rosenbrock4_float64", "scale", {"final_loss"}),
    ("adams_paper_logcosh_float32", "nan", {"final_loss", "adams_step_bound",
                                            "finite_after_horizon"}),
    ("alphaadam_paper-v1_logcosh_float64", "nan", {"final_loss", "finite_after_horizon"}),
])
def test_port_right_up_to_the_horizon_then_wrong_fails_naming_the_invariant(suite_ids, case_id,
                                                                           how, failed):
    case = suite_ids[case_id]
    h = case.tolerance["pointwise_horizon"]
    assert h < case.n_steps
    rep = verify_cases([case], _breaking(case.rule, h + 1, how))
    res = rep.results[0]
    # Exact up to the horizon: the pointwise part passes, so before this check the case passed.
    assert res.comparison.passed and res.comparison.first_divergence is None
    assert res.status == "FAIL" and rep.exit_status == 1, rep.table()
    assert {r.id for r in res.invariants.failed} == failed, res.message
    for key in failed:
        assert f"invariant {key} FAILED" in res.message
    assert f"up to the pointwise horizon t={h}" in res.message
    assert "FAIL " in rep.table() and "final_loss" in rep.table()
    # ... and by how much.
    loss = next(r for r in res.invariants.failed if r.id == "final_loss")
    assert loss.excess > 1 and "> atol + rtol" in loss.detail
    if "finite_after_horizon" in failed:
        first_nan = next(r for r in res.invariants.failed if r.id == "finite_after_horizon")
        assert first_nan.step == h + 2 and "param.0" in first_nan.detail   # every step is held
    if "adams_step_bound" in failed:
        bound = next(r for r in res.invariants.failed if r.id == "adams_step_bound")
        assert "every step" in bound.detail and bound.step > h
        if how == "scale":   # the reference's own steps reach the bound (A2 is attained)
            assert 1.3 < bound.excess < 1.5 + 1e-6
    # Pointwise the mutants cannot tell anything here; only the final loss can, and no known
    # mistake gives this port's (scaled steps); a NaN final loss has nothing to match.
    if how == "nan":
        assert res.diagnosis is None
    else:
        assert res.diagnosis.after_horizon and not res.diagnosis.matches, res.diagnosis.message
    # The same case run by refopt's rule passes (the invariants hold for the reference).
    assert verify_cases([case], "numpy").passed


def _final_loss_spec(case):
    return next(i for i in case.tolerance["invariants"] if i["id"] == "final_loss")


@pytest.mark.parametrize("case_id", ["adams_official_rosenbrock4_float32",
                                     "adams_paper_rosenbrock4_float32"])
def test_final_loss_atol_catches_a_stalled_port_the_old_relative_form_let_through(suite_ids,
                                                                                   case_id):
    """A port that stops moving after the horizon ends near f = 2.7 (initial 346); the golden
    final loss is 0.07 / 0.01 and the legitimate runs land up to 0.2 from it. The old form,
    rtol = 100 / 1000 relative to the golden value, allowed up to 6.6 / 12: it passed the
    stalled port. atol = 10x the measured spread (2) fails it."""
    case = suite_ids[case_id]
    spec = _final_loss_spec(case)
    assert spec["atol"] == 2.0 and spec["rtol"] == 1e-3
    h = case.tolerance["pointwise_horizon"]
    res = verify_cases([case], _breaking(case.rule, h + 1, "stall")).results[0]
    assert res.comparison.passed and res.status == "FAIL"
    loss = next(r for r in res.invariants.results if r.id == "final_loss")
    assert loss.status == "FAIL" and 1 < loss.excess < 2, loss.detail
    # The same port against the old, purely relative tolerance: not caught.
    old_rtol = {"adams_official_rosenbrock4_float32": 100.0,
                "adams_paper_rosenbrock4_float32": 1000.0}[case_id]
    old = {k: v for k, v in spec.items() if k != "atol"}
    old["rtol"] = old_rtol
    invs = [old if i["id"] == "final_loss" else i for i in case.tolerance["invariants"]]
    res = verify_cases([replace_tolerance(case, invariants=invs)],
                       _breaking(case.rule, h + 1, "stall")).results[0]
    assert next(r for r in res.invariants.results if r.id == "final_loss").status == "pass"


@pytest.mark.parametrize("case_id", ["alphaadam_paper-v1_logcosh_float64",
                                     "alphaadam_paper-v1_logcosh_float32"])
def test_final_loss_cannot_catch_longer_steps_where_legitimate_runs_spread_wider(suite_ids,
                                                                                case_id):
    """A known limit, measured: 1.5x steps after the horizon drive AlphaAdam's logcosh cases to
    f ~ 1e-13 / 1e-11, closer to the golden final loss (6.2e-5 / 3.5e-5) than the legitimate
    runs land (up to 1.3e-4 / 3.1e-4 away: the mask's discrete decisions make the end point
    wander between 1e-10 and 1e-2). No tolerance that passes the legitimate runs fails this
    port, so final_loss passes it; it is caught only if the steps are wrong before the
    horizon (t <= 10 / 60). A stalled port still fails (f stays near its value at the
    horizon)."""
    case = suite_ids[case_id]
    spec = _final_loss_spec(case)
    h = case.tolerance["pointwise_horizon"]
    res = verify_cases([case], _breaking(case.rule, h + 1, "scale")).results[0]
    loss = next(r for r in res.invariants.results if r.id == "final_loss")
    assert loss.status == "pass", loss.detail
    port_final = float(loss.detail.split("final loss ")[1].split(" ")[0])
    from refopt.golden.format import decode_float

    golden = decode_float(spec["value"])
    assert port_final < 1e-9 < golden
    assert abs(port_final - golden) < spec["measured"]["legit_abs_spread"]
    res = verify_cases([case], _breaking(case.rule, h + 1, "stall")).results[0]
    assert [r.id for r in res.invariants.failed] == ["final_loss"], res.message


def test_adamx_v_outside_min_and_max_g2_fails(suite_ids):
    """Every AdamX closed-loop case is compared pointwise to its last step, so the horizon is
    shortened here: v multiplied by 4 once, after step 100, leaves [min g^2, max g^2]."""
    case = replace_tolerance(suite_ids["adamx_official_quadratic6_float64"],
                             pointwise_horizon=100)
    assert verify_cases([case], "numpy").passed
    res = verify_cases([case], _breaking("adamx", 100, "v")).results[0]
    assert res.comparison.passed and res.status == "FAIL"
    v = next(r for r in res.invariants.failed if r.id == "adamx_v_between_min_max_g2")
    assert v.step == 101 and "outside [min g^2, max g^2]" in v.detail and v.excess > 1


class _Opaque:
    """A state object with nothing refopt can read (no exp_avg_sq, no mask)."""

    def __init__(self, rule, inner):
        self.rule, self.inner = rule, inner


def _opaque_port(rule, scale_after=None):
    import refopt

    def step(params, grads, state, *, t, lr, hyper):
        if state is None:
            r = refopt.get_rule(rule, **hyper)
            state = _Opaque(r, r.init(params))
        new, state.inner = state.rule.step(params, grads, state.inner, lr=lr)
        if scale_after is not None and t > scale_after:
            new = [p + (q - p) * q.dtype.type(1.5) for p, q in zip(params, new)]
        return new, state
    return step


def test_port_without_state_gets_not_checkable_notes_and_final_loss_still_judged(suite_ids):
    cases = [suite_ids["adamx_official_quadratic6_float64"],
             suite_ids["alphaadam_paper-v1_rosenbrock4_float64"]]
    rep = verify_cases(cases, _opaque_port("adamx"), rule="adamx")
    res = rep.results[0]
    assert res.status == "pass", res.message
    status = {r.id: r.status for r in res.invariants.results}
    assert status == {"final_loss": "pass", "adamx_v_between_min_max_g2": "not checkable"}
    assert "invariant adamx_v_between_min_max_g2 not checkable for this port" in res.message
    assert "exp_avg_sq" in res.message and "1 ok, 1 n/c" in rep.table()
    res = verify_cases(cases[1:], _opaque_port("alphaadam")).results[0]
    assert res.status == "pass"
    assert {r.id: r.status for r in res.invariants.results}["alphaadam_kept_fraction"] == \
        "not checkable"
    # Without state, a wrong trajectory after the horizon is still caught by the final loss.
    case = replace_tolerance(cases[0], pointwise_horizon=100)
    res = verify_cases([case], _opaque_port("adamx", scale_after=101)).results[0]
    assert res.comparison.passed and res.status == "FAIL"
    assert [r.id for r in res.invariants.failed] == ["final_loss"]


def test_statistical_or_unknown_tolerance_mode_is_refused():
    case = casekit.make_case("adams", n_steps=2)
    e = np.ones(3)
    for mode in ("statistical", "approximately"):
        with pytest.raises(ValueError, match=f"{mode}.*" if mode == "statistical" else mode):
            verify_cases([replace_tolerance(case, mode=mode)], "numpy")
        with pytest.raises(ValueError, match=mode):
            violation(e, e, {"mode": mode, "rtol": 1e-3, "atol": 0.0})
    with pytest.raises(ValueError, match="not implemented.*refusing to judge it as 'allclose'"):
        compare_trajectories({"param": [np.zeros((1, 2))]}, {"param": [np.zeros((1, 2))]},
                             np.arange(1), {"mode": "statistical", "rtol": 1.0}, "float64")


def test_file_mode_judges_the_invariants(suite_ids, tmp_path):
    case = suite_ids["adams_paper_logcosh_float32"]
    h = case.tolerance["pointwise_horizon"]
    write_inputs([case], tmp_path)
    _foreign(tmp_path)
    res = compare_directory("adams", tmp_path, [case]).results[0]
    assert res.status == "pass", res.message
    bound = next(r for r in res.invariants.results if r.id == "adams_step_bound")
    # Only every 10th step is in the output: the k-step form of the bound, said so.
    assert bound.status == "pass" and "10 apart" in bound.detail and "k*lr*sqrt(C)" in bound.detail
    # NaN written for the steps after the horizon: the same verdict as in process.
    path = tmp_path / port_case_id(case.case_id) / "output" / "param.2.bin"
    steps = np.asarray(case.steps)
    values = np.fromfile(path, dtype="<f4").reshape((len(steps), 2, 3))
    values[steps > h, 0, 1] = np.nan
    values.tofile(path)
    rep = compare_directory("adams", tmp_path, [case])
    res = rep.results[0]
    assert res.comparison.passed and res.status == "FAIL" and rep.exit_status == 1
    assert {"final_loss", "finite_after_horizon"} <= {r.id for r in res.invariants.failed}
    assert "param.2[0,1]" in res.message


def test_file_mode_reads_alphaadam_mask_and_judges_the_kept_fraction(suite_ids, tmp_path):
    case = suite_ids["alphaadam_paper-v1_logcosh_float64"]
    write_inputs([case], tmp_path)
    run = run_case(make_port("numpy"), case)     # the reference, with its mask, alpha, kept
    assert set(run.info) == {"mask", "alpha", "kept"}

    def write(run_info):
        arrays = {f"param.{i}": p for i, p in enumerate(run.params)}
        for key, per_tensor in run_info.items():
            arrays.update({f"{key}.{i}": a for i, a in enumerate(per_tensor)})
        np.savez(tmp_path / port_case_id(case.case_id) / "output.npz", **arrays)

    write(run.info)
    res = compare_directory("alphaadam", tmp_path, [case]).results[0]
    kept = next(r for r in res.invariants.results if r.id == "alphaadam_kept_fraction")
    assert res.status == "pass" and kept.status == "pass" and "count rule" in kept.detail
    # A kept count that disagrees with the mask, after the horizon.
    bad = {k: [np.array(a, copy=True) for a in v] for k, v in run.info.items()}
    bad["kept"][2][-1] += 1
    write(bad)
    res = compare_directory("alphaadam", tmp_path, [case]).results[0]
    assert res.status == "FAIL" and res.comparison.passed
    assert "but the mask keeps" in res.message and "alphaadam_kept_fraction" in res.message
    # Without the mask and kept: not checkable, said so, the rest still judged.
    write({})
    res = compare_directory("alphaadam", tmp_path, [case]).results[0]
    assert res.status == "pass" and "alphaadam_kept_fraction not checkable" in res.message


@pytest.mark.parametrize("rule", ["adamx", "adams", "alphaadam"])
def test_cli_verify_a_refopt_backend_by_name(rule, capsys):
    pytest.importorskip("numba", reason="numba is an optional backend (pip install refopt[numba])")
    assert refopt_main(["verify", rule, "numba", "--dtype", "float32"]) == 0
    out = capsys.readouterr().out
    assert "PASS:" in out and " 0 failed, 0 errors" in out


def test_cli_verify_an_unusable_backend_exits_2_with_the_reason(capsys):
    from refopt.kernels.cupy_backend import cupy_unavailable_reason

    reason = cupy_unavailable_reason()
    if reason is None:
        pytest.skip("CuPy and a GPU are usable here")
    assert refopt_main(["verify", "adams", "cupy"]) == 2
    assert reason in capsys.readouterr().err


def test_adamx_naive_coefficient_form_is_named():
    """The official AdamNX code forms beta2_t by pow, which cancels for beta2 near 1: a fuzz
    draw with beta2 = 0.9999 found it diagnosed as float32 scalars before this mistake existed."""
    case = casekit.make_case("adamx", n_steps=4, betas=(0.95, 0.9999))
    import refopt

    naive = lambda **hyper: refopt.get_rule("adamx", **{**hyper, "coef_form": "naive"})  # noqa: E731
    rep = verify_cases([case], naive, rule="adamx")
    assert rep.results[0].status == "FAIL", rep.results[0].message
    assert rep.results[0].diagnosis.keys == ["adamx_naive_coef"], rep.table()
