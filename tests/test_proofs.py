"""The proof registry (refopt.proofs): every claim reaches its expected status, mutated claims are
rejected (no claim can pass vacuously), and `refopt prove` reports through its exit code."""
from __future__ import annotations

import subprocess
import sys

import pytest
import sympy as sp

from refopt import proofs
from refopt.proofs import NUMERIC, OPEN, PROVED, REFUTED, STATUSES, mutate, run_claim
from refopt.proofs.registry import FAILS, HOLDS, ClaimResult, get_claim

CLAIMS = proofs.all_claims()


def test_registry_covers_every_spec_obligation():
    ids = {c.id for c in CLAIMS}
    expected = ({f"adamx.T{i}" for i in ("1a", "1b", "1c", "2", "3", "4a", "4b", "5a", "5b", "5d", "6a",
                                         "6b", "7a", "7b", "8a", "8b", "8c", "9a")}
                | {f"adams.A{i}" for i in range(1, 15)} | {"adams.N1", "adams.N2", "adams.rate"}
                | {f"alphaadam.B{i}" for i in range(1, 10)}
                | {"alphaadam.4.3a", "alphaadam.4.3b", "alphaadam.4.3c", "alphaadam.Th3.5"})
    assert expected <= ids, sorted(expected - ids)
    for c in CLAIMS:
        assert c.expected_status in STATUSES and c.expected_status != "error"
        assert c.derivation is not None or c.numeric is not None, c.id
        assert c.statement_words and c.source and c.rule in ("adamx", "adams", "alphaadam")
        # "proved" needs an exact derivation; "open" needs a reason
        if c.expected_status == PROVED:
            assert c.derivation is not None, c.id
        if c.expected_status == OPEN:
            assert c.open_reason, c.id


@pytest.mark.parametrize("claim", CLAIMS, ids=[c.id for c in CLAIMS])
def test_claim_reaches_expected_status(claim):
    r = run_claim(claim)
    assert r.status == claim.expected_status, r.detail
    if r.status == PROVED:
        assert r.derivation.outcome == HOLDS
        assert r.numeric is None or r.numeric.outcome == HOLDS
    if r.status == REFUTED:
        # a refutation carries its counterexample
        assert "EXCEEDS" in r.detail or "NOT" in r.detail or "not" in r.detail


# -- mutation checks: perturb a constant or a sign; the checker must reject the claim ----------
c_ = sp.Symbol("c")
a, g = sp.symbols("a g", real=True)
b1, b2 = sp.symbols("beta1 beta2", positive=True)
rho = sp.Symbol("rho", real=True)
sigma = sp.Symbol("sigma", positive=True)
t_ = sp.Symbol("t", positive=True, integer=True)

MUTATIONS = [
    # (claim id, kind, overrides as a function of the original data)
    ("adamx.T1a", "identity", lambda d: {"beta2_2": 1 / (1 - c_)}),
    ("adamx.T1a", "table", lambda d: {"printed_beta2_2": "0.5000251259"}),
    ("adamx.T2", "identity", lambda d: {"weight": d["weight"] * (1 + sp.Symbol("c", positive=True) ** 0 / 100)}),
    ("adamx.T4a", "inequality", lambda d: {"middle": 1 - 1 / (t_ + 1)}),
    ("adamx.T4b", "table", lambda d: {"adamnx": ("9.995e-2", "9.950e-3", "9.507e-4", "5.803e-5")}),
    ("adamx.T5a", "inequality", lambda d: {"bound": d["bound"] / 2}),
    ("adamx.T5b", "inequality", lambda d: {"bound": d["bound"] - 1 / (sp.E - 1)}),
    ("adamx.T5d", "limit", lambda d: {"rate": sp.Symbol("c", positive=True) ** (t_ + 1)}),
    ("adamx.T6a", "series", lambda d: {"series": d["series"] - sp.Symbol("e", positive=True) ** 3}),
    ("adamx.T6b", "table", lambda d: {"rows": {**d["rows"], 0.9: ("1.048074e-2", "95.41", "10", "436", "656")}}),
    ("adamx.T8b", "limit", lambda d: {"adam_limit": d["adam_limit"] * 2}),
    ("adamx.T8c", "table", lambda d: {"adamnx": {**d["adamnx"], 60_000: ("412", "47.7")}}),
    ("adams.A1", "identity", lambda d: {"sos": (b2 * (1 - b1) * a + b1 * (1 - b2) * g) ** 2 / (b2 * (1 - b2))}),
    ("adams.A1", "identity", lambda d: {"C": d["C"] + sp.Rational(1, 100)}),
    ("adams.A2", "inequality", lambda d: {"witness_ratio": b1 * (1 - b2) / (b2 * (1 + b1))}),
    ("adams.A2", "table", lambda d: {"printed": {**d["printed"], (0.9, 0.999): "3.287981"}}),
    ("adams.A3", "inequality", lambda d: {"excess": (b1 + b2) ** 2 / (b2 * (1 - b2))}),
    ("adams.A5", "identity", lambda d: {"factored": (g + a) * ((b1 ** 2 - b2) * a + (2 * b1 - b1 ** 2 - b2) * g)}),
    ("adams.A7", "limit", lambda d: {"r_paper": d["r_paper"] * (1 + b1 ** t_)}),
    ("adams.A11", "inequality", lambda d: {"constants": {**d["constants"], "cosh": (sp.Rational(9, 10), 1)}}),
    ("adams.A12", "limit", lambda d: {"c_to_0": (1, sp.Rational(1, 3))}),
    ("adams.rate", "exponents", lambda d: {"eta_exp": sp.Rational(-1, 2)}),
    ("alphaadam.B1", "probability", lambda d: {"p_keep": sp.Rational(1, 2) + sp.asin(rho) / (2 * sp.pi)}),
    ("alphaadam.B2", "probability", lambda d: {"E_gmphi": d["E_gmphi"] - sigma ** 2 * rho}),
    ("alphaadam.B4", "inequality", lambda d: {"band_low": (1 - b1) * g ** 2 / b1}),
    ("alphaadam.B5", "table", lambda d: {"printed": "0.535233"}),
    ("alphaadam.B7", "identity", lambda d: {"soft_mean": 1 + sp.Symbol("q", positive=True)}),
    ("alphaadam.4.3a", "identity", lambda d: {"var_ratio": 1 / (1 + b1)}),
    ("alphaadam.4.3c", "probability", lambda d: {"at_rho0": sigma ** 2 / (2 * sp.pi)}),
]


