"""numba's multi-tensor path for counted masks and the pooled out-of-place outputs (issue 19).

AlphaAdam's and C-AdamW's small tensors (under SERIAL_BELOW elements) of one (t, dtype) group are
stepped by one launch of a table driver (``_masked_batch``/``_cautious_batch``: per tensor its
count, its alpha, its update); ``step``'s small outputs are views of one pooled array per dtype.
Claims: bitwise equal to the NumPy reference (``alpha_rule="norm"``: bitwise equal to the
per-tensor numba plan, which tests/test_kernels_numba.py bounds against the reference), with
mixed dtypes, None gradients, tensors of several step counts, 0-d, empty and strided inputs and
a large tensor beside them; the driver really runs (spied); a pooled output still referenced is
never overwritten.
"""
import numpy as np
import pytest

pytest.importorskip("numba", reason="numba is an optional backend (pip install refopt[numba])")

import refopt  # noqa: E402
from refopt.kernels import numba_backend as nb  # noqa: E402
from kernel_histories import assert_bitwise, step_history  # noqa: E402

SHAPES = [(7,), (3, 5), (), (0,), (nb.SERIAL_BELOW + 3,), (1000,), (4,), (2, 1, 3)]
DTYPES = [np.float32, np.float32, np.float64, np.float32, np.float32, np.float64, np.float64,
          np.float32]
NONE_AT = {1: (), 2: (0, 5), 3: (1,), 4: (2, 6), 5: ()}  # tensors without a gradient at step t

COUNTED = [("alphaadam", {"alpha_rule": r, "mask_source": s, "first_step": f, "strict": st,
                          **({"gamma": 0.25} if r != "soft" else {})})
           for r in ("count", "count+1", "soft")
           for s, f, st in (("m_prev", "unmasked", True), ("m_prev", "cautious", False),
                            ("m_prev", "as_is", True), ("m_t", "unmasked", True))] + [
    ("alphaadam", {"alpha_rule": "count", "density_floor": 0.3}),
    ("alphaadam", {"alpha_rule": "soft", "density_floor": 0.6}),
    ("cadamw", {}), ("cadamw", {"scaling": "count+1"}),
    ("cadamw", {"bias_correction": "torch"}),
    ("cadamw", {"bias_correction": "torch", "scaling": "count+1", "eps": 0.0})]


def _id(cfg):
    return cfg[0] + "-" + ",".join(f"{k}={v}" for k, v in cfg[1].items())


def _grads(rng, t):
    out = []
    for k, (s, d) in enumerate(zip(SHAPES, DTYPES)):
        if k in NONE_AT[t]:
            out.append(None)
            continue
        g = rng.standard_normal(s) * (0.5 + t % 3)
        g.reshape(-1)[t % 4::4] = 0.0  # exact zeros: mask ties (strict against >= 0)
        out.append(g.astype(d))
    g1 = out[1]
    if g1 is not None:  # a strided gradient of the same values
        out[1] = np.repeat(g1, 2, axis=1)[:, ::2]
        assert not out[1].flags.c_contiguous
    return out


@pytest.fixture
def launched(monkeypatch):
    """Tensors stepped by the table drivers, per launch (the in-place steps' read-only count of
    non-finite gradients, also a table launch, is left out)."""
    seen = []
    original = nb.NumbaRule._launch_table

    def spy(kernel, rows, sizes, args):
        if kernel is not nb._count_nonfinite_batch:
            seen.append((kernel, len(sizes)))
        return original(kernel, rows, sizes, args)

    monkeypatch.setattr(nb.NumbaRule, "_launch_table", staticmethod(spy))
    return seen


def _run(rule, mode, steps=5, seed=0):
    return step_history(rule, mode, SHAPES, DTYPES, _grads, lambda t: 1e-2 / (1 + 0.1 * t),
                        steps, seed)


@pytest.mark.parametrize("mode", ["step_", "step"])
@pytest.mark.parametrize("cfg", COUNTED, ids=_id)
def test_counted_masks_batched_bitwise_against_reference(cfg, mode, launched):
    name, hyper = cfg
    ref = refopt.get_rule(name, **hyper)
    fast = refopt.get_rule(name, backend="numba", **hyper)
    assert_bitwise(_run(ref, "step"), _run(fast, mode))
    # Every step after the first counts (and the first too, but for m_prev's unmasked step,
    # whose known alpha goes to the replayed rules' driver): each (t, dtype) group of small
    # tensors with a gradient is one launch.
    driver = nb._cautious_batch if name == "cadamw" else nb._masked_batch
    driver = nb._COUNTED_IN_PLACE[driver] if mode == "step_" else driver
    known = nb._masked_adam_batch_in if mode == "step_" else nb._masked_adam_batch_out
    first_unmasked = name == "alphaadam" and fast.hyper["mask_source"] == "m_prev" \
        and fast.hyper["first_step"] == "unmasked"
    assert {kernel for kernel, _ in launched} == ({driver, known} if first_unmasked
                                                  else {driver})
    stepped = sum(n for kernel, n in launched if kernel is driver)
    small_with_grad = {t: [k for k in range(len(SHAPES)) if k not in NONE_AT[t] and k != 4]
                       for t in NONE_AT}
    expected = sum(len(v) for t, v in small_with_grad.items() if t > 1 or not first_unmasked)
    assert stepped == expected
    assert sum(n for _, n in launched) == sum(len(v) for v in small_with_grad.values())


