"""The shipped ports, ``refopt.torch`` and ``refopt.optax`` (issue 15): the golden suite through
each of them via ``refopt verify`` (both dtypes, every case they can express; the torch ports on
both paths), foreach vs single-tensor bit for bit in float64, a torch model trained with
``from refopt.torch import AdamS``, a state_dict round trip through ``torch.load(weights_only=True)``,
and the ``--api`` framework check (refopt.verify.api) on refopt's ports and on public ones.
"""
from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import refopt
from refopt.cli import main as refopt_main
from refopt.verify import load_cases, verify_rule

RULES = ("adamx", "adams", "alphaadam", "cadamw")
TORCH_CLASSES = {"adamx": "AdamX", "adams": "AdamS", "alphaadam": "AlphaAdam", "cadamw": "CAdamW"}


@pytest.fixture(scope="module")
def rt():
    pytest.importorskip("torch", reason="torch is optional (extra refopt[torch])")
    import refopt.torch as module
    return module


@pytest.fixture(scope="module")
def ro():
    pytest.importorskip("jax", reason="jax is optional (extra refopt[jax])")
    pytest.importorskip("optax", reason="optax is optional (extra refopt[jax]); verify's optax "
                                        "adapter applies updates with optax.apply_updates")
    import refopt.optax as module
    return module


@pytest.fixture(scope="module")
def suite():
    try:
        return {r: load_cases(r) for r in RULES}
    except FileNotFoundError as exc:
        pytest.skip(f"the golden suite is not built in this checkout: {exc}")


def test_refopt_imports_without_torch_and_jax():
    code = ("import sys; sys.modules.update(torch=None, jax=None, optax=None); import refopt, "
            "refopt.verify, refopt.verify.api, refopt.verify.cli, refopt.cli; "
            "refopt.cli.main(['verify', '--help'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "--api" in out.stdout


# -- the golden suite through every shipped port -------------------------------------------

@pytest.mark.parametrize("foreach", [False, True], ids=["single", "foreach"])
@pytest.mark.parametrize("rule", RULES)
def test_torch_port_passes_the_golden_suite(rt, suite, rule, foreach):
    rep = verify_rule(rule, getattr(rt, TORCH_CLASSES[rule]), options={"foreach": foreach})
    assert rep.passed, rep.table()
    # Every case runs, valid and invalid, both dtypes: the port expresses every option.
    assert len(rep.counted) == len(rep.results) == len(suite[rule])
    assert {r.dtype for r in rep.results} == {"float32", "float64"}
    assert all(r.status == "pass" for r in rep.results), rep.table()
    assert "exp_avg.0" in rep.results[0].comparison.compared


def _warming_jit(factory, eager_steps=25):
    """``factory`` whose ``update`` runs eagerly for its first ``eager_steps`` calls, then under
    ``jax.jit``: both ways are verified, and a short case does not pay a compilation (about
    0.3 s here)."""
    import functools

    import jax

    @functools.wraps(factory)
    def build(*args, **kwargs):
        tx = factory(*args, **kwargs)
        jitted, calls = jax.jit(tx.update), [0]

        def update(updates, state, params=None):
            calls[0] += 1
            fn = tx.update if calls[0] <= eager_steps else jitted
            return fn(updates, state, params)

        return type(tx)(tx.init, update)

    return build


@pytest.mark.parametrize("rule", RULES)
def test_optax_port_passes_the_golden_suite(ro, suite, rule):
    rep = verify_rule(rule, _warming_jit(getattr(ro, rule)))
    assert rep.passed, rep.table()
    assert {r.dtype for r in rep.counted} == {"float32", "float64"}
    assert all(r.status == "pass" for r in rep.counted), rep.table()
    # Only the nonfinite='skip' cases are not run: optax has no such policy (apply_if_finite).
    for r in rep.results:
        if not r.counted:
            assert "nonfinite" in r.message, r.message
    assert len(rep.results) - len(rep.counted) <= 1
    assert "exp_avg.0" in rep.results[0].comparison.compared


# -- foreach vs single tensor, bit for bit ---------------------------------------------------

TORCH_VARIANTS = [
    ("AdamX", {}), ("AdamX", {"weight_decay_mode": "l2", "coef_form": "naive"}),
    ("AdamX", {"state_dtype": "bfloat16"}), ("AdamX", {"state_dtype": "float16", "eps": 0.0}),
    ("AdamS", {}), ("AdamS", {"bias_correction": True}),
    ("AlphaAdam", {}), ("AlphaAdam", {"alpha_rule": "norm"}), ("AlphaAdam", {"alpha_rule": "soft"}),
    ("AlphaAdam", {"alpha_rule": "count+1", "mask_source": "m_t"}),
    ("AlphaAdam", {"first_step": "as_is", "strict": False, "gamma": 0.25}),
    ("AlphaAdam", {"bias_correction": "torch", "mask_source": "ones"}),
    ("CAdamW", {}), ("CAdamW", {"scaling": "count+1", "bias_correction": "torch"}),
]


def _run_torch(torch, cls, kwargs, n_steps=6, seed=0, dtype="float64", maximize=False,
               complex_param=True):
    rng = np.random.default_rng(seed)
    shapes = [(4, 3), (7,), ()]
    params = [torch.tensor(rng.standard_normal(s), dtype=getattr(torch, dtype)) for s in shapes]
    if complex_param:
        cdt = torch.complex128 if dtype == "float64" else torch.complex64
        params.append(torch.tensor(rng.standard_normal(5) + 1j * rng.standard_normal(5),
                                   dtype=cdt))
    opt = cls([{"params": params[:2]}, {"params": params[2:], "lr": 3e-3}], lr=1e-2,
              maximize=maximize, **kwargs)
    opt.grads_seen = []
    for t in range(n_steps):
        for i, p in enumerate(params):
            g = rng.standard_normal(p.shape) + (1j * rng.standard_normal(p.shape)
                                                if p.is_complex() else 0)
            p.grad = None if (t == 2 and i == 1) else torch.tensor(g, dtype=p.dtype)
        opt.grads_seen.append([p.grad for p in params])
        opt.step()
    return params, opt


@pytest.mark.parametrize("name,kwargs", TORCH_VARIANTS,
                         ids=[f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'defaults'}"
                              for n, kw in TORCH_VARIANTS])
