"""Golden cases for a user's own rule (refopt.golden.user_rules) and refopt verify against them:
examples/sweeps/lion.py (Lion, written with refopt.extend only) is the user rule; public ports
of Lion (optax, timm, pytorch_optimizer) and a port with a planted slip are judged."""
from __future__ import annotations

import importlib.util
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from refopt.golden import faithful as FA
from refopt.golden.build import build_suite, check_report
from refopt.golden.user_rules import user_catalogue
from refopt.verify import load_cases, verify_rule

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "sweeps"
RULE = "lion:Lion"


@pytest.fixture(scope="module")
def lion_suite(tmp_path_factory):
    """The Lion suite, built once for the module (about 20 s)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(EXAMPLE))
        out = tmp_path_factory.mktemp("lion_suite")
        ids = build_suite(out, rule=RULE)
        yield out, ids


@pytest.fixture
def lion_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))


# -- faithful rounding ------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_faithful_arithmetic_moves_only_inexact_results_one_ulp_toward_the_exact_value(dtype):
    if dtype == "float64" and not FA.LONGDOUBLE_IS_WIDER:
        pytest.skip("np.longdouble is float64 here: float64 exactness cannot be decided")
    x = np.linspace(0.1, 1.0, 2000).astype(dtype)
    wide = FA.WIDER[np.dtype(dtype)]
    with FA.faithful_rounding(3):
        third = np.asarray(FA.faithful(x) / 3.0)
        doubled = np.asarray(FA.faithful(x) * 2.0)   # exact: must never move
        root = np.asarray(np.sqrt(FA.faithful(x)))
    np.testing.assert_array_equal(doubled, x * 2)
    for got, plain, exact in ((third, x / 3.0, x.astype(wide) / 3),
                              (root, np.sqrt(x), np.sqrt(x.astype(wide)))):
        moved = got != plain
        assert 0.2 < moved.mean() < 0.8            # about half of the inexact results
        assert np.all(np.abs(got.view(np.int64 if dtype == "float64" else np.int32).astype(
            np.int64) - plain.view(np.int64 if dtype == "float64" else np.int32).astype(
            np.int64)) <= 1)
        # a moved value lies on the other side of the exact result: the exact one is between
        lo, hi = np.minimum(got, plain)[moved], np.maximum(got, plain)[moved]
        assert np.all((lo.astype(wide) <= exact[moved]) & (exact[moved] <= hi.astype(wide)))


def test_faithful_arrays_are_plain_outside_a_rounding_block_and_the_same_seed_repeats():
    x = np.linspace(0.1, 1.0, 100)
    np.testing.assert_array_equal(np.asarray(FA.faithful(x) / 3.0), x / 3.0)
    runs = []
    for _ in range(2):
        with FA.faithful_rounding(7):
            runs.append(np.asarray(np.sum(FA.faithful(x) / 7.0) + FA.faithful(x) * 1.1))
    np.testing.assert_array_equal(runs[0], runs[1])


# -- the user suite ----------------------------------------------------------------------------

def test_user_suite_has_the_generic_cases_and_checks_clean(lion_suite, lion_on_path):
    out, ids = lion_suite
    assert ids == [c.case_id for c in user_catalogue(RULE)]
    scenarios = {i.split("_")[2] for i in ids}
    assert {"defaults", "zerograd", "signflip", "zerosize", "decay", "schedule", "long",
            "quadratic6", "invalid-lr-nan"} <= scenarios
    index = json.loads((out / "index.json").read_text())
    assert index["rule"] == RULE and index["n_cases"] == len(ids)
    report = check_report(out)   # the catalogue is found from index.json's rule
    assert report.problems == [] and report.case_ids == ids


def test_user_suite_check_finds_a_changed_array(lion_suite, lion_on_path, tmp_path):
    out, _ = lion_suite
    copy = tmp_path / "suite"
    shutil.copytree(out, copy)
    manifest = json.loads((copy / "lion_user_defaults_float64.json").read_text())
    manifest["tolerance"]["rtol"] = 1.0      # a loosened tolerance, hash not updated
    (copy / "lion_user_defaults_float64.json").write_text(json.dumps(manifest))
    problems = check_report(copy).problems
    assert any("lion_user_defaults_float64" in p and "TAMPERED" in p for p in problems)


def test_user_tolerances_come_from_a_measured_nonzero_spread(lion_suite):
    out, _ = lion_suite
    m32 = json.loads((out / "lion_user_long_float32.json").read_text())
    measured = m32["tolerance"]["measured"]
    assert measured["implementations"][0] == "faithful0"
    assert "faithfully" in measured["model"] or "faithful" in measured["model"]
    # the faithful runs do differ from the reference (the spread is measured, not assumed) ...
    assert measured["legit_worst_ulp"] > 0
    # ... and the tolerance holds 10x of it: the absolute part and the per-coordinate bound
    tol = m32["tolerance"]
    assert tol["atol"] >= 10 * measured["legit_needed_atol"]
    for buf, ratio in measured["scaled_legit_worst_ratio"].items():
        assert ratio > 0 and tol["scaled"]["k"][buf] >= 10 * ratio
    m64 = json.loads((out / "lion_user_long_float64.json").read_text())
    acc = m64["reference_accuracy"]
    if FA.LONGDOUBLE_IS_WIDER:
        assert acc["fallback"] is False and acc["steps_checked"] == 1000
        assert 0 <= acc["worst_rel_error"] < 1e-12
    else:
        assert acc["fallback"] is True


def test_the_rule_itself_passes_its_suite_bit_for_bit(lion_suite, lion_on_path):
    import refopt

    out, ids = lion_suite
    report = verify_rule(RULE, refopt.get_rule(RULE), directory=out)
    assert report.passed and len(report.results) == len(ids)
    valid = [r for r in report.results if r.result == "valid"]
    assert valid and all(r.status == "pass" and r.comparison.worst_ulp == 0 for r in valid)


def _lion_port(slip: bool):
    """A NumPy function port of Lion written here from the paper (arXiv 2302.06675); with
    ``slip`` the momentum is updated before the sign is taken."""
    def step(params, grads, state, *, t, lr, hyper):
        b1, b2 = hyper["betas"]
        wd = hyper["weight_decay"]
        ms = state or [np.zeros_like(p) for p in params]
        new_p, new_m = [], []
        for p, g, m in zip(params, grads, ms):
            m_next = b2 * m + (1 - b2) * g
            c = b1 * (m_next if slip else m) + (1 - b1) * g
            new_p.append(p * (1 - lr * wd) - lr * np.sign(c))
            new_m.append(m_next)
        return new_p, new_m
    return step


def test_an_independent_port_passes_and_a_slip_fails_at_its_first_divergent_step(
        lion_suite, lion_on_path):
    out, _ = lion_suite
    good = verify_rule(RULE, _lion_port(False), directory=out, cases="*_float64")
    bad_valid = [r.case_id for r in good.results if r.result == "valid" and r.status != "pass"]
    assert good.results and not bad_valid, bad_valid
    bad = verify_rule(RULE, _lion_port(True), directory=out, cases="*_float64")
    failed = {r.case_id: r for r in bad.results if r.result == "valid" and r.status == "FAIL"}
    assert {"lion_user_defaults_float64", "lion_user_signflip_float64"} <= set(failed)
    first = failed["lion_user_signflip_float64"]
    assert first.comparison.first_divergence is not None
    assert first.comparison.first_divergence.step <= 10
    assert "A user rule" in (first.diagnosis.message if first.diagnosis else "")


def test_optax_lion_passes_every_valid_case_and_accepts_a_nan_lr(lion_suite, lion_on_path):
    optax = pytest.importorskip("optax", reason="optax is optional (extra refopt[jax])")
    out, _ = lion_suite
    report = verify_rule(RULE, optax.lion, directory=out, diagnose=False)
    by_id = {r.case_id: r for r in report.results}
    assert all(r.status == "pass" for r in report.results if r.result == "valid")
    assert by_id["lion_user_invalid-lr-nan_float64"].status == "FAIL"


@pytest.mark.parametrize("source", ["timm", "pytorch_optimizer"])
def test_torch_lions_pass_every_valid_case(lion_suite, lion_on_path, source):
    pytest.importorskip("torch", reason="torch is optional (extra refopt[torch])")
    if source == "timm":
        sys.path.insert(0, str(Path(__file__).parent / "ports"))
        try:
            from public_ports import timm_optimizer
        finally:
            sys.path.pop(0)
        cls = timm_optimizer("lion", "Lion")
    else:
        if importlib.util.find_spec("pytorch_optimizer") is None:
            pytest.skip("pytorch_optimizer is optional (extra refopt[conformance])")
        from pytorch_optimizer import Lion as cls
    out, _ = lion_suite
    report = verify_rule(RULE, cls, directory=out, diagnose=False)
    failing = [r.case_id for r in report.results if r.result == "valid" and r.status != "pass"]
    assert not failing and len(report.results) == 17
    from refopt.verify.api import check_api

    api = check_api(RULE, cls, directory=out)   # configured from the user suite's cases
    assert "lion_user_defaults_float64" in api.rule
    assert [r.status for r in api.rows] == ["pass"] * 6


def test_pytest_helpers_take_the_user_suite(lion_suite, lion_on_path):
    from refopt.testing import assert_conforms, golden_params

    out, ids = lion_suite
    params = golden_params(RULE, directory=out, dtype="float32")
    assert [p.id for p in params] == sorted(i for i in ids if i.endswith("_float32"))
    for p in params:
        assert assert_conforms(p.values[0], _lion_port(False)).status == "pass"
    with pytest.raises(AssertionError, match=r"(?s)lion_user_decay_float32: FAIL\n.*t=6 param"):
        assert_conforms(params[0].values[0], _lion_port(True), diagnose=False)


def test_fuzz_draws_cases_of_the_user_rule_and_shrinks_a_failure_to_a_replayable_file(
        lion_on_path, tmp_path):
    from refopt.verify.fuzz import fuzz

    good = fuzz(RULE, _lion_port(False), 12, seed=1)
    assert good.failure is None and good.draws == 12
    bad = fuzz(RULE, _lion_port(True), 40, seed=1, save_to=tmp_path)
    assert bad.failure is not None and bad.saved is not None
    minimal = bad.minimal_case
    assert minimal.n_steps <= bad.first_case.n_steps and set(minimal.hyper) <= {
        "lr", "betas", "weight_decay", "nonfinite"}
    replay = verify_rule(RULE, _lion_port(True), directory=Path(bad.saved).parent)
    assert [r.status for r in replay.results] == ["FAIL"]


# -- a port in C, by the file mode ---------------------------------------------------------------

def _compile_lion(tmp_path, *defines):
    import os

    cc = next((shutil.which(n) for n in (os.environ.get("CC"), "cc", "gcc", "clang")
               if n and shutil.which(n)), None)
    if cc is None:
        pytest.skip("no C compiler (cc, gcc or clang) on this machine")
    src = ROOT / "examples" / "c"
    exe = tmp_path / ("lion_port" + "".join(d.lower() for d in defines))
    subprocess.run([cc, "-O2", "-std=c99", "-ffp-contract=off", "-Wall", "-Wextra", "-Werror",
                    *[f"-D{d}" for d in defines], "-o", str(exe), str(src / "lion.c"),
                    str(src / "refopt_io.c"), "-lm"], check=True, capture_output=True)
    return exe


@pytest.mark.parametrize("mistake", [None, "MISTAKE_M_FIRST"])
def test_the_c_lion_port_passes_bit_for_bit_and_its_planted_slip_fails(
        lion_suite, lion_on_path, tmp_path, mistake):
    from refopt.verify.files import compare_directory, write_inputs

    out, ids = lion_suite
    exe = _compile_lion(tmp_path, *([mistake] if mistake else []))
    cases = load_cases(RULE, directory=out)
    folder = tmp_path / "cases"
    write_inputs(cases, folder)
    run = subprocess.run([str(exe), str(folder)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "14 run, 3 refused" in run.stdout, run.stderr
    report = compare_directory(RULE, folder, suite_directory=out, diagnose=False)
    status = {r.case_id: r.status for r in report.results}
    assert len(status) == len(ids)
    if mistake is None:
        assert set(status.values()) == {"pass"}
        assert all(r.comparison.worst_ulp == 0 for r in report.results if r.comparison)
    else:
        failed = sorted(k for k, v in status.items() if v == "FAIL")
        assert len(failed) == 9 and "lion_user_signflip_float64" in failed
        assert all("invalid" not in k and "zerograd" not in k for k in failed)


# -- the command line --------------------------------------------------------------------------

def _cli(*args, cwd=None, env_path=None):
    import os

    env = dict(os.environ)
    if env_path:
        env["PYTHONPATH"] = env_path + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "refopt", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=300)


def test_cli_refuses_a_user_rule_without_out_or_suite_in_one_line(tmp_path):
    r = _cli("golden", "build", "--rule", RULE, cwd=EXAMPLE)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "--out" in r.stderr
    r = _cli("golden", "build", "--rule", "nope_module:Lion", "--out", str(tmp_path))
    assert r.returncode == 2 and "nope_module" in r.stderr and "Traceback" not in r.stderr
    r = _cli("verify", RULE, "optax:lion", cwd=EXAMPLE)
    assert r.returncode == 2 and "golden build --rule" in r.stderr and "Traceback" not in r.stderr


def test_a_suite_built_for_another_rule_is_refused_by_name(lion_suite, lion_on_path):
    out, _ = lion_suite
    with pytest.raises(ValueError, match=r"built for rule 'lion:Lion', not 'adams'"):
        load_cases("adams", directory=out)


def test_cli_golden_check_finds_the_rule_from_its_folder(lion_suite, tmp_path):
    out, ids = lion_suite
    r = _cli("golden", "check", "--suite", str(out), "-q", cwd=EXAMPLE)
    assert r.returncode == 0 and f"{len(ids)} cases" in r.stdout, r.stderr
    r = _cli("golden", "check", "--suite", str(out), "-q", cwd=tmp_path)   # lion.py not here
    assert r.returncode == 2 and "lion" in r.stderr and "Traceback" not in r.stderr


def test_cli_builds_and_verifies_from_the_rules_folder(lion_suite, tmp_path):
    pytest.importorskip("torch", reason="torch is optional (extra refopt[torch])")
    out, ids = lion_suite
    port = tmp_path / "slip_port.py"
    port.write_text(
        "import torch\n\n"
        "class Lion(torch.optim.Optimizer):\n"
        "    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0):\n"
        "        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay))\n\n"
        "    @torch.no_grad()\n"
        "    def step(self, closure=None):\n"
        "        for group in self.param_groups:\n"
        "            b1, b2 = group['betas']\n"
        "            for p in group['params']:\n"
        "                st = self.state[p]\n"
        "                m = st.setdefault('exp_avg', torch.zeros_like(p))\n"
        "                p.mul_(1 - group['lr'] * group['weight_decay'])\n"
        "                m.mul_(b2).add_(p.grad, alpha=1 - b2)\n"
        "                p.add_(torch.sign(m * b1 + p.grad * (1 - b1)), alpha=-group['lr'])\n")
    r = _cli("verify", RULE, "slip_port:Lion", "--suite", str(out), "--dtype", "float64",
             "--cases", "*defaults*", "--json", str(tmp_path / "r.json"), "-q", cwd=tmp_path,
             env_path=str(EXAMPLE))
    assert r.returncode == 1, r.stderr
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["rule"] == RULE and [c["status"] for c in doc["cases"]] == ["FAIL"]
    assert math.isfinite(doc["cases"][0]["max_rel"])
