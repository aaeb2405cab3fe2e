# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The convergence experiments: claims, criteria, verdicts
#
# The three papers make claims about *behaviour* that no identity can settle: AdamX "degrades to
# momentum SGD in the stable training period"; AdamS converges at rate Õ(T^(−1/4)) under
# (L0, L1)-smoothness; AlphaAdam's masks lower the noise floor. `refopt.experiments` turns each
# into a seeded experiment on a synthetic objective (`refopt.objectives`) with a **criterion
# stated before the run**, and returns a verdict: *reproduced*, *not reproduced*, *not checkable
# here* or *withdrawn by its authors*. `refopt report` runs them all with the proofs and writes a
# Markdown report.
#
# This notebook runs each family through its public API (`run(config, out_dir)`), reads the
# per-run records back (`read_results`), and plots them. Two *planted* runs show that the
# criteria can fail: Adam put in AdamX's place, and a T-independent schedule in the AdamS rate
# experiment.
#
# Sizes: fast mode (`REFOPT_NOTEBOOK_FAST=1`, CI) uses the experiments' `tiny` configuration and a
# temporary directory; full mode uses `quick` (or `REFOPT_NOTEBOOK_CONFIG=full`), keeps the run
# records in `reports/` (resumable: a second run reuses them) and saves this notebook's figures
# to `figures/`. **Verdicts measured at `tiny` size are not the project's verdicts** — too few
# seeds and horizons; the statistical ones are printed, not asserted. Deterministic ones (exact
# first steps, the spec's T8 table, the cosh contrast) are asserted.

# %%
import math
import os
import sys
import tempfile
from pathlib import Path

import matplotlib

if os.environ.get("MPLBACKEND") is None and "ipykernel" not in sys.modules:
    matplotlib.use("Agg")  # running as a plain script: no display
import matplotlib.pyplot as plt
import numpy as np

import refopt
from refopt.notebook import fast_mode
from refopt.experiments import adams_rate, adamx_transition, alphaadam_masks, read_results, run_key
from refopt.experiments.runner import jsonable
from refopt.experiments import NOT_REPRODUCED, REPRODUCED, VERDICTS

FAST = fast_mode()
CONFIG = "tiny" if FAST else os.environ.get("REFOPT_NOTEBOOK_CONFIG", "quick")


def _repo_root() -> Path | None:
    for d in [Path.cwd(), *Path.cwd().parents]:
        if (d / "pyproject.toml").exists() and (d / "notebooks").is_dir():
            return d
    return None


if FAST:
    OUT_DIR = Path(tempfile.mkdtemp(prefix="refopt_nb_exp_"))  # run records + experiment figures
    FIG_DIR = OUT_DIR / "nb_figures"
else:
    root = _repo_root() or Path.cwd()
    OUT_DIR, FIG_DIR = root / "reports", root / "figures"
FIG_DIR.mkdir(parents=True, exist_ok=True)


def save(fig, name: str) -> Path:
    path = FIG_DIR / f"nb_convergence_{name}.png"
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def show_experiment_figures(result):
    """Display the experiment's own figure inline when running under Jupyter."""
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:
        return
    if get_ipython() is not None:
        for path in result.figures:
            display(Image(filename=str(path)))


def current_runs(path: Path) -> list:
    """The run records of a results file, one per run key (the last one written wins, as in the
    runner: two processes sharing ``reports/`` may both have appended the same run)."""
    return list({rec["key"]: rec for rec in read_results(path)}.values())


def print_verdicts(result):
    print(f"{result.name} [{result.config}] in {result.seconds:.1f} s")
    for v in result.verdicts:
        assert v.verdict in VERDICTS
        print(f"  {v.claim_id:13} {v.verdict:15} criterion: {v.criterion}")
        print(f"  {'':13} {'':15} evidence:  {v.evidence}")


print(f"refopt {refopt.__version__}; config {CONFIG!r}; run records -> {OUT_DIR}; figures -> {FIG_DIR}")