@pytest.mark.parametrize("mode", ["step_", "step"])
@pytest.mark.parametrize("source", ["m_prev", "m_t", "ones"])
def test_norm_rule_batched_bitwise_against_the_per_tensor_plan(source, mode, launched):
    """``norm`` sums in fixed blocks: the batched driver gives the per-tensor plan's bits
    (``step_with_info`` always runs the plan; its bound against the reference is tested in
    tests/test_kernels_numba.py)."""
    hyper = {"alpha_rule": "norm", "mask_source": source, "gamma": 0.1}
    fast = refopt.get_rule("alphaadam", backend="numba", **hyper)

    class PerTensor:  # the same rule, stepped through step_with_info (no batching)
        buffers = fast.buffers

        def init(self, params):
            return fast.init(params)

        def step(self, params, grads, state, lr):
            params, state, _ = fast.step_with_info(params, grads, state, lr=lr)
            return params, state

    plan = _run(PerTensor(), "step")
    assert not launched
    assert_bitwise(plan, _run(fast, mode))
    counted = nb._masked_batch_in if mode == "step_" else nb._masked_batch
    known = nb._masked_adam_batch_in if mode == "step_" else nb._masked_adam_batch_out
    # m_prev's first step is unmasked (alpha = 1, no count): the replayed rules' driver.
    assert launched and {k for k, _ in launched} == ({counted, known} if source == "m_prev"
                                                     else {counted})


@pytest.mark.parametrize("name", ["adamx", "adams", "alphaadam", "cadamw", "sgdm"])
def test_pooled_outputs_bitwise_and_never_overwritten_while_held(name):
    """step's small outputs are views of one pooled array per dtype, reused two calls later only
    if nothing refers to any of them: a held output keeps its values."""
    ref = refopt.get_rule(name)
    fast = refopt.get_rule(name, backend="numba")
    fast.recycler.min_bytes = 0  # every pool is eligible for reuse (the default is 1 MiB)
    rng = np.random.default_rng(5)
    shapes = [(300,), (20, 30), (), (64,)]
    p_ref = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    p_fast, s_ref = list(p_ref), ref.init(p_ref)
    s_fast = fast.init(p_fast)
    held, held_copy = None, None
    for t in range(1, 7):
        grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        p_ref, s_ref = ref.step(p_ref, grads, s_ref)
        p_fast, s_fast = fast.step(p_fast, grads, s_fast)
        if t == 2:
            held = p_fast[1][3]  # a view of one output: keeps the pool of call 2 alive
            held_copy = held.copy()
            assert p_fast[1].base is p_fast[0].base is not None  # one pool
        for a, b in zip(p_ref, p_fast):
            assert a.tobytes() == b.tobytes() and a.shape == b.shape
        for b in ref.buffers:
            for x, y in zip(getattr(s_ref, b), getattr(s_fast, b)):
                assert x.tobytes() == y.tobytes()
    assert held.tobytes() == held_copy.tobytes()
    assert fast.recycler.reused >= 3  # pools of calls whose outputs were let go came back


@pytest.mark.parametrize("policy", ["raise", "skip"])
@pytest.mark.parametrize("name", ["alphaadam", "cadamw", "adamx"])
def test_batched_out_of_place_counts_nonfinite_gradients(name, policy, monkeypatch, launched):
    """Out of place the batched kernels count NaN/inf as they read g (no pre-pass): the step is
    refused naming the first bad tensor, or skipped whole, inputs untouched."""
    fast = refopt.get_rule(name, backend="numba", nonfinite=policy)
    rng = np.random.default_rng(2)
    shapes = [(5,), (9,), (3, 3)]
    params = [rng.standard_normal(s) for s in shapes]
    state = fast.init(params)
    for _ in range(2):
        params, state = fast.step(params, [rng.standard_normal(s) for s in shapes], state)
    grads = [rng.standard_normal(s) for s in shapes]
    grads[1][-1] = np.nan
    grads[2][0, 1] = np.inf
    before = [p.tobytes() for p in params]
    monkeypatch.setattr(fast.K, "count_nonfinite", staticmethod(_no_prepass))
    monkeypatch.setattr(fast.K, "count_nonfinite_many", staticmethod(_no_prepass))
    batched_out = []
    original = nb.NumbaRule._batched_out
    monkeypatch.setattr(nb.NumbaRule, "_batched_out", lambda self, *a, **k: batched_out.append(1)
                        or original(self, *a, **k))
    launched.clear()
    if policy == "raise":
        with pytest.raises(FloatingPointError, match=r"grads\[1\]"):
            fast.step(params, grads, state)
        # The batched out-of-place path ran (the count is its own, not a pre-pass's).
        assert batched_out and (launched or name == "adamx")
    else:
        new_params, new_state, info = fast.step_with_info(params, grads, state)
        assert info["skipped"] and new_state is state
        new_params, new_state = fast.step(params, grads, state)
        assert new_state is state
    assert [p.tobytes() for p in params] == before