def test_foreach_equals_single_tensor_bitwise_float64(rt, name, kwargs):
    import torch

    cls = getattr(rt, name)
    a, oa = _run_torch(torch, cls, dict(kwargs, foreach=False))
    b, ob = _run_torch(torch, cls, dict(kwargs, foreach=True))
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    for x, y in zip(a, b):
        for key in cls.buffers:
            assert torch.equal(oa.state[x][key], ob.state[y][key])
        assert oa.state[x]["step"] == ob.state[y]["step"]
    assert oa.state[a[1]]["step"] == 5          # its grad was None once


@pytest.mark.parametrize("name", list(TORCH_CLASSES.values()))
def test_torch_port_equals_the_reference_rule(rt, name):
    """A run with param groups, a None grad and a complex tensor, against refopt's rule: float64
    to the last bits (torch's CPU sqrt may misround next to a tie), float32 to a few ulp."""
    import torch

    cls = getattr(rt, name)
    rule_name = cls.rule_name
    for dtype, rtol in (("float64", 1e-14), ("float32", 1e-5)):
        rng = np.random.default_rng(1)
        params = [rng.standard_normal((4, 3)).astype(dtype), rng.standard_normal(6).astype(dtype)]
        rule = refopt.get_rule(rule_name, lr=1e-2)
        state = rule.init(params)
        tensors = [torch.tensor(p) for p in params]
        opt = cls(tensors, lr=1e-2, foreach=dtype == "float32")
        ref = params
        for t in range(8):
            grads = [rng.standard_normal(p.shape).astype(dtype) for p in params]
            if t == 3:
                grads[1] = None
            ref, state = rule.step(ref, grads, state)
            for p, g in zip(tensors, grads):
                p.grad = None if g is None else torch.tensor(g)
            opt.step()
        for p, q in zip(tensors, ref):
            np.testing.assert_allclose(p.numpy(), q, rtol=rtol, atol=0)


# -- the torch API ---------------------------------------------------------------------------

def test_adams_trains_a_tiny_torch_model(rt):
    import torch
    from refopt.torch import AdamS

    torch.manual_seed(0)
    x = torch.randn(64, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.1
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    opt = AdamS(model.parameters(), lr=1e-2, weight_decay=0.01)

    def closure():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        return loss

    first = closure().item()
    for _ in range(200):
        loss = opt.step(closure)
    assert loss.item() < 0.05 * first
    assert set(opt.state[next(model.parameters())]) == {"step", "exp_avg"}


@pytest.mark.parametrize("name", list(TORCH_CLASSES.values()))
def test_state_dict_round_trip_through_the_safe_loader_is_bitwise(rt, name):
    import torch

    cls = getattr(rt, name)
    full, ofull = _run_torch(torch, cls, {}, n_steps=6, seed=3)
    # The same run split after 3 steps: save, load with weights_only=True, resume.
    params, opt = _run_torch(torch, cls, {}, n_steps=3, seed=3)
    buf = io.BytesIO()
    torch.save({"params": [p.detach() for p in params], "opt": opt.state_dict()}, buf)
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)
    resumed = [p.clone() for p in ckpt["params"]]
    opt2 = cls([{"params": resumed[:2]}, {"params": resumed[2:], "lr": 3e-3}], lr=1e-2)
    opt2.load_state_dict(ckpt["opt"])
    assert opt2.state[resumed[0]]["step"] == 3 and opt2.state[resumed[1]]["step"] == 2
    for grads in ofull.grads_seen[3:]:      # the gradients the uninterrupted run saw next
        for p, g in zip(resumed, grads):
            p.grad = g
        opt2.step()
    for x, y in zip(full, resumed):
        assert torch.equal(x, y)


