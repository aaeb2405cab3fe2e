"""The verdict on ports written the way public code is written (``tests/ports/library_ports.py``):
constructors with ``**kwargs`` that swallow or refuse refopt's option names, hyperparameters read
from the param groups, declared variants, wrong ways to refuse an invalid case, a port that ends
the process, float32 state with and without a real mistake. The public packages themselves are
run in ``tests/test_conformance.py``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from refopt.cli import main as refopt_main
from refopt.verify import load_cases, verify_cases, verify_rule

PORTS = Path(__file__).parent / "ports"
sys.path.insert(0, str(PORTS))
import casekit  # noqa: E402

pytest.importorskip("torch", reason="torch is optional (extra refopt[torch])")
import library_ports as lp  # noqa: E402
import torch_ports  # noqa: E402


def _statuses(rep):
    return {r.case_id: r.status for r in rep.results}


# -- **kwargs that swallow, **kwargs that refuse ---------------------------------------------

def test_swallowed_option_is_not_supported_not_a_failure():
    """The official AdamNX habit: **kwargs take weight_decay_mode and state_dtype and ignore
    them. Those cases say which option was ignored; every other case passes."""
    rep = verify_rule("adamx", lp.AdamXSwallowsKwargs, dtype="float64",
                      cases="adamx_official-[ls][2t]*")
    assert len(rep.results) >= 4, "the suite has AdamX l2 and state-dtype cases"
    for r in rep.results:
        assert r.status == "n/a", (r.case_id, r.status, r.message)
        option = "weight_decay_mode" if "-l2_" in r.case_id else "state_dtype"
        assert f"not supported: the port ignores {option}" in r.message, r.message
    # The same option honoured: the reference port implements l2 and passes.
    assert not rep.counted and rep.exit_status == 2


def test_swallowing_port_passes_the_whole_suite_with_policy_cases_advisory():
    """Done means for the official class: exit 0 with no options, beta2 = 0 (defined, refused
    by refopt's policy only) shown as advisory; --strict makes it a failure."""
    rep = verify_rule("adamx", lp.AdamXSwallowsKwargs)
    status = _statuses(rep)
    assert rep.exit_status == 0, rep.table()
    assert status["adamx_official_invalid-beta2-0_float64"] == "adv"
    assert "advisory" in rep.by_id("adamx_official_invalid-beta2-0_float64").message
    assert status["adamx_official_invalid-beta2-1_float64"] == "pass"   # undefined: refused
    strict = verify_rule("adamx", lp.AdamXSwallowsKwargs, cases="*invalid*", strict=True)
    assert _statuses(strict)["adamx_official_invalid-beta2-0_float64"] == "FAIL"
    assert strict.exit_status == 1


def test_a_port_that_ignores_an_option_it_names_still_fails():
    """Only **kwargs earn the benefit of the doubt: a port that takes bias_correction by name
    and ignores it fails, with the mistake named."""
    rep = verify_rule("adams", torch_ports.AdamSIgnoresBiasCorrection, dtype="float64",
                      cases="adams_official_defaults_*")
    r = rep.results[0]
    assert r.status == "FAIL" and "missing_bias_correction" in r.diagnosis.keys


def test_refused_keyword_means_the_case_cannot_be_expressed():
    """heavyball's habit: unknown keywords are a TypeError at construction. The default cases
    run (refopt passes only non-default options through **kwargs); the others are n/a."""
    cases = [casekit.make_case("adamx"), casekit.make_case("adamx", weight_decay_mode="l2")]
    rep = verify_cases(cases, lp.AdamXRefusesUnknownKwargs)
    assert [r.status for r in rep.results] == ["pass", "n/a"], rep.table()
    assert "refuses the keyword weight_decay_mode" in rep.results[1].message
    assert "unknown keyword arguments" in rep.results[1].message


def test_hyperparameters_reach_ports_that_read_the_param_groups():
    """The official AdamS habit: weight_decay read from the groups only (a KeyError before),
    and no bias_correction keyword: the declared variant runs it without a wrapper."""
    rep = verify_rule("adams", lp.AdamSReadsGroups, variant={"bias_correction": True})
    assert rep.exit_status == 0, rep.table()
    ran = [r for r in rep.results if r.counted]
    assert ran and all(r.case_id.startswith("adams_official") for r in ran)
    skipped = [r for r in rep.results if not r.counted]
    assert skipped and all("declares the variant bias_correction=True" in r.message
                           for r in skipped)
    # Without the declaration the paper-form cases cannot be expressed and code-form cases
    # would need a keyword the port lacks: nothing is run as something it is not.
    undeclared = verify_rule("adams", lp.AdamSReadsGroups, dtype="float64")
    assert all(r.status != "pass" or not r.case_id.startswith("adams_paper")
               or r.result == "invalid" for r in undeclared.results)


def test_variant_attribute_and_cli_flag(monkeypatch, capsys, tmp_path):
    class Declared(lp.AdamSReadsGroups):
        refopt_variant = {"bias_correction": True}

    rep = verify_rule("adams", Declared, dtype="float64", cases="adams_*_defaults_*")
    assert [r.status for r in rep.results if r.case_id.startswith("adams_official")] == ["pass"]
    assert all(r.status == "n/a" for r in rep.results if r.case_id.startswith("adams_paper"))
    monkeypatch.chdir(PORTS)
    assert refopt_main(["verify", "adams", "library_ports:AdamSReadsGroups", "--variant",
                        "bias_correction=True", "--cases", "adams_*_defaults_float64"]) == 0
    out = capsys.readouterr().out
    assert "PASS: 1 passed" in out and "declares the variant" in out
    # An unknown NAME is a usage error, one line, before any case runs.
    assert refopt_main(["verify", "adams", "library_ports:AdamSReadsGroups", "--variant",
                        "bias_corection=True"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no hyperparameter 'bias_corection'" in err[0]


# -- invalid cases: a validation error, before any param changes ------------------------------

@pytest.mark.parametrize("port,expect", [
    (lp.AdamXInvalidCrash, "not a validation error"),
    (lp.AdamXLateRefusal, "only at step 2"),
    (lp.AdamXRefusesAfterChange, "only after changing params"),
])
def test_wrong_refusals_of_an_invalid_case_fail(port, expect):
    case = casekit.invalid_case("adamx", betas=(0.9, 1.0))
    rep = verify_cases([case], port)
    r = rep.results[0]
    assert r.status == "FAIL" and expect in r.message, r.message
    assert rep.exit_status == 1


def test_refusal_at_construction_passes_and_says_where():
    rep = verify_cases([casekit.invalid_case("adamx", betas=(0.9, 1.0))], torch_ports.AdamX)
    r = rep.results[0]
    assert r.status == "pass" and "at construction" in r.message


# -- a port cannot fake a pass ----------------------------------------------------------------

@pytest.mark.parametrize("port,name", [(lp.AdamXSystemExit, "SystemExit"),
                                       (lp.AdamXKeyboardInterrupt, "KeyboardInterrupt")])
def test_port_that_exits_is_an_error_row(port, name):
    rep = verify_cases([casekit.make_case("adamx"), casekit.make_case("adamx", "float32")], port)
    assert [r.status for r in rep.results] == ["ERROR", "ERROR"]
    assert all(f"raised {name}" in r.message and "step 1" in r.message for r in rep.results)
    assert rep.exit_status == 1
    invalid = verify_cases([casekit.invalid_case("adamx", betas=(0.9, 1.0))], port)
    # Raised from step(): not a validation error, so not a refusal either.
    assert invalid.results[0].status == "FAIL"


def test_cli_port_raising_system_exit_zero_exits_one(monkeypatch, capsys):
    monkeypatch.chdir(PORTS)
    status = refopt_main(["verify", "adamx", "library_ports:AdamXSystemExit", "--cases",
                          "adamx_official_defaults_float64"])
    assert status == 1
    assert "ERROR" in capsys.readouterr().out


@pytest.mark.parametrize("body,said", [
    ("import sys\nsys.exit(0)\n", "SystemExit"),
    ("raise RuntimeError('boom at import')\n", "RuntimeError: boom at import"),
    ("def broken(:\n", "does not compile"),
])
def test_cli_target_module_that_fails_at_import_exits_two(tmp_path, monkeypatch, capsys, body,
                                                          said):
    (tmp_path / "evil_port.py").write_text(body)
    monkeypatch.chdir(tmp_path)
    sys.modules.pop("evil_port", None)
    assert refopt_main(["verify", "adamx", "evil_port:AdamX"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and said in err[0], err


@pytest.mark.parametrize("flag", ["--json", "--write-inputs"])
def test_cli_output_paths_checked_before_work(tmp_path, monkeypatch, capsys, flag):
    monkeypatch.chdir(PORTS)
    target = tmp_path / ("adir" if flag == "--json" else "afile")
    target.mkdir() if flag == "--json" else target.write_text("x")
    argv = ["verify", "adamx"] + (["torch_ports:AdamX"] if flag == "--json" else []) + \
        [flag, str(target), "--cases", "adamx_official_defaults_float64"]
    assert refopt_main(argv) == 2
    captured = capsys.readouterr()
    assert "PASS" not in captured.out
    assert len(captured.err.strip().splitlines()) == 1 and flag in captured.err


# -- diagnoses: float32 state, alone and with one mistake; no misleading "closest" ------------

def test_float32_state_alone_and_combined_with_a_mistake_is_named():
    cases = [casekit.make_case("adamx", n_steps=12)]
    alone = verify_cases(cases, lp.AdamXFloat32State).results[0]
    assert alone.status == "FAIL" and alone.diagnosis.keys == ["state_float32"], \
        alone.diagnosis.message
    both = verify_cases(cases, lp.AdamXFloat32StateEpsInsideSqrt).results[0]
    assert both.status == "FAIL"
    assert both.diagnosis.keys == ["state_float32+eps_inside_sqrt"], both.diagnosis.message


def test_float32_scalars_are_named_in_float64_and_pass_in_float32():
    """C-Optim's foreach habit: the port is float32-exact in its scalars, so its float32 cases
    pass and every failing float64 case is named; torch's float32 sqrt is not correctly rounded,
    which the match allows for (one ulp in each scalar)."""
    rep = verify_rule("cadamw", lp.CAdamWFloat32Scalars, cases="cadamw_torch_*")
    statuses = _statuses(rep)
    valid = [r for r in rep.results if "invalid" not in r.case_id and r.status != "n/a"]
    assert {r.status for r in valid if r.case_id.endswith("float32")} == {"pass"}, statuses
    failed = [r for r in valid if r.status == "FAIL"]
    assert failed and all(r.case_id.endswith("float64") for r in failed), statuses
    for r in failed:
        assert r.diagnosis.keys == ["scalars_float32"], (r.case_id, r.diagnosis.message)


def test_float32_state_updated_in_place_with_float32_arithmetic_is_named():
    """ReaLLM-Forge's habits: m_t in the denominator, named in float32; in float64 the float32
    buffer is also squared and scaled in float32, which the third float32-state reading
    reproduces (its last bit up to the library's rounding)."""
    rep = verify_rule("adams", lp.AdamSFloat32InPlaceMtDenominator,
                      cases="adams_paper_[dms]*")
    failed = [r for r in rep.results if r.status == "FAIL"]
    assert {r.case_id.rsplit("_", 1)[1] for r in failed} == {"float32", "float64"}
    for r in failed:
        want = ["adams_m_t_denominator"] if r.case_id.endswith("float32") else \
            ["state_float32+adams_m_t_denominator"]
        assert r.diagnosis is not None and r.diagnosis.keys == want, \
            (r.case_id, r.diagnosis and r.diagnosis.message)


def test_no_closest_mistake_is_named_when_none_is_near():
    rep = verify_cases([casekit.make_case("adamx")], torch_ports.AdamS)  # another rule entirely
    msg = rep.results[0].diagnosis.message
    assert "no known mistake matches" in msg and "none comes within 10x" in msg
    assert "closest" not in msg


def test_pattern_across_cases_is_stated():
    rep = verify_rule("adamx", torch_ports.AdamXEpsInsideSqrt, dtype="float64",
                      cases="adamx_official_[dls]*")
    assert "pattern: all " in rep.table() and "match eps_inside_sqrt" in rep.table()


@pytest.mark.parametrize("rule", ["adam", "adamw", "cadamw", "sgdm", "adax"])
def test_every_baseline_mistake_is_diagnosed_as_itself(rule):
    """The catalogue covers the baselines: each mistake planted in refopt's reference, run as
    a port on the rule's float64 cases, fails where it is visible and names itself."""
    from refopt.verify.adapters import RulePort
    from refopt.verify.diagnose import mistakes_for

    seen, visible = set(), 0
    for case in load_cases(rule, dtype="float64"):
        if case.result == "invalid":
            continue
        for m in mistakes_for(case):
            if "+" in m.key or m.key in seen or m.key == "state_float32":
                continue
            built = m.build(case)
            mutant = built[0] if isinstance(built, list) else built
            r = verify_cases([case], RulePort(mutant, rebuild=False)).results[0]
            if r.status == "pass":
                continue  # invisible in this case (e.g. eps placement where v >> eps)
            seen.add(m.key)
            visible += 1
            assert r.status == "FAIL" and m.key in r.diagnosis.keys, (case.case_id, m.key,
                                                                       r.diagnosis.message)
    assert visible >= 2, f"no visible mistake for {rule}"


def test_a_broken_case_of_another_rule_does_not_block_verify(tmp_path):
    import shutil

    from refopt.golden import SUITE_DIR

    suite = tmp_path / "suite"
    shutil.copytree(SUITE_DIR, suite)
    victim = sorted(suite.glob("adams_paper_defaults_float64.json"))[0]
    victim.write_text("{not json")
    rep = verify_rule("adamx", torch_ports.AdamX, cases="adamx_official_defaults_*",
                      directory=suite)
    assert rep.results and rep.exit_status == 0, rep.table()


def test_api_rows_construct_the_port_the_way_verify_does():
    """--api builds the optimizer like verify: hyperparameters also in the param groups (the
    official AdamS reads weight_decay from there only) and refopt's option names that reach
    only **kwargs dropped where the port refuses them (heavyball's habit); before, every row of
    both raised (KeyError: 'weight_decay'; TypeError: unknown keyword arguments)."""
    from refopt.verify.api import check_api

    groups = check_api("adams", lp.AdamSReadsGroups, variant={"bias_correction": True})
    assert [r.status for r in groups.rows if r.status != "n/a"] == ["pass"] * 4, groups.table()
    refusing = check_api("adamx", lp.AdamXRefusesUnknownKwargs)
    assert not any("unknown keyword" in r.reason for r in refusing.rows), refusing.table()
    assert [r.status for r in refusing.rows if r.status != "n/a"] == ["pass"] * 4, \
        refusing.table()