@pytest.mark.parametrize("claim_id,kind,change", MUTATIONS,
                         ids=[f"{m[0]}-{m[1]}-{i}" for i, m in enumerate(MUTATIONS)])
def test_mutated_claim_is_rejected(claim_id, kind, change):
    claim = get_claim(claim_id)
    assert claim.expected_status in (PROVED, NUMERIC)
    r = run_claim(mutate(claim, **change(claim.data)))
    assert r.status == REFUTED, (claim_id, kind, r.status, r.detail)
    failing = [v for v in (r.derivation, r.numeric) if v is not None and v.outcome == FAILS]
    assert failing, r


def test_mutation_kinds_cover_every_rule_and_kind():
    rules = {m[0].split(".")[0] for m in MUTATIONS}
    kinds = {m[1] for m in MUTATIONS}
    assert rules == {"adamx", "adams", "alphaadam"}
    assert {"identity", "inequality", "limit", "table"} <= kinds


def test_refuted_claims_flip_when_corrected():
    """The refutations are real: the corrected value passes the same checker."""
    t6d = get_claim("adamx.T6d")
    fixed = mutate(t6d, shares={**t6d.data["shares"], 31_000: "95.7%"})
    assert run_claim(fixed).status == NUMERIC
    b8b = get_claim("alphaadam.B8b")
    assert run_claim(mutate(b8b, rel_tol=2e-15)).status == NUMERIC
    # T3b holds for the reference (3.3e-16 <= 4.4e-16); a tighter printed gap would be refuted.
    assert run_claim(mutate(get_claim("adamx.T3b"), float_gap=1e-16)).status == REFUTED


def test_checker_error_is_reported_not_hidden():
    claim = get_claim("adams.A3")
    broken = mutate(claim, C=None)
    r = run_claim(broken)
    assert r.status == "error" and "Error" in r.detail


def test_mutate_rejects_unknown_keys():
    with pytest.raises(KeyError, match="no data entries"):
        mutate(get_claim("adams.A1"), nonexistent=1)


def test_run_all_signature_for_report(monkeypatch):
    from refopt.proofs import registry

    cheap = [get_claim("adams.A3"), get_claim("adams.A8"), get_claim("adamx.T7b")]
    monkeypatch.setattr(registry, "all_claims",
                        lambda rule=None: [c for c in cheap if rule is None or c.rule == rule])
    results = proofs.run_all(rule="adams")
    assert [r.claim_id for r in results] == ["adams.A3", "adams.A8"]
    assert results and all(isinstance(r, ClaimResult) for r in results)
    for r in results:
        for field in ("claim_id", "rule", "title", "status", "expected_status", "seconds", "detail", "source"):
            assert hasattr(r, field)
        assert r.rule == "adams"
    monkeypatch.undo()
    with pytest.raises(ValueError, match="rule must be one of"):
        proofs.run_all(rule="nope")


# -- the command line -------------------------------------------------------------------------
def _prove(*args):
    return subprocess.run([sys.executable, "-m", "refopt", "prove", *args], capture_output=True, text=True,
                          timeout=300)


def test_cli_exit_zero_and_table():
    out = _prove("--claim", "adams.A3", "--claim", "adamx.T6d", "--claim", "alphaadam.Th3.5")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["claim", "status", "seconds"]
    assert any(line.startswith("adams.A3") and "proved" in line for line in lines)
    assert any(line.startswith("adamx.T6d") and "refuted" in line for line in lines)
    assert any(line.startswith("alphaadam.Th3.5") and "open" in line for line in lines)


def test_cli_bad_claim_id_exits_2():
    out = _prove("--claim", "adams.A99")
    assert out.returncode == 2 and "unknown claim" in out.stderr


def test_cli_nonzero_when_a_proved_claim_fails(monkeypatch, capsys, tmp_path):
    from refopt.proofs import cli, registry

    original = registry.all_claims

    def sabotaged(rule=None):
        return [mutate(c, C=c.data["C"] + 1) if c.id == "adams.A3" else c for c in original(rule)]

    monkeypatch.setattr(registry, "all_claims", sabotaged)
    from refopt.cli import main
    rc = main(["prove", "--rule", "adams", "--claim", "adams.A3", "--claim", "adams.A8",
               "--render", str(tmp_path)])
    captured = capsys.readouterr()
    assert rc == 1
    assert "expected proved" in captured.out and "adams.A3" in captured.err
    doc = (tmp_path / "adams.md").read_text()
    assert "**(unexpected)**" in doc and "## adams.A8" in doc
    del cli


def test_committed_documents_exist_and_list_every_claim():
    from pathlib import Path

    root = Path(proofs.__file__).resolve().parent
    for rule in ("adamx", "adams", "alphaadam"):
        doc = root / f"{rule}.md"
        if not doc.exists():
            pytest.skip("non-editable install without the rendered documents")
        text = doc.read_text()
        for c in proofs.all_claims(rule):
            assert f"## {c.id}" in text, (rule, c.id)
