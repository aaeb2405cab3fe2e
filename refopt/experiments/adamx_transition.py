r"""AdamX/AdamNX: the late-training transition to momentum SGD, measured (spec adamx.md T5, T8).

The abstract (v3) claims the second-moment decay "gradually weakens the learning step correction
strength" and that the method "degrades to momentum SGD in the stable training period". spec T5
derives it: :math:`1-\hat\beta_{2,t} \approx (1-c)c^{t-1}`, so v converges and for
:math:`t \gg H = 1/(1-c)` the update is heavy-ball SGD with the frozen diagonal preconditioner
:math:`D = \mathrm{diag}(1/(\sqrt{v_\infty}+\epsilon))`. Measured here, against Adam with the same
betas, on a noisy heterogeneous quadratic (Gaussian gradient noise):

1. the relative change of the preconditioner's v per step, :math:`|v_t - v_{t-1}|/v_{t-1}`
   (median over coordinates; Adam's bias-corrected :math:`\hat v_t`);
2. the effective per-coordinate learning rate :math:`\eta/(\sqrt{v_t}+\epsilon)`;
3. the distance to a *twin* run that, from step t0 on, uses the same gradient noise and the
   rule's own first-moment recursion but freezes the preconditioner at its t0 value:
   :math:`\|\theta_t - \theta^{twin}_t\| / \|\theta_t - \theta_{t_0}\|` (0: the run *is* momentum
   SGD with a frozen preconditioner; about 1: unrelated).

Also spec T8 (late activation): a coordinate whose gradient is 0 for K steps and then 1 takes
steps of |dtheta|/eta that peak at 6.76 (K = 10^3, beta2 = 0.99) for AdamNX, against Adam's 2.13.

Verdict criteria (stated in the result): X-transition is *reproduced* iff at the last step the
median relative change of v is < 1e-6 for the rule under test and > 1e-3 for Adam, and the
twin distance of the rule is < 1e-3 while Adam's is > 10 times larger. X-T8 is reproduced iff the
measured peak and 2000-steps-after ratios match the spec table to 1 % relative.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ._common import (ExperimentResult, Verdict, decide, file_tag, fmt, log_grid, pyplot,
                      save_figure, shipped_configs)
from .runner import run_sweep, task

#: The shipped configurations (quick, full, tiny), read from configs/*.json; refopt report
#: --config adds others at run time.
CONFIGS = shipped_configs("adamx_transition")

# spec adamx.md T8 table (beta2 = 0.99): K -> (peak, 2000 steps after) of |dtheta|/eta.
T8_TABLE = {"adamx": {1000: (6.76, 1.26), 10000: (27.2, 3.24), 30000: (91.0, 10.4),
                      60000: (421.0, 47.7)},
            "adam": {1000: (2.13, 1.00), 10000: (2.13, 1.00), 30000: (2.13, 1.00),
                     60000: (2.13, 1.00)}}


DEFAULT_RULE = "adamx"


def check_rule(name: str, what: str = "rule") -> str:
    """The rule under test of this task: ``"adamx"`` (or its alias), ``"adam"`` (the planted
    failure), or an import path ``"module:Class"`` of a rule with AdamX's state (buffers
    ``exp_avg`` and ``exp_avg_sq``; v applied without bias correction, m Adam's m-hat, spec T3):
    the task reads v and m from that state. Returns the canonical name; ValueError naming
    ``what`` otherwise."""
    from ..extend import is_import_path, rule_class_from_path
    from ..registry import canonical_name

    key = canonical_name(name)
    if key in ("adamx", "adam"):
        return key
    if is_import_path(name) and {"exp_avg", "exp_avg_sq"} <= set(
            rule_class_from_path(name, what).buffers):
        return name
    raise ValueError(f"{what} {name!r} must keep AdamX's state (buffers exp_avg and exp_avg_sq, "
                     f"v applied without bias correction): 'adamx', 'adam' (planted failure) or an "
                     f"import path 'module:Class' of such a rule")


def _preconditioner(rule_name: str, state, t: int, betas, eps: float) -> np.ndarray:
    """1/(sqrt(v)+eps) as the rule applies it at step t (Adam: bias-corrected v-hat)."""
    v = state.exp_avg_sq[0]
    if rule_name == "adam":
        v = v / (1.0 - betas[1] ** t)
    return 1.0 / (np.sqrt(v) + eps)


def _second_moment(rule_name: str, state, t: int, betas) -> np.ndarray:
    v = state.exp_avg_sq[0]
    return v / (1.0 - betas[1] ** t) if rule_name == "adam" else v


def _twin_step(rule_name: str, theta, m, g, t, betas, lr, D):
    """One step of momentum SGD with the rule's own first moment and the frozen D."""
    b1 = betas[0]
    if rule_name != "adam":   # AdamX, or a user rule with its state (check_rule)
        b1t = (b1 - b1 ** t) / (1.0 - b1 ** t)        # AdamX's beta1_t: m is Adam's m-hat (T3)
        m = b1t * m + (1.0 - b1t) * g
        return theta - lr * D * m, m
    m = b1 * m + (1.0 - b1) * g
    return theta - lr * D * (m / (1.0 - b1 ** t)), m