# %% [markdown]
# ## 1. AdamX: the transition to momentum SGD (spec T5, T8)
#
# On a noisy heterogeneous quadratic, AdamX and Adam (same β) are run side by side. Three
# measurements: the per-step relative change of v (AdamX's v freezes for t ≫ H, Adam's keeps
# moving with the noise), the effective learning rate η/(√v + ε), and the distance to a *twin*
# that from step t0 on runs momentum SGD with the preconditioner frozen at its t0 value (0: the
# run *is* momentum SGD). Criterion (stated in the module): at the last step AdamX's relative
# change < 1e-6 and Adam's > 1e-3; twin distance < 1e-3 for AdamX and > 10× larger for Adam.
# Plus the late-activation table T8 to 1 %.

# %%
res_x = adamx_transition.run(CONFIG, OUT_DIR)
print_verdicts(res_x)
show_experiment_figures(res_x)
# T8 is deterministic (no noise): it must match the spec at any size.
assert res_x.verdict("X-T8").verdict == REPRODUCED
assert res_x.numbers["rel_dv_end"]["adamx"] < res_x.numbers["rel_dv_end"]["adam"]

# %%
# The results file is resumable and may also hold runs of other sizes (or of an older version of
# the experiment): keep only the runs of this configuration.
cfg_x = adamx_transition.CONFIGS[CONFIG]
records = [r for r in current_runs(OUT_DIR / "results" / f"adamx_transition_{CONFIG}.jsonl")
           if r["spec"]["seed"] in cfg_x["seeds"] and r["spec"]["steps"] == cfg_x["steps"]
           and r["spec"]["t0"] == cfg_x["t0"] and list(r["spec"]["betas"]) == list(cfg_x["betas"])
           and r["spec"]["constants"]["dim"] == cfg_x["dim"] and r["spec"]["lr"] == cfg_x["lr"]]
assert len(records) == 2 * len(cfg_x["seeds"])
H = res_x.numbers["H"]
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
for rec in records:
    name, r = rec["spec"]["rule"], rec["result"]
    style = dict(color="C0" if name == "adamx" else "C3", alpha=0.7, lw=1)
    label = ("AdamX" if name == "adamx" else "Adam") + f" seed {rec['spec']['seed']}"
    axes[0].loglog(r["t"][1:], r["rel_dv"][1:], label=label, **style)
    axes[1].loglog(r["twin_t"], r["twin_dist"], label=label, **style)
for ax in axes:
    ax.axvline(H, color="k", ls=":", lw=0.8, label=f"H = {H:.0f} steps")
    ax.set_xlabel("step t (count)")
    ax.legend(fontsize=7)
axes[0].set_ylabel("median |v_t − v_{t−1}|/v_{t−1} (dimensionless)")
axes[0].set_title(f"v freezes for AdamX (β = {tuple(res_x.numbers['betas'])})")
axes[1].set_ylabel("‖θ − θ_twin‖/‖θ − θ_{t0}‖ (dimensionless)")
axes[1].set_title(f"distance to the frozen-preconditioner twin (t0 = {res_x.numbers['t0']})")
fig.tight_layout()
print("saved", save(fig, "adamx_transition"))

# %% [markdown]
# **A planted failure.** Put Adam in AdamX's place: its v never freezes, so the same criterion
# must say *not reproduced*. An experiment whose criterion cannot fail tests nothing.

# %%
res_planted = adamx_transition.run(CONFIG, OUT_DIR, rule="adam")
print_verdicts(res_planted)
assert res_planted.verdict("X-transition").verdict == NOT_REPRODUCED
assert res_planted.verdict("X-T8").verdict == NOT_REPRODUCED

