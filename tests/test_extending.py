"""The public extension API (refopt.extend, docs/extending.md) and the sweep command around it:
a user rule and objective named by import path in a sweep spec, run with no private import."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import refopt
from refopt import extend
from refopt.experiments import runner

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "sweeps"


@pytest.fixture
def example_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))


def test_example_files_use_no_private_import():
    for path in EXAMPLE.glob("*.py"):
        imports = re.findall(r"^\s*(?:from|import)\s+(\S+)", path.read_text(), re.M)
        private = [m for m in imports if any(part.startswith("_") and part != "__future__"
                                              for part in m.split("."))]
        assert imports and not private, (path.name, private)


def test_lion_by_import_path_matches_its_equations(example_on_path):
    rule = refopt.get_rule("lion:Lion", lr=0.1, betas=(0.9, 0.99), weight_decay=0.5)
    x, g1, g2 = np.array([1.0, -2.0]), np.array([0.3, 0.2]), np.array([-1.0, 0.1])
    state = rule.init([x])
    (x1,), state = rule.step([x], [g1], state)
    np.testing.assert_array_equal(x1, x * (1 - 0.05) - 0.1 * np.sign(0.1 * g1))
    (x2,), state = rule.step([x1], [g2], state)
    m1 = (1 - 0.99) * g1
    np.testing.assert_array_equal(x2, x1 * 0.95 - 0.1 * np.sign(0.9 * m1 + 0.1 * g2))
    np.testing.assert_array_equal(state.exp_avg[0], 0.99 * m1 + (1 - 0.99) * g2)
    tr = refopt.trajectory("lion:Lion", [x], [np.stack([g1, g2])], lr=0.1, weight_decay=0.5)
    assert tr.rule == "lion:Lion"
    np.testing.assert_array_equal(tr.params[0][-1], x2)


def test_define_rule_from_a_plain_init_step_pair_and_register_it(monkeypatch):
    from refopt import registry

    monkeypatch.setattr(registry, "RULES", dict(registry.RULES))
    signsgd = extend.define_rule(
        "signsgd_test", init=lambda p: {"exp_avg": np.zeros_like(p)},
        step=lambda p, g, b, t, lr, h: (p - lr * np.sign(g), {"exp_avg": b["exp_avg"] + g}),
        defaults={"lr": 0.1}, buffers=("exp_avg",))
    extend.register_rule(signsgd)
    tr = refopt.trajectory("signsgd_test", [np.array([1.0])], [np.array([[2.0], [-3.0]])])
    np.testing.assert_allclose(tr.params[0][:, 0], [1.0, 0.9, 1.0])
    np.testing.assert_allclose(tr.state["exp_avg"][0][:, 0], [0.0, 2.0, -1.0])
    with pytest.raises(TypeError, match="unknown hyperparameter"):
        refopt.get_rule("signsgd_test", momentum=0.9)
    with pytest.raises(ValueError, match="taken by"):
        extend.register_rule(extend.define_rule("adam", init=dict, step=None,
                                                defaults={"lr": 1.0}, buffers=()))


def test_define_objective_and_its_import_path(example_on_path):
    from refopt.objectives import make_objective

    f = make_objective("my_objective:pseudo_huber", noise="gaussian", noise_scale=0.5)
    x = np.array([0.0, 3.0])
    assert f.value(x) == pytest.approx(np.sqrt(10) - 1)
    np.testing.assert_allclose(f.grad(x), [0.0, 3 / np.sqrt(10)])
    assert f.l0l1 == (1.0, 0.0) and f.min_value_like(x) == 0.0
    np.testing.assert_array_equal(f.minimizer_like(x), [0.0, 0.0])
    noisy = np.array([f.stochastic_grad(x, np.random.default_rng(s)) - f.grad(x)
                      for s in range(2000)])
    assert abs(noisy.std() - 0.5) < 0.03
    with pytest.raises(ValueError, match="noise must be one of"):
        extend.define_objective("bad", np.sum, np.sign, noise="cauchy")


@pytest.mark.parametrize("entry, field, match", [
    ({"rules": ["no_such_module_xyz:Lion"]}, r"rules\[0\]\.name", "cannot import module"),
    ({"rules": ["lion:Nope"]}, r"rules\[0\]\.name", "has no attribute 'Nope'"),
    ({"rules": ["my_objective:pseudo_huber"]}, r"rules\[0\]\.name", "must name a refopt"),
    ({"rules": ["lionx"]}, r"rules\[0\]\.name", "known rules"),
    ({"objectives": ["nothing_here"]}, r"objectives\[0\]\.name", "allowed:"),
    ({"objectives": [{"name": "my_objective:pseudo_huber", "constants": {"dim": 3}}]},
     r"objectives\[0\]\.name", "unexpected keyword"),
])
def test_bad_names_in_a_spec_are_one_line_naming_the_field(example_on_path, entry, field, match):
    sweep = {**json.loads((EXAMPLE / "lion_vs_adams.json").read_text()), **entry}
    with pytest.raises(ValueError, match=field) as info:
        runner.expand_sweep(sweep)
    assert re.search(match, str(info.value)) and "\n" not in str(info.value)


def test_lion_vs_adams_sweep_runs_from_the_spec_file_and_reruns_say_what_they_did(tmp_path):
    """Done-means of issue 17: a fresh process, cwd elsewhere, nothing but the spec file."""
    spec = EXAMPLE / "lion_vs_adams.json"
    out = tmp_path / "r.jsonl"
    cmd = [sys.executable, "-m", "refopt", "sweep", str(spec), "--out", str(out), "--workers", "2",
           "--summary"]
    env = {k: v for k, v in __import__("os").environ.items() if k != "PYTHONPATH"}
    first = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "12 runs in" in first.stdout and "(12 new, 0 reused, 0 failed)" in first.stdout
    records = runner.read_results(out)
    assert sorted({r["spec"]["rule"] for r in records}) == ["adams", "lion:Lion"]
    assert {r["spec"]["objective"] for r in records} == {"my_objective:pseudo_huber"}
    assert all(np.isfinite(r["result"]["final_loss"]) for r in records)
    table = (tmp_path / "r.jsonl.summary.md").read_text()
    assert table.count("| lion:Lion") == 2 and table.count("| adams") == 2
    assert (tmp_path / "r.jsonl.summary.png").stat().st_size > 10_000
    again = subprocess.run(cmd[:-1], cwd=tmp_path, capture_output=True, text=True, env=env,
                           timeout=120)
    assert again.returncode == 0 and "(0 new, 12 reused, 0 failed)" in again.stdout


def test_a_failing_run_is_counted_and_retried(tmp_path, monkeypatch, capsys):
    from refopt.cli import main

    calls = {"n": 0}
    real = runner.TASKS["optimize"]

    def flaky(spec):
        calls["n"] += 1
        if spec["seed"] == 1 and calls["n"] < 10:
            raise FloatingPointError("planted failure")
        return real(spec)

    monkeypatch.setitem(runner.TASKS, "optimize", flaky)
    sweep = {"rules": ["adam"], "objectives": ["cosh"], "seeds": [0, 1, 2], "steps": 5}
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps(sweep))
    assert main(["sweep", str(spec), "--workers", "1"]) == 1
    captured = capsys.readouterr()
    assert "2 runs in" in captured.out and "(2 new, 0 reused, 1 failed)" in captured.out
    assert "seed 1): FloatingPointError: planted failure" in captured.err
    calls["n"] = 100
    assert main(["sweep", str(spec), "--workers", "1"]) == 0
    assert "(1 new, 2 reused, 0 failed)" in capsys.readouterr().out
    with pytest.raises(FloatingPointError):   # the library default still stops at the error
        calls["n"] = 0
        runner.run_sweep({**sweep, "seeds": [1, 5]}, tmp_path / "t.jsonl", max_workers=1)


def test_docs_extending_examples_run_and_print_what_they_say(monkeypatch, capsys):
    from refopt import objectives, registry

    monkeypatch.setattr(registry, "RULES", dict(registry.RULES))
    monkeypatch.setattr(registry, "_ALIASES", dict(registry._ALIASES))
    monkeypatch.setattr(objectives, "OBJECTIVES", dict(objectives.OBJECTIVES))
    text = (ROOT / "docs" / "extending.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 3
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "docs/extending.md", "exec"), namespace)
    printed = capsys.readouterr().out.splitlines()
    assert printed == ["[ 0.7 -2.3]", "[1.  0.9 1. ]", "2.162278 (1.0, 0.0)"]
    for line in printed:   # the page says what the code prints
        assert f"# {line}" in text
    spec = json.loads(re.search(r"```json\n(.*?)```", text, re.S).group(1))
    assert spec == json.loads((EXAMPLE / "lion_vs_adams.json").read_text())


def test_a_dask_worker_process_finds_the_user_rule_and_objective_by_importing(tmp_path,
                                                                              monkeypatch):
    """The worker is a separate process (processes=True) that only has PYTHONPATH: nothing is
    pickled but the JSON spec, so it must import lion and my_objective itself."""
    distributed = pytest.importorskip("distributed", reason="dask[distributed] is not installed")
    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.setenv("PYTHONPATH", str(EXAMPLE))
    sweep = {**json.loads((EXAMPLE / "lion_vs_adams.json").read_text()), "seeds": [0],
             "steps": 30}
    serial = runner.run_sweep(sweep, tmp_path / "a.jsonl", max_workers=1)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        with distributed.Client(cluster.scheduler_address) as client:
            pids = client.run(__import__("os").getpid)
        assert __import__("os").getpid() not in pids.values()
        remote = runner.run_sweep(sweep, tmp_path / "d.jsonl", scheduler=cluster.scheduler_address)
    assert remote == serial and remote.new == 4 and not remote.failed