def test_complex_params_are_real_pairs_and_maximize_negates(rt):
    import torch

    z = torch.tensor([1 + 2j, -0.5 + 0.25j], dtype=torch.complex128)
    r = torch.view_as_real(z.clone()).clone()
    oz, orr = rt.AdamX([z], lr=0.1), rt.AdamX([r], lr=0.1)
    for k in range(4):
        g = torch.tensor([0.3 - 1j * k, 2.0 + 0.5j], dtype=torch.complex128)
        z.grad, r.grad = g, torch.view_as_real(g).clone()
        oz.step()
        orr.step()
    assert torch.equal(torch.view_as_real(z), r)
    a, _ = _run_torch(torch, rt.AlphaAdam, {}, maximize=True, seed=5)
    b, _ = _run_torch(torch, rt.AlphaAdam, {}, seed=5)
    assert not torch.equal(a[0], b[0])


def test_lr_tensor_nonfinite_policies_and_validation_messages(rt):
    import torch

    p, q = torch.ones(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    o1 = rt.AdamS([p], lr=torch.tensor(0.01, dtype=torch.float64))
    o2 = rt.AdamS([q], lr=0.01)
    for _ in range(3):
        p.grad = q.grad = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
        o1.step()
        o2.step()
    assert torch.equal(p, q)
    # nonfinite: raise before anything moves; skip the whole step; propagate.
    p.grad = torch.tensor([1.0, float("nan"), 0.0], dtype=torch.float64)
    before = p.clone()
    with pytest.raises(FloatingPointError, match=r"grads\[0\] contains NaN or inf"):
        o1.step()
    assert torch.equal(p, before) and o1.state[p]["step"] == 3
    o3 = rt.AdamS([p], nonfinite="skip")
    o3.step()
    assert torch.equal(p, before) and not o3.state
    # The reference's own messages, one line, naming the parameter and its range.
    cases = [({"betas": (0.9, 1.0)}, "adams"), ({"lr": -1.0}, "adams"),
             ({"eps": float("nan")}, "adamx"), ({"alpha_rule": "x"}, "alphaadam"),
             ({"scaling": "n"}, "cadamw"), ({"bias_correction": 1}, "adams")]
    classes = {"adams": rt.AdamS, "adamx": rt.AdamX, "alphaadam": rt.AlphaAdam,
               "cadamw": rt.CAdamW}
    for bad, rule in cases:
        with pytest.raises((ValueError, TypeError)) as ref:
            refopt.get_rule(rule, **bad)
        with pytest.raises(type(ref.value)) as got:
            classes[rule]([torch.zeros(2)], **bad)
        assert str(got.value) == str(ref.value) and "\n" not in str(got.value)
    opt = rt.AdamS([torch.zeros(2)])
    with pytest.raises(ValueError, match=r"weight_decay must be finite and >= 0"):
        opt.add_param_group({"params": [torch.zeros(1)], "weight_decay": -1.0})
    assert len(opt.param_groups) == 1
    with pytest.raises(ValueError, match="1-element tensor"):
        rt.AdamS([torch.zeros(2)], lr=torch.tensor([0.1, 0.2]))


def test_torch_defaults_are_the_reference_defaults(rt):
    import inspect

    for rule, name in TORCH_CLASSES.items():
        sig = inspect.signature(getattr(rt, name).__init__).parameters
        for key, value in refopt.RULES[rule].cls.defaults.items():
            assert sig[key].default == value, (name, key)


# -- optax -----------------------------------------------------------------------------------

def test_optax_transformations_jit_over_pytrees(ro):
    import jax
    import jax.numpy as jnp
    import optax

    params = {"w": jnp.ones((3, 2), jnp.float32), "b": {"c": jnp.zeros(2, jnp.float32)}}
    grads = jax.tree_util.tree_map(lambda p: jnp.full_like(p, 0.5), params)
    for factory in (ro.adamx, ro.adams, ro.alphaadam, ro.cadamw):
        tx = factory(learning_rate=optax.linear_schedule(1e-2, 1e-3, 10))
        state = tx.init(params)

        @jax.jit
        def step(params, state):
            updates, state = tx.update(grads, state, params)
            return optax.apply_updates(params, updates), state

        p1, s1 = step(params, state)
        p2, s2 = step(p1, s1)
        assert jax.tree_util.tree_structure(p2) == jax.tree_util.tree_structure(params)
        assert int(s2.count) == 2 and float(p2["w"][0, 0]) < 1.0
        assert ro.apply_updates(params, tx.update(grads, state, params)[0])["w"].dtype == \
            jnp.float32
    with pytest.raises(ValueError, match=r"betas\[1\] must be in \[0, 1\)"):
        ro.adams(betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="learning_rate must be finite and >= 0"):
        ro.adamx(learning_rate=-1.0)


# -- the framework-API check -----------------------------------------------------------------

@pytest.mark.parametrize("rule", RULES)
def test_api_rows_pass_for_the_shipped_ports(rt, rule):
    from refopt.verify.api import ROWS, check_api

    rep = check_api(rule, getattr(rt, TORCH_CLASSES[rule]))
    assert [r.check for r in rep.rows] == list(ROWS)
    assert [r.status for r in rep.rows] == ["pass"] * len(ROWS), rep.table()


def test_api_names_what_a_port_gets_wrong(rt):
    from refopt.verify.api import check_api

    class GroupBlind(rt.AdamS):           # reads the defaults, not the group's values
        def step(self, closure=None):
            for g in self.param_groups:
                g["lr"], g["weight_decay"] = self.defaults["lr"], self.defaults["weight_decay"]
            return super().step(closure)

    class StepsNoneGrads(rt.AdamS):       # advances every tensor's step, grad or not
        def step(self, closure=None):
            loss = super().step(closure)
            for p in self.param_groups[0]["params"]:
                if p.grad is None and self.state[p]:
                    self.state[p]["step"] += 1
            return loss

    rows = {r.check: r for r in check_api("adams", GroupBlind).rows}
    assert rows["param_groups"].status == "FAIL" and "differs" in rows["param_groups"].reason
    rows = {r.check: r for r in check_api("adams", StepsNoneGrads).rows}
    assert rows["none_grads"].status == "FAIL" and "step count" in rows["none_grads"].reason


def _timm_adamw():
    sys.path.insert(0, str(Path(__file__).parent / "ports"))
    import public_ports

    return public_ports.timm_adamw()


def test_api_on_public_ports(rt):
    from refopt.verify.api import check_api

    timm = _timm_adamw()
    rep = check_api("cadamw", timm, options={"caution": True}, variant={"bias_correction": "torch"})
    assert rep.passed and all(r.status == "pass" for r in rep.rows), rep.table()
    po = pytest.importorskip("pytorch_optimizer", reason="extra refopt[conformance]")
    rows = {r.check: r for r in check_api("adams", po.AdamS).rows}
    # Its stable weight decay normalises over every param of the optimizer, and a step without
    # any gradient raises (ZeroParameterSizeError).
    assert rows["param_groups"].status == "FAIL", rows["param_groups"].reason
    assert rows["none_grads"].status == "FAIL"
    assert "ZeroParameterSizeError" in rows["none_grads"].reason
    assert rows["state_dict"].status == rows["foreach"].status == "pass"


def test_cli_verify_api(rt, suite, capsys):
    status = refopt_main(["verify", "adams", "refopt.torch:AdamS", "--api", "--cases",
                          "adams_paper_defaults_*"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "framework API of refopt.torch:AdamS" in out and "API: 6 pass, 0 FAIL, 0 n/a" in out


def test_cli_verify_api_refuses_a_port_that_is_not_a_torch_optimizer(ro, suite, capsys):
    status = refopt_main(["verify", "adams", "refopt.optax:adams", "--api", "--cases",
                          "adams_paper_defaults_float32"])
    captured = capsys.readouterr()
    assert status == 2 and "torch.optim.Optimizer subclass" in captured.err


@pytest.mark.parametrize("name", list(TORCH_CLASSES.values()))
def test_cuda_paths_agree_with_each_other_and_with_cpu(rt, name):
    """CUDA tensors: foreach (the default there) and single-tensor agree bit for bit in float64
    and with the CPU run to float64 rounding (divisions by per-step scalars are divisions on
    CUDA too, not reciprocal multiplies)."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device here (torch.cuda.is_available() is False)")
    cls = getattr(rt, name)
    runs = {}
    for device, foreach in (("cpu", False), ("cuda", False), ("cuda", True)):
        rng = np.random.default_rng(7)
        params = [torch.tensor(rng.standard_normal(s), device=device) for s in ((64, 3), (5,))]
        opt = cls(params, lr=1e-2, foreach=foreach)
        for t in range(10):
            for p in params:
                p.grad = torch.tensor(rng.standard_normal(tuple(p.shape)), device=device)
            opt.step()
        runs[device, foreach] = [p.cpu() for p in params]
    for x, y in zip(runs["cuda", False], runs["cuda", True]):
        assert torch.equal(x, y)
    for x, y in zip(runs["cuda", True], runs["cpu", False]):
        np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-13, atol=0)