# %% [markdown]
# ## 2. AdamS: the claimed rate, the divergence contrast, paper vs code (spec N1, N3, §2.3)
#
# **Rate (N3).** The paper claims min_t ‖∇f(w_t)‖ = Õ(T^(−1/4)). The exact conditions are unknown,
# so the experiment uses the schedule of the authors' earlier Adam analyses (Assumed, spec 4.3):
# η = T^(−3/4), 1 − β₁ = T^(−1/2), β₂ = β₁, on a 10-D cosh with Gaussian noise. It fits the slope of
# log(average ‖∇f‖) against log T over horizons and seeds; *reproduced* iff the 95 % CI contains
# −1/4 or lies below it. With few horizons (tiny) the CI is wide and the verdict can go either way.
#
# **N1**: GD diverges on cosh where AdamS's bounded step walks in (deterministic).
# **Forms**: the first step is 0.4472·η (paper) vs 4.472·η (code), and the ratio decays as
# 1/(1−β₁^t) (deterministic).

# %%
res_s = adams_rate.run(CONFIG, OUT_DIR)
print_verdicts(res_s)
show_experiment_figures(res_s)
assert res_s.verdict("S-N1").verdict == REPRODUCED
assert res_s.verdict("S-forms").verdict == REPRODUCED

# %%
# Only this configuration's runs, identified by their run keys.
keys = {run_key(jsonable(spec)) for spec in adams_rate.rate_specs(adams_rate.CONFIGS[CONFIG])}
records = [r for r in current_runs(OUT_DIR / "results" / f"adams_rate_{CONFIG}_theorem.jsonl")
           if r["key"] in keys]
assert len(records) == len(keys)
T = np.array([r["spec"]["steps"] for r in records], dtype=float)
mean_norm = np.array([r["result"]["mean_grad_norm"] for r in records])
min_norm = np.array([r["result"]["min_grad_norm"] for r in records])
fit = res_s.numbers["fit_mean_grad_norm"]
# The fit is the experiment's own (scipy linregress on these points): recompute it as a check.
slope, intercept = np.polyfit(np.log(T), np.log(mean_norm), 1)
assert math.isclose(slope, fit["slope"], rel_tol=1e-9) and math.isclose(intercept, fit["intercept"],
                                                                         rel_tol=1e-9, abs_tol=1e-12)
Ts = np.unique(T)
fig, ax = plt.subplots(figsize=(7, 4))
ax.loglog(T, mean_norm, "o", color="C0", alpha=0.6, label="(1/T) Σ_t ‖∇f(w_t)‖, per seed")
ax.loglog(T, min_norm, "x", color="C1", alpha=0.6, label="min_t ‖∇f(w_t)‖, per seed")
ax.loglog(Ts, np.exp(fit["intercept"]) * Ts ** fit["slope"], color="C0",
          label=f"fit: slope {fit['slope']:.3f}, 95% CI [{fit['ci'][0]:.3f}, {fit['ci'][1]:.3f}]")
ax.loglog(Ts, np.exp(fit["intercept"]) * Ts[0] ** (fit["slope"] + 0.25) * Ts ** -0.25, "k--",
          label="claimed slope −1/4")
ax.set_xlabel("horizon T (steps)")
ax.set_ylabel("gradient norm ‖∇f‖ (units of f per unit x)")
ax.set_title(f"AdamS on 10-D cosh, η = T^(−3/4), 1−β₁ = T^(−1/2) [{CONFIG}]")
ax.legend(fontsize=7)
print("saved", save(fig, "adams_rate"))

# %% [markdown]
# **A planted failure.** With a constant schedule (η = 0.05, β₁ = 0.9 for every T) the gradient
# norm stalls at a noise floor, the slope is ≈ 0, and the rate criterion must fail.

# %%
res_const = adams_rate.run(CONFIG, OUT_DIR, schedule="constant")
print_verdicts(res_const)
assert res_const.verdict("S-rate").verdict == NOT_REPRODUCED