@task("adamx_transition")
def transition_run(spec: dict) -> dict:
    """One seeded run of ``spec["rule"]`` (adamx or adam) plus its frozen-preconditioner twin."""
    from ..objectives import make_objective
    from ..registry import get_rule

    betas, lr, eps = tuple(spec["betas"]), float(spec["lr"]), float(spec.get("eps", 1e-8))
    name = check_rule(spec["rule"])
    f = make_objective("heterogeneous_quadratic", **spec["constants"])
    steps, t0 = int(spec["steps"]), int(spec["t0"])
    rule = get_rule(name, lr=lr, betas=betas, eps=eps, weight_decay=0.0)
    x_rng, noise_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(spec["seed"]).spawn(2))
    d = f.shape[0]
    x = 2.0 * x_rng.standard_normal(d)
    # The noise sequence is drawn up front, so the run and its twin see the same xi_t.
    noise = noise_rng.standard_normal((steps, d)) * f.constants["noise_scale"]
    grid = set(log_grid(steps, 80).tolist())
    coords = [0, d // 2, d - 1]
    out = {"t": [], "rel_dv": [], "eff_lr": [], "twin_t": [], "twin_dist": []}
    state = rule.init([x])
    v_prev = None
    twin = None
    for t in range(1, steps + 1):
        g = f.grad(x) + noise[t - 1]
        (x,), state = rule.step([x], [g], state)
        v = _second_moment(name, state, t, betas)
        if t == t0:
            D = _preconditioner(name, state, t, betas, eps)
            twin = {"theta": x.copy(), "m": state.exp_avg[0].copy(), "D": D, "start": x.copy()}
        elif twin is not None:
            g_twin = f.grad(twin["theta"]) + noise[t - 1]
            twin["theta"], twin["m"] = _twin_step(name, twin["theta"], twin["m"], g_twin, t, betas,
                                                  lr, twin["D"])
        if t in grid:
            out["t"].append(t)
            rel = np.abs(v - v_prev) / v_prev if v_prev is not None else np.full(d, np.nan)
            out["rel_dv"].append(float(np.median(rel)))
            out["eff_lr"].append([float(lr * p) for p in
                                  _preconditioner(name, state, t, betas, eps)[coords]])
            if twin is not None and t > t0:
                moved = np.linalg.norm(x - twin["start"])
                out["twin_t"].append(t)
                out["twin_dist"].append(float(np.linalg.norm(x - twin["theta"]) / moved))
        v_prev = v
    out["final_loss"] = f.value(x)
    out["h_coords"] = [float(f.hessian(np.zeros(d))[i, i]) for i in coords]
    return out


def late_activation(rule_name: str, K: int, beta2: float = 0.99, after: int = 2000,
                    lr: float = 1e-3) -> tuple[float, float]:
    """spec T8: |dtheta|/eta of a coordinate with g = 0 for K steps, then g = 1.

    Returns (peak over the first ``after`` steps after activation, the value ``after`` steps
    after activation). Weight decay 0, eps 1e-8, beta1 0.9.
    """
    from ..registry import get_rule

    rule = get_rule(rule_name, lr=lr, betas=(0.9, beta2), eps=1e-8, weight_decay=0.0)
    x = [np.zeros(1)]
    state = rule.init(x)
    zero, one = [np.zeros(1)], [np.ones(1)]
    for _ in range(K):
        x, state = rule.step(x, zero, state)
    ratios = np.empty(after)
    for k in range(after):
        x_new, state = rule.step(x, one, state)
        ratios[k] = abs(float(x_new[0][0] - x[0][0])) / lr
        x = x_new
    return float(ratios.max()), float(ratios[-1])


def run(config: str = "quick", out_dir: str | Path = "reports", *, rule: str | None = None,
        max_workers: int | None = 1, scheduler=None, progress: bool = False) -> ExperimentResult:
    """Run the experiment, save its figure and return numbers and verdicts.

    ``rule`` is the rule under test (default: the configuration's ``rule_under_test``,
    ``"adamx"``; pass ``"adam"`` to see the verdict fail; see :func:`check_rule`).
    """
    start = time.perf_counter()
    cfg = CONFIGS[config]
    rule = check_rule(rule or cfg.get("rule_under_test", DEFAULT_RULE), "rule_under_test")
    out_dir = Path(out_dir)
    specs = []
    for name in dict.fromkeys([rule, "adam"]):
        for seed in cfg["seeds"]:
            specs.append({"task": "adamx_transition", "rule": name, "betas": cfg["betas"],
                          "lr": cfg["lr"], "eps": 1e-8, "steps": cfg["steps"], "t0": cfg["t0"],
                          "seed": seed, "constants": {"dim": cfg["dim"]}})
    tag = "" if rule == DEFAULT_RULE else f"_{file_tag(rule)}"
    records = run_sweep(specs, out_dir / "results" / f"adamx_transition_{config}{tag}.jsonl",
                        max_workers=max_workers, scheduler=scheduler, progress=progress)
    by_rule: dict[str, list] = {}
    for rec in records:
        by_rule.setdefault(rec["spec"]["rule"], []).append(rec["result"])

    def last(name, key):
        return float(np.median([r[key][-1] for r in by_rule[name]]))

    b2 = cfg["betas"][1]
    c = b2 ** (1 - b2)
    nums = {"betas": cfg["betas"], "H": 1 / (1 - c), "steps": cfg["steps"], "t0": cfg["t0"],
            "seeds": len(cfg["seeds"]), "dim": cfg["dim"],
            "rel_dv_end": {n: last(n, "rel_dv") for n in by_rule},
            "twin_dist_end": {n: last(n, "twin_dist") for n in by_rule}}
    # The rule under test is held to AdamNX's T8 row, Adam to Adam's.
    late = {n: {K: late_activation(n, K) for K in cfg["late_K"]} for n in dict.fromkeys([rule, "adam"])}
    nums["late_activation"] = {n: {str(K): v for K, v in d.items()} for n, d in late.items()}
    rule_dv, adam_dv = nums["rel_dv_end"][rule], nums["rel_dv_end"]["adam"]
    rule_tw, adam_tw = nums["twin_dist_end"][rule], nums["twin_dist_end"]["adam"]
    ok = rule_dv < 1e-6 and adam_dv > 1e-3 and rule_tw < 1e-3 and adam_tw > 10 * rule_tw
    verdicts = [
        Verdict("X-transition", decide(ok),
                "at the last step: median |v_t-v_{t-1}|/v_{t-1} < 1e-6 for the rule and > 1e-3 for "
                "Adam (same betas); distance to the frozen-preconditioner momentum-SGD twin "
                "< 1e-3 of the distance travelled since t0, and Adam's > 10x larger",
                f"{rule} ({config}, betas {tuple(cfg['betas'])}, H = {fmt(nums['H'])} steps, "
                f"T = {cfg['steps']}, t0 = {cfg['t0']}, {len(cfg['seeds'])} seeds, median): "
                f"rel. change of v per step {fmt(rule_dv)} vs Adam {fmt(adam_dv)}; twin distance "
                f"{fmt(rule_tw)} vs Adam {fmt(adam_tw)}",
                f"{'' if rule == DEFAULT_RULE else rule + ': '}at step {cfg['steps']} "
                f"(H = {nums['H']:.0f}): v changes {fmt(rule_dv, 2)} per step (needed < 1e-6; "
                f"Adam {fmt(adam_dv, 2)}); distance to momentum SGD {fmt(rule_tw, 2)} (needed < "
                f"1e-3; Adam {fmt(adam_tw, 2)})"),
    ]
    expected = {rule: T8_TABLE["adamx"], "adam": T8_TABLE["adam"]}
    t8_ok = rule != "adam" and all(
        abs(late[n][K][i] - expected[n][K][i]) <= 0.01 * expected[n][K][i] + 0.005
        for n in late for K in late[n] for i in (0, 1))
    verdicts.append(Verdict(
        "X-T8", decide(t8_ok), "peak and 2000-steps-after |dtheta|/eta match spec T8 to 1 %",
        "; ".join(f"{n} K={K}: peak {fmt(p, 3)}, after {fmt(a, 3)} (spec {expected[n][K][0]} / "
                  f"{expected[n][K][1]})" for n in late for K, (p, a) in late[n].items()),
        "; ".join(f"{n} peak at K = {'/'.join(str(K) for K in late[n])}: "
                  f"{'/'.join(fmt(p, 3) for p, _ in late[n].values())} eta (spec "
                  f"{'/'.join(f'{expected[n][K][0]:g}' for K in late[n])})" for n in late)
        + " (needed: within 1 %, also 2000 steps after)"))
    fig_paths = _figure(by_rule, rule, cfg, late,
                        out_dir / "figures" / f"adamx_transition_{config}{tag}.png")
    nums["rule_under_test"] = rule
    return ExperimentResult("adamx_transition", config, nums, verdicts, fig_paths,
                            time.perf_counter() - start)


def _figure(by_rule, rule, cfg, late, path):
    """One figure per idea (``path`` with ``_v``, ``_lr``, ``_twin``, ``_t8``): v stops moving,
    the per-coordinate learning rate, the distance to momentum SGD, and the T8 late activation
    (measured against the spec's table, one group per K: no log axis for a single K)."""
    plt = pyplot()
    stem = Path(path).with_suffix("")
    colors = {rule: "C0", "adam": "C3"}
    b1, b2 = cfg["betas"]
    c = b2 ** (1 - b2)
    paths = []

    def finish(fig, ax, name, below=False):
        ax.grid(alpha=0.3)
        if below:   # a legend inside would cover curves
            ax.legend(fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2,
                      frameon=False, title=below if isinstance(below, str) else None,
                      title_fontsize=9)
        else:
            ax.legend(fontsize=9)
        fig.tight_layout()
        paths.append(save_figure(fig, f"{stem}_{name}.png"))

    low = 1.0   # the smallest plotted relative change of v: the axis ends a decade below
    figs = {name: plt.subplots(figsize=(6.4, 5.0 if name == "lr" else 4.3))
            for name in ("v", "lr", "twin")}
    for name, runs in by_rule.items():
        r = runs[0]
        t = np.asarray(r["t"])
        dv = np.median(np.array([x["rel_dv"][1:] for x in runs], dtype=float), axis=0)
        low = min(low, float(np.nanmin(np.where(dv > 0, dv, np.nan))))
        figs["v"][1].loglog(t[1:], dv, color=colors[name], label=f"{name} (median of seeds)")
        eff = np.array(r["eff_lr"])
        for j, h in enumerate(r["h_coords"]):
            figs["lr"][1].loglog(t, eff[:, j], color=colors[name], ls=["-", "--", ":"][j],
                                 label=f"{name}, h = {h:.2g}")
        tw = np.median(np.array([x["twin_dist"] for x in runs]), axis=0)
        figs["twin"][1].semilogy(np.asarray(r["twin_t"]) - cfg["t0"], np.maximum(tw, 1e-17),
                                 color=colors[name], label=f"{name} (median of seeds)")
    fig, ax = figs["v"]
    tt = np.arange(2, cfg["steps"] + 1)
    ax.loglog(tt, -np.expm1(np.log(c)) / (np.exp(-(tt - 1) * np.log(c)) - c) * 1.0,
              color="k", lw=0.8, ls="--", label=r"AdamX $1-\hat\beta_{2,t}$ (T1)")
    ax.axvline(1 / (1 - c), color="gray", lw=0.6, label=f"memory horizon H = {1 / (1 - c):.0f}")
    ax.set(xlabel="step t", ylabel="relative change of v per step",
           title=f"v stops moving (betas {b1}, {b2})", ylim=(max(1e-17, low / 10), 10))
    finish(fig, ax, "v")
    fig, ax = figs["lr"]
    ax.set(xlabel="step t", ylabel=r"effective lr $\eta/(\sqrt{v_t}+\epsilon)$",
           title="per-coordinate learning rate: AdamX's freezes (seed 0)")
    finish(fig, ax, "lr", below="h: the curvature of the coordinate (its Hessian entry)")
    fig, ax = figs["twin"]
    ax.set(xlabel=f"steps after t0 = {cfg['t0']}",
           ylabel=r"$\|\theta-\theta^{twin}\| / \|\theta-\theta_{t_0}\|$",
           title="distance to momentum SGD with the preconditioner frozen at t0")
    finish(fig, ax, "twin")

    fig, ax = plt.subplots(figsize=(6.4, 5.0))
    Ks = sorted({K for d in late.values() for K in d})
    width = 0.8 / max(1, 2 * len(late))
    for i, (name, d) in enumerate(late.items()):
        expected = T8_TABLE["adam" if name == "adam" else "adamx"]
        for j, (what, idx) in enumerate((("peak", 0), ("2000 steps after", 1))):
            x = np.arange(len(Ks)) + (2 * i + j - (2 * len(late) - 1) / 2) * width
            ax.bar(x, [d[K][idx] for K in Ks], width, color=colors.get(name, "C0"),
                   alpha=1.0 if idx == 0 else 0.5, label=f"{name}: {what} (measured)")
            ax.plot(x, [expected[K][idx] if K in expected else np.nan for K in Ks], "k_",
                    ms=18, mew=2, label="spec T8 table" if i == 0 and j == 0 else None)
    ax.set_xticks(np.arange(len(Ks)), [f"K = {K:,}" for K in Ks])
    values = [v for d in late.values() for pair in d.values() for v in pair]
    ax.set(yscale="log" if max(values) > 30 * min(values) else "linear",
           xlabel="activation step K (gradient 0 before, 1 from K on)",
           ylabel=r"step size $|\Delta\theta|/\eta$",
           title="T8: late activation (beta2 = 0.99)")
    finish(fig, ax, "t8", below=True)
    return paths