def test_step_in_place_on_the_pooled_outputs_of_step_takes_the_quick_overlap_check(monkeypatch):
    """step's small outputs are views of one pooled array: a later step_ on them must not fall
    back to the labelled pairwise check (a sorted pass over byte ranges settles it), and a real
    overlap is still refused."""
    rule = refopt.get_rule("adamx", backend="numba")
    rng = np.random.default_rng(3)
    params = [rng.standard_normal(50).astype(np.float32) for _ in range(20)]
    grads = [rng.standard_normal(50).astype(np.float32) for _ in range(20)]
    params, state = rule.step(params, grads, rule.init(params))
    assert params[0].base is not None and params[0].base is params[1].base   # pooled
    expected = refopt.get_rule("adamx").step(params, grads, state)
    monkeypatch.setattr(type(rule), "_check_group",
                        lambda self, group: pytest.fail("took the labelled overlap check"))
    params = list(params)
    state = rule.step_(params, grads, state)
    assert all(np.array_equal(a, b) for a, b in zip(params, expected[0]))
    monkeypatch.undo()
    x = np.zeros(10, np.float32)
    with pytest.raises(ValueError, match="share memory"):
        rule.step_([x[:6]], [x[4:]], rule.init([x[:6]]))


def _no_prepass(g):
    raise AssertionError("the out-of-place step ran the read-only pre-pass over g")


def test_array_data_offset_is_confirmed_here():
    # The table drivers read each array's data pointer from its object (see _array_data_offset);
    # on this interpreter the layout must have been confirmed, else the slow path runs.
    assert nb.ARRAY_DATA_OFFSET == object.__basicsize__


# -- refopt bench: where it writes, what it says about load, the model list (issue 18, 19) ------

def test_bench_writes_outside_the_repository_unless_asked_and_warns_under_load(
        tmp_path, monkeypatch, capsys):
    import json

    from refopt.cli import main
    from refopt.kernels import bench

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # as if run from a repository root: figures/ must stay absent
    monkeypatch.setattr(bench, "_other_cpu", lambda before, after: {
        "wall_s": 1.0, "other_cpu_s": 1.2, "other_fraction_of_all_cpus": 0.6})
    status = main(["bench", "--quick", "--sizes", "1000", "--rules", "alphaadam", "--backends",
                   "numba", "--many", "3", "50", "--model", "gpt2-small/48"])
    assert status == 0
    out = capsys.readouterr().out
    assert not (tmp_path / "figures").exists()
    written = tmp_path / "cache" / "refopt" / "bench" / "bench_cpu.json"
    assert f"wrote {written}" in out
    assert "warning: Other processes were running: they used 60% of the" in out
    data = json.loads(written.read_text())
    assert data["other_processes"]["other_fraction_of_all_cpus"] == 0.6
    model = data["model_tensors"]
    assert (model["model"], model["div"], model["tensors"]) == ("gpt2-small", 48, 148)
    assert model["elements"] == sum(int(np.prod(s)) for _, s in bench.gpt2_small_shapes(48))
    assert {(r["backend"], r["mode"]) for r in model["results"]} == {("numba", "step"),
                                                                    ("numba", "step_")}
    # --quiet --json -: the JSON alone on stdout, the load warning still said (on stderr).
    status = main(["bench", "--quick", "--sizes", "1000", "--rules", "adamx", "--backends",
                   "numba", "--many", "0", "0", "--model", "none", "--quiet", "--json", "-"])
    captured = capsys.readouterr()
    assert status == 0 and json.loads(captured.out)["other_processes"] == data["other_processes"]
    assert "warning: Other processes were running" in captured.err   # results there too
    assert "n = " not in captured.err        # no progress messages
    assert main(["bench", "--quick", "--json", str(tmp_path / "no" / "b.json")]) == 2
    assert "--json" in capsys.readouterr().err
    assert main(["bench", "--quick", "--model", "gpt3/2"]) == 2
    assert main(["bench", "--quick", "--model", "gpt2-small/0"]) == 2
    assert "--model" in capsys.readouterr().err


def test_gpt2_small_shapes_are_the_models():
    from refopt.kernels.bench import gpt2_small_shapes

    shapes = dict(gpt2_small_shapes())
    assert len(shapes) == 148 and sum(int(np.prod(s)) for s in shapes.values()) == 124_439_808
    assert shapes["wte.weight"] == (50257, 768) and shapes["h.11.mlp.c_proj.weight"] == (3072, 768)
    half = dict(gpt2_small_shapes(2))
    assert half["wte.weight"] == (25129, 384) and half["h.0.attn.c_attn.weight"] == (384, 1152)