# %% [markdown]
# ## 3. AlphaAdam: what the masks do (spec §2.4, §4.5)
#
# On the noisy quadratic of spec 4.5, for Adam, C-AdamW and AlphaAdam under every α rule and
# first-step policy, the experiment separates two things the spec's single number mixes:
#
# * the **loss after the spec's budget** (3000 steps from x₀ ~ N(0, I), mean over the last
#   window): the loss is still falling there, so this measures *speed* (criterion A-speed);
# * the **stationary noise floor**: start at the minimiser x* = 0 and average the exact loss over
#   the last quarter of a longer run, the level the noise sustains (criterion A-floor).
#
# Both: AlphaAdam's default below Adam's and C-AdamW's by > 2 combined standard errors over seeds.
# Also A-alpha (`count` below `none` after the budget: the compensation matters), A-async (the
# mask keeps a fraction in (0.05, 0.95), and > 50 % of coordinates are both kept and masked at
# some step) and A-first (the exact first-step facts, deterministic). The spec's indicative
# numbers (Adam 579, C-Adam 119, ...) come from an unstated start point: shown for reference only.

# %%
res_a = alphaadam_masks.run(CONFIG, OUT_DIR)
print_verdicts(res_a)
show_experiment_figures(res_a)
assert res_a.verdict("A-first").verdict == REPRODUCED

# %%
def floor_panel(ax, stats, title):
    labels = sorted(stats, key=lambda k: stats[k]["mean"])
    means = [stats[k]["mean"] for k in labels]
    ses = [stats[k]["se"] if math.isfinite(stats[k]["se"]) else 0.0 for k in labels]
    ax.barh(labels, means, xerr=ses, color=["C3" if k in ("adam", "cadamw") else "C0" for k in labels])
    ax.set_xlabel("mean exact loss f (dimensionless)")
    ax.set_title(title)


fig, axes = plt.subplots(1, 3, figsize=(18, 4.2))
floor_panel(axes[0], res_a.numbers["budget_loss"], f"after the spec's budget, ± 1 s.e. [{CONFIG}]")
floor_panel(axes[1], res_a.numbers["stationary_floor"], "stationary floor from x* = 0, ± 1 s.e.")
cfg_a = alphaadam_masks.CONFIGS[CONFIG]
records = [r for r in current_runs(OUT_DIR / "results" / f"alphaadam_masks_{CONFIG}.jsonl")
           if r["spec"]["seed"] in cfg_a["seeds"] and r["spec"]["steps"] == cfg_a["steps"]
           and r["spec"]["constants"].get("dim") == cfg_a["dim"]
           and r["spec"]["hyper"].get("lr") == cfg_a["lr"]]
for label, colour in (("alphaadam:count", "C0"), ("cadamw", "C3"), ("alphaadam:soft", "C2")):
    runs = [r["result"] for r in records if r["spec"]["label"] == label]
    assert len(runs) == len(cfg_a["seeds"]), (label, len(runs))
    for i, r in enumerate(runs):
        axes[2].plot(r["kept_t"], r["kept"], color=colour, alpha=0.7, lw=1,
                     label=label if i == 0 else None)
axes[2].set_xlabel("step t (count)")
axes[2].set_ylabel("kept fraction k/n (dimensionless)")
axes[2].set_title("mask density over time (C-AdamW: its Cautious mask)")
axes[2].legend(fontsize=8)
fig.tight_layout()
print("saved", save(fig, "alphaadam_masks"))
# B4 says AlphaAdam's m_prev mask is inside the Cautious mask *for the same state*; these are
# different trajectories, so the comparison below is an observation, not an identity.
kept = res_a.numbers["mean_kept_after_1"]
print(f"mean kept fraction: AlphaAdam {kept['alphaadam:count']:.3f}, C-AdamW {kept['cadamw']:.3f}")

# %% [markdown]
# ## 4. The report
#
# `refopt report` runs every experiment (`quick` by default, `--full` for the long versions) and
# the proofs registry, and writes `reports/report.md`: every claim of the three papers with its
# verdict, criterion and evidence, and the figures. The sweeps are resumable (JSON Lines, one
# record per run) and can run on local processes (`--workers N`) or a Dask cluster
# (`--scheduler tcp://host:port`). From Python: `refopt.experiments.report.run_report(out_dir,
# config=...)`.
#
# What the verdicts do *not* say: a synthetic objective is not an LLM, so "reproduced" means the
# mechanism behaves as claimed where it can be isolated; the papers' benchmark numbers are
# *not checkable here* and the report says so.
