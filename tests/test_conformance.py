"""Conformance against public code: ``refopt verify`` on the optimizer packages of the index,
each with its expected verdict and cause (docs/conformance.md lists them all).

The packages come with the ``conformance`` extra (``make test`` installs it; timm is installed
without its dependencies, since its top-level import needs torchvision, which does not load
beside this machine's CPU torch: :func:`_timm_adamw` imports ``timm.optim.adamw`` without
running ``timm/__init__``). The official repositories (AdamNX, AdamS) are not packages: set
``REFOPT_OFFICIAL_PORTS`` to a folder holding ``adamnx/adamnx.py`` (+ its ``optimizer.py``)
and ``adams_official/new_optimizers.py`` from mengzhu0308/AdamNX and pku-huzhang/AdamS to run
those too; refopt never ships their code.
"""
from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import pytest

from refopt.verify import verify_rule

sys.path.insert(0, str(Path(__file__).parent / "ports"))
import public_ports  # noqa: E402

torch = pytest.importorskip("torch", reason="torch is optional (extra refopt[torch])")


def _timm_adamw():
    return public_ports.timm_adamw()


def test_timm_cautious_adamw_passes_as_the_torch_eps_cadamw():
    """timm AdamWLegacy(caution=True) is spec alphaadam.md E5: cadamw with torch-style eps."""
    cls = _timm_adamw()
    rep = verify_rule("cadamw", cls, options={"caution": True},
                      variant={"bias_correction": "torch"})
    assert rep.exit_status == 0, rep.table()
    ran = [r for r in rep.results if r.counted]
    assert len(ran) >= 8 and {r.dtype for r in ran} == {"float32", "float64"}
    assert all(r.case_id.startswith("cadamw_torch") for r in ran)


def test_timm_cautious_adamw_undeclared_is_named_torch_style_eps():
    """Run as the default (HF-eps, C-Optim) variant, its failures name the variant it is."""
    cls = _timm_adamw()
    rep = verify_rule("cadamw", cls, options={"caution": True}, dtype="float64",
                      cases="cadamw_count_*")
    failed = [r for r in rep.results if r.status == "FAIL" and r.diagnosis is not None]
    assert failed, rep.table()
    named = [r for r in failed if "torch_style_eps" in r.diagnosis.keys]
    assert len(named) >= 0.8 * len(failed), rep.table()
    assert "torch_style_eps" in rep.table()


def test_pytorch_optimizer_adams_is_a_name_collision():
    po = pytest.importorskip("pytorch_optimizer", reason="extra refopt[conformance]")
    rep = verify_rule("adams", po.AdamS, dtype="float64", cases="adams_paper_d*")
    assert rep.exit_status == 1
    for r in rep.results:
        if r.status == "FAIL":
            assert "name collision" in r.diagnosis.message and "2011.11152" in \
                r.diagnosis.message


def _official(sub: str) -> Path:
    root = os.environ.get("REFOPT_OFFICIAL_PORTS")
    if not root:
        pytest.skip("set REFOPT_OFFICIAL_PORTS to a folder with the official AdamNX/AdamS code "
                    "(docs/conformance.md says how) to run the official classes")
    path = Path(root) / sub
    if not path.is_dir():
        pytest.skip(f"{path} does not exist")
    return path


def _import_from(folder: Path, module: str, attr: str, monkeypatch):
    monkeypatch.syspath_prepend(str(folder))
    for name in (module, "optimizer"):
        sys.modules.pop(name, None)
    return getattr(importlib.import_module(module), attr)


# The official AdamNX calls a torch health check that torch 2.13 deprecates, every step.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_official_adamnx_passes_with_no_options(monkeypatch):
    cls = _import_from(_official("adamnx"), "adamnx", "AdamNX", monkeypatch)
    rep = verify_rule("adamx", cls)
    assert rep.exit_status == 0, rep.table()
    by = {r.case_id: r for r in rep.results}
    assert by["adamx_official_invalid-beta2-0_float64"].status == "adv"
    ignored = [r for r in rep.results if "the port ignores" in r.message]
    assert {m for r in ignored for m in ("weight_decay_mode", "state_dtype")
            if m in r.message} == {"weight_decay_mode", "state_dtype"}


def test_official_adams_passes_its_code_form_declared(monkeypatch):
    """Every valid case of the code form passes with the declared variant, no wrapper. The one
    failure is real: the code checks ``lr < 0`` only, so it accepts lr = inf (and NaN), where
    the step has no value (inf * 0); negative weight decay is refused by refopt's policy only."""
    cls = _import_from(_official("adams_official"), "new_optimizers", "AdamS", monkeypatch)
    rep = verify_rule("adams", cls, variant={"bias_correction": True})
    assert all(r.case_id.startswith("adams_official") for r in rep.results if r.counted)
    bad = {r.case_id: r for r in rep.results if not r.ok and r.counted}
    assert set(bad) == {"adams_official_invalid-lr-inf_float64"}, rep.table()
    assert "accepted an invalid case" in bad["adams_official_invalid-lr-inf_float64"].message
    assert all(r.status in ("pass", "ok*", "adv") for r in rep.results
               if r.counted and r.result != "invalid")


def test_heavyball_cautious_adamw_fails_with_its_real_causes(monkeypatch):
    """heavyball 3.2 AdamW(caution=True) is a torch-eps Cautious AdamW with three differences
    (docs/conformance.md): under its default torch.compile a 0-d float64 param is never
    updated; with compile off, float64 defaults and float64 storage, what is left is its eps
    floor max(sqrt(v_hat), eps) where refopt adds eps. Both are named."""
    hb = pytest.importorskip("heavyball", reason="extra refopt[conformance]")
    import heavyball.utils as hb_utils

    rep = verify_rule("cadamw", hb.AdamW, options={"caution": True},
                      variant={"bias_correction": "torch"}, cases="cadamw_torch_variant_float64")
    r = rep.results[0]
    assert r.status == "FAIL" and "never changed param.0 (0-d" in r.diagnosis.message, \
        rep.table()
    monkeypatch.setattr(hb_utils, "compile_mode", None)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)   # its lr warmup factor is a default-dtype tensor
    try:
        rep = verify_rule("cadamw", hb.AdamW, options={"caution": True,
                                                       "storage_dtype": "float64"},
                          variant={"bias_correction": "torch"}, dtype="float64",
                          cases="cadamw_torch_[tv]*")
    finally:
        torch.set_default_dtype(default)
    failed = [r for r in rep.results if r.status == "FAIL"]
    assert len(failed) >= 2, rep.table()
    assert all(r.diagnosis.keys == ["eps_floor"] for r in failed), rep.table()
