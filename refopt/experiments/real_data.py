r"""Small-scale evidence on real data (issue 16): image classification on scikit-learn's
handwritten digits with an MLP, and byte-level language modelling on a fixed list of Python
standard-library source files with a GPT-2-style decoder at three sizes. Every AdamX, AdamS,
AlphaAdam and C-AdamW number comes from :mod:`refopt.torch` (verified on the golden suite); the
Adam/AdamW baselines are ``torch.optim.AdamW`` (``foreach=False``), which ``refopt verify
adamw`` passes (docs/conformance.md).

**Protocol** (docs/real_data.md). Every optimizer arm gets the same learning-rate grid, the same
schedule (linear warm-up over 10 % of the steps, cosine decay to 10 % of the peak), the same
step budget, batch size, data order and initialisation (seeded per run: seed s gives every arm
the same init and the same batches, so differences are paired by seed). Only the learning rate
is tuned, per arm and per model size, on one tuning seed that is not among the evaluation seeds,
by the final **validation** loss; tuning runs never evaluate the test split. The selected
learning rate is then run on the evaluation seeds, and the test split is evaluated once, at the
end. AdamS is run twice: tuned like every arm, and with AdamW's selected hyperparameters
unchanged (``adams_inherit``: not tuned at all). Intervals are two-sided 95 % Student-t
intervals over the evaluation seeds (paired differences for comparisons). The criteria of the
verdicts are fixed in :data:`CRITERIA` before any run; the report prints them with each verdict.
"""
from __future__ import annotations

import hashlib
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import _io
from ._common import ExperimentResult, Verdict, decide, fmt, pyplot, save_figure, t_ci
from .runner import read_results, run_sweep, task

TASK_VERSION = 1

# Committed results of the largest run done (see docs/real_data.md for the command).
COMMITTED_DIR = Path(__file__).with_name("real_results")

# The fixed corpus: these files of the installed standard library, in this order, as bytes.
STDLIB_FILES = (
    "argparse.py", "ast.py", "calendar.py", "configparser.py", "csv.py", "dataclasses.py",
    "difflib.py", "fractions.py", "functools.py", "heapq.py", "inspect.py", "ipaddress.py",
    "os.py", "pprint.py", "shutil.py", "statistics.py", "string.py", "textwrap.py",
    "threading.py", "typing.py",
)

# Optimizer arms: the class ("torch.AdamW" or a refopt.torch class) and the fixed hyperparameters
# (only lr is tuned). Weight decay applies to tensors with >= 2 dimensions only (nanoGPT
# grouping), for every arm alike.
_RECIPE = {"betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.1}   # nanoGPT AdamW recipe
ARMS: dict[str, dict] = {
    # Adam with AdamX's betas, eps and decoupled weight decay (spec adamx.md T7: match them).
    "adam": {"cls": "torch.AdamW", "hyper": {"betas": [0.9, 0.99], "eps": 1e-8,
                                              "weight_decay": 0.01}},
    "adamx": {"cls": "AdamX", "hyper": {"betas": [0.9, 0.99], "eps": 1e-8, "weight_decay": 0.01}},
    # Diagnostic arm: beta2 = 0.9 puts AdamX's memory horizon H (~96 steps) inside the budget.
    "adamx_b2_0.9": {"cls": "AdamX", "hyper": {"betas": [0.9, 0.9], "eps": 1e-8,
                                                "weight_decay": 0.01}},
    "adamw": {"cls": "torch.AdamW", "hyper": dict(_RECIPE)},
    "adams": {"cls": "AdamS", "hyper": dict(_RECIPE, bias_correction=False)},
    "adams_inherit": {"cls": "AdamS", "hyper": dict(_RECIPE, bias_correction=False),
                      "inherit": "adamw"},
    "alphaadam": {"cls": "AlphaAdam", "hyper": dict(_RECIPE)},
    "cadamw": {"cls": "CAdamW", "hyper": dict(_RECIPE)},
}

CONFIGS: dict[str, dict] = {
    "full": {
        "digits": {"arms": ["adam", "adamx", "adamx_b2_0.9", "adamw", "adams", "adams_inherit",
                            "alphaadam", "cadamw"],
                   "hidden": [128, 128], "steps": 600, "batch": 64, "eval_every": 25,
                   "lrs": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2], "tune_seed": 100,
                   "seeds": [0, 1, 2, 3, 4]},
        "lm": {"arms": ["adamw", "adams", "adams_inherit", "alphaadam", "cadamw"],
               "sizes": {"S": {"d": 32, "layers": 1, "heads": 2},
                         "M": {"d": 64, "layers": 2, "heads": 4},
                         "L": {"d": 96, "layers": 3, "heads": 4}},
               "ctx": 64, "batch": 16, "steps": 400, "eval_every": 50, "eval_batches": 8,
               "lrs": [3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1], "tune_seed": 100,
               "seeds": [0, 1, 2, 3, 4]},
    },
    "quick": {
        "digits": {"arms": ["adam", "adamx", "adamw", "adams", "adams_inherit", "alphaadam",
                            "cadamw"],
                   "hidden": [32], "steps": 60, "batch": 64, "eval_every": 20,
                   "lrs": [3e-3, 1e-2], "tune_seed": 100, "seeds": [0, 1]},
        "lm": {"arms": ["adamw", "adams", "adams_inherit", "alphaadam", "cadamw"],
               "sizes": {"XS": {"d": 16, "layers": 1, "heads": 2}},
               "ctx": 32, "batch": 4, "steps": 12, "eval_every": 6, "eval_batches": 2,
               "lrs": [3e-3, 1e-2], "tune_seed": 100, "seeds": [0, 1]},
    },
}

# Fixed before any run; the report prints them with each verdict.
MARGIN_LM = 0.02      # non-inferiority margin, relative to AdamW's mean test loss
MARGIN_ACC = 0.01     # non-inferiority margin on digits test accuracy (1 percentage point)
CRITERIA = {
    "R-adamx": "digits MLP: AdamX (paper defaults, lr tuned) beats Adam (same betas/eps/decay, "
               "lr tuned): mean test accuracy higher AND the 95 % paired-t CI of the difference "
               "(AdamX - Adam) over the evaluation seeds lies wholly above 0",
    "R-adams": f"every LM size: the upper end of the 95 % paired-t CI of the test-loss difference "
               f"(AdamS tuned - AdamW tuned) is <= {MARGIN_LM:.0%} of AdamW's mean test loss "
               f"(non-inferiority: 'comparable to or better'), and no AdamS run diverged",
    "R-adams-curves": f"every LM size: the upper 95 % paired-t bounds of (AdamS - AdamW) final "
                      f"train loss and of the validation loss at every evaluation in the second "
                      f"half of training are <= {MARGIN_LM:.0%} of AdamW's mean",
    "R-adams-inherit": f"AdamS with AdamW's selected hyperparameters unchanged (no tuning): no "
                       f"run diverged; every LM size: upper 95 % paired-t bound of (AdamS-inherit "
                       f"- AdamW) test loss <= {MARGIN_LM:.0%} of AdamW's mean; digits: lower 95 "
                       f"% paired-t bound of the test-accuracy difference >= -{MARGIN_ACC:.0%}",
    "R-alpha": "every LM size: AlphaAdam's final training loss is below AdamW's and below "
               "C-AdamW's: both 95 % paired-t CIs of (AlphaAdam - other) lie wholly below 0",
}

SCALE_NOTE = {
    "full": "small scale (sklearn digits, 1,797 8x8 images, 64-128-128-10 MLP, 600 steps of 64; "
            "byte-level LM on 20 stdlib files, 1.06 MB, GPT-2-style decoders of 1/2/3 layers, "
            "23k/121k/366k parameters, 400 steps of 16x64 bytes; 5 seeds; CPU)",
}


# -- data ------------------------------------------------------------------------------------

def digits_data(split_seed: int = 0) -> dict:
    """scikit-learn's digits (shipped with the package), scaled to [0, 1], split 60/20/20 by a
    fixed permutation (train, val, test); ImportError if scikit-learn is absent."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError("the digits task needs scikit-learn (pip install 'refopt[real]')") \
            from exc
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    perm = np.random.default_rng(split_seed).permutation(len(y))
    n_tr, n_va = int(0.6 * len(y)), int(0.2 * len(y))
    idx = {"train": perm[:n_tr], "val": perm[n_tr:n_tr + n_va], "test": perm[n_tr + n_va:]}
    return {k: (x[v], y[v]) for k, v in idx.items()}


def stdlib_dir() -> Path:
    import sysconfig

    return Path(sysconfig.get_paths()["stdlib"])


def stdlib_corpus(files: tuple = STDLIB_FILES) -> dict:
    """The byte corpus: each file split 80/10/10 (train/val/test) in order; the sha256 of the
    concatenated files and the Python version identify it (stdlib text differs by version)."""
    root = stdlib_dir()
    parts = {"train": [], "val": [], "test": []}
    h = hashlib.sha256()
    for name in files:
        data = (root / name).read_bytes()
        h.update(data)
        a, b = int(0.8 * len(data)), int(0.9 * len(data))
        parts["train"].append(data[:a])
        parts["val"].append(data[a:b])
        parts["test"].append(data[b:])
    out = {k: np.frombuffer(b"".join(v), dtype=np.uint8).copy() for k, v in parts.items()}
    out["sha256"] = h.hexdigest()
    out["python"] = ".".join(map(str, sys.version_info[:3]))
    return out


# -- models ----------------------------------------------------------------------------------

def _mlp(sizes):
    import torch.nn as nn

    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def _gpt(vocab: int, ctx: int, d: int, layers: int, heads: int):
    """A small pre-LayerNorm decoder (GPT-2 layout: learned positions, causal attention, 4d GELU
    MLP, tied input/output embedding)."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.fc, self.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

        def forward(self, x):
            B, T, _ = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
            q, k, v = (z.view(B, T, heads, d // heads).transpose(1, 2) for z in (q, k, v))
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.proj(a.transpose(1, 2).reshape(B, T, d))
            return x + self.out(F.gelu(self.fc(self.ln2(x))))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(ctx, d)
            self.blocks = nn.ModuleList(Block() for _ in range(layers))
            self.ln = nn.LayerNorm(d)
            for name, p in self.named_parameters():
                if p.dim() >= 2:
                    nn.init.normal_(p, std=0.02)
                elif "ln" not in name:
                    nn.init.zeros_(p)

        def forward(self, idx):
            x = self.tok(idx) + self.pos(torch.arange(idx.shape[1], device=idx.device))
            for b in self.blocks:
                x = b(x)
            return self.ln(x) @ self.tok.weight.T

    return GPT()


def make_optimizer(arm: str, params, lr: float, hyper: dict):
    """The arm's optimizer on the nanoGPT param groups (decay on >= 2-D tensors only)."""
    import torch

    from .. import torch as rt

    params = list(params)
    hyper = dict(hyper)
    wd = hyper.pop("weight_decay", 0.0)
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": wd},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    if "betas" in hyper:
        hyper["betas"] = tuple(hyper["betas"])
    cls = ARMS[arm]["cls"]
    if cls == "torch.AdamW":
        return torch.optim.AdamW(groups, lr=lr, foreach=False, **hyper)
    return getattr(rt, cls)(groups, lr=lr, foreach=False, **hyper)


def lr_factor(t: int, total: int, warmup_frac: float = 0.1, floor: float = 0.1) -> float:
    """Linear warm-up over warmup_frac of the steps, then cosine decay to floor (t = 1..total)."""
    w = max(1, int(round(warmup_frac * total)))
    if t <= w:
        return t / w
    p = (t - w) / max(1, total - w)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p))


def state_bytes(opt) -> int:
    """Bytes of the optimizer's tensor state (every tensor in opt.state)."""
    import torch

    return int(sum(v.numel() * v.element_size() for s in opt.state.values()
                   for v in s.values() if isinstance(v, torch.Tensor) and v.dim() > 0))


# -- the run task ----------------------------------------------------------------------------

@task("real_train", version=TASK_VERSION)
def real_train(spec: dict) -> dict:
    """One training run: spec keys problem ("digits"|"lm"), arm, lr, hyper, seed, steps, batch,
    eval_every, model (hidden | d/layers/heads/ctx), eval_test (False in tuning runs)."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(int(spec.get("threads", 1)))
    torch.manual_seed(spec["seed"])
    rng = np.random.default_rng(spec["seed"])
    start = time.perf_counter()
    steps, bs, m = int(spec["steps"]), int(spec["batch"]), spec["model"]
    if spec["problem"] == "digits":
        data = {k: (torch.from_numpy(x), torch.from_numpy(y)) for k, (x, y) in
                digits_data().items()}
        model = _mlp([64, *m["hidden"], 10])
        n_train = len(data["train"][1])

        def batch():
            i = torch.from_numpy(rng.integers(0, n_train, bs))
            return data["train"][0][i], data["train"][1][i]

        def loss_on(split, fixed_n=None):
            x, y = data[split]
            with torch.no_grad():
                out = model(x)
                return float(F.cross_entropy(out, y)), float((out.argmax(1) == y).float().mean())
    else:
        corpus = stdlib_corpus()
        ctx = int(m["ctx"])
        model = _gpt(256, ctx, int(m["d"]), int(m["layers"]), int(m["heads"]))
        seqs = {k: torch.from_numpy(corpus[k].astype(np.int64)) for k in ("train", "val", "test")}
        # Fixed evaluation windows (the same for every run): evenly spaced starts.
        n_eval = int(spec["eval_batches"]) * bs
        fixed = {k: np.linspace(0, len(v) - ctx - 2, n_eval).astype(np.int64)
                 for k, v in seqs.items()}

        def windows(split, starts):
            s = seqs[split]
            x = torch.stack([s[i:i + ctx] for i in starts])
            y = torch.stack([s[i + 1:i + ctx + 1] for i in starts])
            return x, y

        def batch():
            return windows("train", rng.integers(0, len(seqs["train"]) - ctx - 1, bs))

        def loss_on(split, fixed_n=None):
            x, y = windows(split, fixed[split])
            with torch.no_grad():
                total = 0.0
                for j in range(0, len(x), bs):
                    out = model(x[j:j + bs])
                    total += float(F.cross_entropy(out.reshape(-1, 256), y[j:j + bs].reshape(-1),
                                                   reduction="sum"))
                return total / y.numel(), None
    n_params = int(sum(p.numel() for p in model.parameters()))
    opt = make_optimizer(spec["arm"], model.parameters(), spec["lr"], spec["hyper"])
    curve = {"step": [], "train_loss": [], "val_loss": []}
    running, diverged = [], False
    for t in range(1, steps + 1):
        for g in opt.param_groups:
            g["lr"] = spec["lr"] * lr_factor(t, steps)
        x, y = batch()
        out = model(x)
        loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
        if not torch.isfinite(loss):
            diverged = True
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        running.append(float(loss.detach()))
        if t % int(spec["eval_every"]) == 0 or t == steps:
            model.eval()
            curve["step"].append(t)
            curve["train_loss"].append(float(np.mean(running[-int(spec["eval_every"]):])))
            curve["val_loss"].append(loss_on("val")[0])
            model.train()
    res: dict[str, Any] = {"diverged": diverged, "n_params": n_params,
                           "state_bytes": state_bytes(opt), "curve": curve,
                           "device": "cpu", "torch": torch.__version__,
                           "threads": torch.get_num_threads()}
    if spec["problem"] == "lm":
        res["corpus_sha256"], res["python"] = corpus["sha256"], corpus["python"]
    if diverged:
        res.update(val_loss=None, train_loss=None)
    else:
        model.eval()
        res["val_loss"], res["val_acc"] = loss_on("val")
        res["train_loss"], res["train_acc"] = loss_on("train")
        if spec.get("eval_test"):
            res["test_loss"], res["test_acc"] = loss_on("test")
    res["seconds"] = time.perf_counter() - start
    return res


# -- planning --------------------------------------------------------------------------------

def _base(problem: str, cfg: dict, size: str | None) -> dict:
    c = cfg[problem]
    if problem == "digits":
        model = {"hidden": list(c["hidden"])}
    else:
        model = dict(c["sizes"][size], ctx=c["ctx"])
    spec = {"task": "real_train", "problem": problem, "model": model, "steps": c["steps"],
            "batch": c["batch"], "eval_every": c["eval_every"], "threads": 1}
    if problem == "lm":
        spec["eval_batches"] = c["eval_batches"]
    return spec


def _cells(cfg: dict):
    yield "digits", None
    for size in cfg["lm"]["sizes"]:
        yield "lm", size


def tune_specs(cfg: dict) -> list[dict]:
    """Tuning runs: every tuned arm x the lr grid, on the tuning seed; no test evaluation."""
    specs = []
    for problem, size in _cells(cfg):
        c = cfg[problem]
        for arm in c["arms"]:
            if "inherit" in ARMS[arm]:
                continue
            for lr in c["lrs"]:
                specs.append(dict(_base(problem, cfg, size), arm=arm, lr=lr,
                                  hyper=ARMS[arm]["hyper"], seed=c["tune_seed"],
                                  eval_test=False, size=size))
    return specs


def select(tune_records: list[dict]) -> dict:
    """(problem, size, arm) -> {"lr", "hyper", "edge"}: the lr of lowest final validation loss
    (a diverged run counts as +inf). Reads validation numbers only (tuning runs have no test)."""
    best: dict = {}
    for rec in tune_records:
        s, r = rec["spec"], rec["result"]
        key = (s["problem"], s.get("size"), s["arm"])
        v = r["val_loss"] if r.get("val_loss") is not None else math.inf
        best.setdefault(key, []).append((v, s["lr"], s["hyper"]))
    out = {}
    for key, rows in best.items():
        rows.sort(key=lambda z: (z[0], z[1]))
        lrs = sorted(z[1] for z in rows)
        out[key] = {"lr": rows[0][1], "hyper": rows[0][2], "val_loss": rows[0][0],
                    "edge": rows[0][1] in (lrs[0], lrs[-1]) and len(lrs) > 1}
    return out


def final_specs(cfg: dict, chosen: dict) -> list[dict]:
    specs = []
    for problem, size in _cells(cfg):
        c = cfg[problem]
        for arm in c["arms"]:
            src = ARMS[arm].get("inherit", arm)
            pick = chosen[(problem, size, src)]
            hyper = dict(pick["hyper"])
            if "inherit" in ARMS[arm]:   # AdamW's selected hyperparameters, unchanged
                hyper = {k: hyper[k] for k in ("betas", "eps", "weight_decay")}
                hyper.update({k: v for k, v in ARMS[arm]["hyper"].items()
                              if k not in ("betas", "eps", "weight_decay")})
            for seed in c["seeds"]:
                specs.append(dict(_base(problem, cfg, size), arm=arm, lr=pick["lr"],
                                  hyper=hyper, seed=seed, eval_test=True, size=size))
    return specs


# -- statistics and verdicts -----------------------------------------------------------------

def _by(records: list[dict]) -> dict:
    """(problem, size, arm) -> {seed: result}."""
    out: dict = {}
    for rec in records:
        s = rec["spec"]
        out.setdefault((s["problem"], s.get("size"), s["arm"]), {})[s["seed"]] = rec["result"]
    return out


def _metric(res: dict, key: str) -> float:
    v = res.get(key)
    return math.inf if v is None else float(v)


def paired(groups: dict, cell: tuple, a: str, b: str, key: str) -> dict:
    """t CI of (a - b) in ``key`` over the seeds both arms ran in this (problem, size) cell."""
    ra, rb = groups[(*cell, a)], groups[(*cell, b)]
    seeds = sorted(set(ra) & set(rb))
    d = [_metric(ra[s], key) - _metric(rb[s], key) for s in seeds]
    ci = t_ci(d)
    ci["b_mean"] = float(np.mean([_metric(rb[s], key) for s in seeds]))
    ci["a_mean"] = float(np.mean([_metric(ra[s], key) for s in seeds]))
    return ci


def _any_diverged(groups, cell, arm) -> bool:
    return any(r.get("diverged") for r in groups.get((*cell, arm), {}).values())


def _ci_text(c: dict, digits: int = 3) -> str:
    return f"{fmt(c['mean'], digits)} [{fmt(c['lo'], digits)}, {fmt(c['hi'], digits)}]"


_SIZES = ("XS", "S", "M", "L", "XL")


def _size_rank(cell) -> tuple:
    """Order (problem, size, ...) keys: digits first, then the LM sizes from small to large."""
    size = cell[1]
    return (cell[0], _SIZES.index(size) if size in _SIZES else len(_SIZES), str(size))


def _fail(good: bool, c: dict, bound: float, sense: str) -> str:
    """Why a bound failed: the whole CI on the wrong side (evidence against), or the CI straddling
    the bound (inconclusive at this number of seeds), or a diverged run (NaN)."""
    if good:
        return ""
    lo, hi = c["lo"], c["hi"]
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return " FAILS (a run diverged or too few seeds)"
    past = lo > bound if sense == "upper" else hi < bound
    return (" FAILS (the whole CI is past the bound)" if past else
            f" FAILS (the CI straddles the bound, n = {c['n']} seeds)")


def verdicts(final_records: list[dict], scale: str) -> tuple[list[Verdict], dict]:
    """The verdicts of :data:`CRITERIA` from the evaluation runs, and the numbers behind them."""
    g = _by(final_records)
    lm_cells = sorted({(p, s) for p, s, _ in g if p == "lm"}, key=_size_rank)
    dig = ("digits", None)
    nums: dict = {}
    out = []
    tag = f"At {scale}"

    # AdamX vs Adam on digits (test accuracy).
    c = paired(g, dig, "adamx", "adam", "test_acc")
    nums["adamx_minus_adam_acc"] = c
    ok = c["mean"] > 0 and c["lo"] > 0 and not _any_diverged(g, dig, "adamx")
    why = _fail(ok, c, 0.0, "lower")
    extra = ""
    if (*dig, "adamx_b2_0.9") in g:
        c9 = paired(g, dig, "adamx_b2_0.9", "adam", "test_acc")
        nums["adamx_b2_0.9_minus_adam_acc"] = c9
        extra = (f"; diagnostic arm AdamX beta2 = 0.9 (H ~ 96 steps, inside the budget) - Adam: "
                 f"{_ci_text(c9)}")
    out.append(Verdict("R-adamx", decide(ok), CRITERIA["R-adamx"],
                       f"{tag}: test accuracy AdamX {fmt(c['a_mean'], 4)} vs Adam "
                       f"{fmt(c['b_mean'], 4)}, difference {_ci_text(c)} (n = {c['n']} seeds)"
                       f"{why}; "
                       f"AdamX's memory horizon at beta2 = 0.99 is ~9,950 steps, longer than the "
                       f"budget, so this arm stays in its Adam-like regime" + extra,
                       f"digits: AdamX - Adam test accuracy {_ci_text(c)} (needed: CI above 0)"))

    # AdamS tuned vs AdamW (test loss), every LM size.
    parts, short, ok = [], [], bool(lm_cells)
    for cell in lm_cells:
        c = paired(g, cell, "adams", "adamw", "test_loss")
        nums[f"adams_minus_adamw_test_loss_{cell[1]}"] = c
        good = c["hi"] <= MARGIN_LM * c["b_mean"] and not _any_diverged(g, cell, "adams")
        ok = ok and good
        parts.append(f"{cell[1]}: AdamS {fmt(c['a_mean'])} vs AdamW {fmt(c['b_mean'])}, diff "
                     f"{_ci_text(c)} (bound {fmt(MARGIN_LM * c['b_mean'], 3)})"
                     f"{_fail(good, c, MARGIN_LM * c['b_mean'], 'upper')}")
        short.append(f"{cell[1]} {fmt(c['hi'], 2)} / {fmt(MARGIN_LM * c['b_mean'], 2)}")
    out.append(Verdict("R-adams", decide(ok), CRITERIA["R-adams"],
                       f"{tag}: test loss (nats/byte) " + "; ".join(parts),
                       "AdamS - AdamW test loss, upper CI end / bound (2 % of AdamW's): "
                       + ", ".join(short) + " (needed: <= at every size)"))

    # AdamS curves: final train loss and the second half of the validation curve.
    parts, short, ok = [], [], bool(lm_cells)
    for cell in lm_cells:
        c = paired(g, cell, "adams", "adamw", "train_loss")
        good = c["hi"] <= MARGIN_LM * c["b_mean"]
        worst = -math.inf
        ra, rb = g[(*cell, "adams")], g[(*cell, "adamw")]
        seeds = sorted(set(ra) & set(rb))
        steps = ra[seeds[0]]["curve"]["step"] if seeds else []
        for j in range(len(steps) // 2, len(steps)):
            try:
                d = [ra[s]["curve"]["val_loss"][j] - rb[s]["curve"]["val_loss"][j] for s in seeds]
                base = np.mean([rb[s]["curve"]["val_loss"][j] for s in seeds])
            except IndexError:  # a diverged run stopped early
                good = False
                continue
            ci = t_ci(d)
            worst = max(worst, ci["hi"] / base)
            good = good and ci["hi"] <= MARGIN_LM * base
        ok = ok and good
        nums[f"adams_curves_{cell[1]}"] = {"train": c, "worst_val_hi_rel": worst}
        parts.append(f"{cell[1]}: train-loss diff {_ci_text(c)}, worst upper bound of the val "
                     f"diff / AdamW's val loss {fmt(worst, 3)} (bound {MARGIN_LM})"
                     f"{'' if good else ' FAILS'}")
        short.append(f"{cell[1]} {fmt(c['hi'] / c['b_mean'], 2)} / {fmt(worst, 2)}")
    out.append(Verdict("R-adams-curves", decide(ok), CRITERIA["R-adams-curves"],
                       f"{tag}: " + "; ".join(parts),
                       "AdamS - AdamW upper CI ends relative to AdamW, final train loss / worst "
                       "val loss of the second half: " + ", ".join(short)
                       + f" (needed: <= {MARGIN_LM} each)"))

    # AdamS inheriting AdamW's hyperparameters.
    parts, short, ok = [], [], bool(lm_cells)
    for cell in lm_cells:
        c = paired(g, cell, "adams_inherit", "adamw", "test_loss")
        nums[f"inherit_minus_adamw_test_loss_{cell[1]}"] = c
        good = c["hi"] <= MARGIN_LM * c["b_mean"] and not _any_diverged(g, cell, "adams_inherit")
        ok = ok and good
        parts.append(f"LM {cell[1]}: test loss {fmt(c['a_mean'])} vs AdamW {fmt(c['b_mean'])}, "
                     f"diff {_ci_text(c)}{_fail(good, c, MARGIN_LM * c['b_mean'], 'upper')}")
        short.append(f"LM {cell[1]} {fmt(c['hi'], 2)} / {fmt(MARGIN_LM * c['b_mean'], 2)}")
    if (*dig, "adams_inherit") in g:
        c = paired(g, dig, "adams_inherit", "adamw", "test_acc")
        nums["inherit_minus_adamw_acc_digits"] = c
        good = c["lo"] >= -MARGIN_ACC and not _any_diverged(g, dig, "adams_inherit")
        ok = ok and good
        parts.append(f"digits: test accuracy {fmt(c['a_mean'], 4)} vs AdamW "
                     f"{fmt(c['b_mean'], 4)}, diff {_ci_text(c)}"
                     f"{_fail(good, c, -MARGIN_ACC, 'lower')}")
        short.append(f"digits accuracy: lower CI end {fmt(c['lo'], 2)} (needed >= "
                     f"{-MARGIN_ACC:g})")
    out.append(Verdict("R-adams-inherit", decide(ok), CRITERIA["R-adams-inherit"],
                       f"{tag}: " + "; ".join(parts),
                       "AdamS with AdamW's hp - AdamW test loss, upper CI end / bound "
                       "(needed <=): "
                       + ", ".join(short)))

    # AlphaAdam vs AdamW and C-AdamW: training loss, every LM size.
    parts, short, ok = [], [], bool(lm_cells)
    for cell in lm_cells:
        ends = []
        for other in ("adamw", "cadamw"):
            c = paired(g, cell, "alphaadam", other, "train_loss")
            nums[f"alpha_minus_{other}_train_loss_{cell[1]}"] = c
            good = c["hi"] < 0 and not _any_diverged(g, cell, "alphaadam")
            ok = ok and good
            parts.append(f"{cell[1]} vs {other}: {fmt(c['a_mean'])} vs {fmt(c['b_mean'])}, diff "
                         f"{_ci_text(c)}{_fail(good, c, 0.0, 'upper')}")
            ends.append(fmt(c["hi"], 2))
        short.append(f"{cell[1]} {' / '.join(ends)}")
    out.append(Verdict("R-alpha", decide(ok), CRITERIA["R-alpha"],
                       f"{tag}: final training loss (nats/byte) " + "; ".join(parts),
                       "AlphaAdam - AdamW / - C-AdamW final train loss, upper CI ends: "
                       + ", ".join(short) + " (needed: < 0 each)"))
    return out, nums


def table_md(final_records: list[dict], chosen: dict) -> str:
    """Per (task, size, arm): the selected lr (marked when it is an end of the grid), the test
    metrics and the final training loss with their 95 % t CIs, the state bytes, diverged runs."""
    g = _by(final_records)
    rows = ["| task | arm | lr (tuned on val) | test loss | test acc | train loss | state KiB "
            "| params | diverged |", "|---|---|---|---|---|---|---|---|---|"]
    for (p, size, arm) in sorted(g, key=lambda k: (*_size_rank(k), list(ARMS).index(k[2]))):
        runs = list(g[(p, size, arm)].values())
        src = ARMS[arm].get("inherit", arm)
        pick = chosen.get((p, size, src), {})
        lr = fmt(pick.get("lr")) + (" (grid end)" if pick.get("edge") else "") + \
            (" (AdamW's)" if src != arm else "")
        acc = _ci_text(t_ci([_metric(r, "test_acc") for r in runs]), 4) if p == "digits" else "-"
        rows.append(f"| {p}{'' if size is None else ' ' + size} | {_LABEL[arm]} | {lr} | "
                    f"{_ci_text(t_ci([_metric(r, 'test_loss') for r in runs]))} | {acc} | "
                    f"{_ci_text(t_ci([_metric(r, 'train_loss') for r in runs]))} | "
                    f"{runs[0]['state_bytes'] / 1024:.0f} | {runs[0]['n_params']:,} | "
                    f"{sum(bool(r.get('diverged')) for r in runs)}/{len(runs)} |")
    return "\n".join(rows)


# -- figures ---------------------------------------------------------------------------------

_LABEL = {"adam": "Adam", "adamx": "AdamX", "adamx_b2_0.9": "AdamX b2=0.9", "adamw": "AdamW",
          "adams": "AdamS", "adams_inherit": "AdamS (AdamW's hp)", "alphaadam": "AlphaAdam",
          "cadamw": "C-AdamW"}


def _color(arm: str) -> str:
    return f"C{list(ARMS).index(arm)}"


def _plain_ticks(axis) -> None:
    """Plain tick labels (0.05, 2.4) on a log axis instead of 5 x 10^-2."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _band(ax, runs: dict, arm: str, key: str) -> bool:
    """Mean curve of ``key`` over the arm's non-diverged seeds with its 95 % t band."""
    curves = [r["curve"] for r in runs.values() if not r.get("diverged")]
    if not curves:
        return False
    n = min(len(c["step"]) for c in curves)
    steps = curves[0]["step"][:n]
    vals = np.array([c[key][:n] for c in curves])
    cis = [t_ci(vals[:, j]) for j in range(n)]
    ax.plot(steps, [c["mean"] for c in cis], label=_LABEL[arm], lw=1.3, color=_color(arm),
            ls="--" if "inherit" in ARMS[arm] else "-")
    if len(curves) > 1:
        ax.fill_between(steps, [c["lo"] for c in cis], [c["hi"] for c in cis], alpha=0.18,
                        color=_color(arm), lw=0)
    return True


def _legend_below(fig, ax_or_axes, ncol: int) -> None:
    """One legend under the panels, outside the data."""
    axes = np.atleast_1d(ax_or_axes)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=9, frameon=False)


#: The figures, one idea each: (file suffix, claim, arms, metric, title).
CURVE_FIGURES = (
    ("digits", "R-adamx", ("adam", "adamx", "adamx_b2_0.9"), "val_loss",
     "digits MLP: AdamX vs Adam, validation loss"),
    ("curves_adams", "R-adams-curves", ("adamw", "adams", "adams_inherit"), "val_loss",
     "byte LM: AdamS vs AdamW, validation loss"),
    ("curves_alpha", "R-alpha", ("adamw", "cadamw", "alphaadam"), "train_loss",
     "byte LM: AlphaAdam vs AdamW and C-AdamW, training loss"),
)


def figures(final_records: list[dict], out_dir: Path, name: str) -> list[Path]:
    """The real-data figures, one idea per figure and one cell (task, size) per panel: AdamX
    vs Adam on digits; AdamS vs AdamW validation curves per LM size; AlphaAdam's training loss
    per LM size; AdamS's final test loss against model size; optimizer state bytes. Bands:
    95 % t intervals over the seeds."""
    plt = pyplot()
    g = _by(final_records)
    cells = sorted({(p, s) for p, s, _ in g}, key=_size_rank)
    lm = [c for c in cells if c[0] == "lm"]
    paths = []
    for suffix, _claim, arms, key, title in CURVE_FIGURES:
        panels = [("digits", None)] if suffix == "digits" else lm
        panels = [c for c in panels if any((*c, a) in g for a in arms)]
        if not panels:
            continue
        width = 6.4 if len(panels) == 1 else 3.3 * len(panels)
        fig, axes = plt.subplots(1, len(panels), figsize=(width, 4.0), squeeze=False,
                                 sharey=suffix != "digits")
        for ax, cell in zip(axes[0], panels):
            for arm in arms:
                if (*cell, arm) in g:
                    _band(ax, g[(*cell, arm)], arm, key)
            npar = next(iter(next(g[k] for k in g if k[:2] == cell).values()))["n_params"]
            where = "digits MLP" if cell[0] == "digits" else f"LM size {cell[1]}"
            ax.set_title(f"{where} ({npar / 1e3:.0f}k params)" if len(panels) > 1
                         else f"{title} ({npar / 1e3:.0f}k params)", fontsize=10)
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
            if cell[0] == "digits":
                ax.set_yscale("log")
                _plain_ticks(ax.yaxis)
        unit = "" if suffix == "digits" else ", nats/byte"
        axes[0][0].set_ylabel(f"{key.replace('_', ' ')}{unit} (mean, 95 % t band)")
        if len(panels) > 1:
            fig.suptitle(title, fontsize=11)
        _legend_below(fig, axes[0], len(arms))
        fig.tight_layout(rect=(0, 0.08, 1, 1))
        paths.append(save_figure(fig, out_dir / f"{name}_{suffix}.png"))

    size_arms = ("adamw", "adams", "adams_inherit")
    if lm:
        fig, ax = plt.subplots(figsize=(6.4, 4.3))
        for arm in size_arms:
            xs, ms, lo, hi = [], [], [], []
            for cell in lm:
                runs = g.get((*cell, arm))
                if not runs:
                    continue
                ci = t_ci([_metric(r, "test_loss") for r in runs.values()])
                xs.append(next(iter(runs.values()))["n_params"])
                ms.append(ci["mean"])
                lo.append(ci["mean"] - ci["lo"] if math.isfinite(ci["lo"]) else 0)
                hi.append(ci["hi"] - ci["mean"] if math.isfinite(ci["hi"]) else 0)
            if xs:
                ax.errorbar(xs, ms, yerr=[lo, hi], marker="o", capsize=3, label=_LABEL[arm],
                            color=_color(arm), ls="--" if "inherit" in ARMS[arm] else "-")
        ax.set_xscale("log")
        ticks = {next(iter(g[(*c, "adamw")].values()))["n_params"]: c[1] for c in lm
                 if (*c, "adamw") in g}
        ax.minorticks_off()
        ax.set_xticks(list(ticks), [f"{size}\n{n / 1e3:.0f}k" for n, size in ticks.items()])
        ax.set_xlabel("model size (parameters)")
        ax.set_ylabel("test loss, nats/byte (mean, 95 % t CI)")
        ax.set_title("byte LM: AdamS vs AdamW, final test loss by model size", fontsize=11)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=3,
                  frameon=False)
        fig.tight_layout()
        paths.append(save_figure(fig, out_dir / f"{name}_size.png"))

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    cell = lm[-1] if lm else cells[0]
    arms = [a for a in ARMS if (*cell, a) in g]
    sb = [next(iter(g[(*cell, a)].values()))["state_bytes"] for a in arms]
    npar = next(iter(g[(*cell, arms[0])].values()))["n_params"]
    ax.bar(range(len(arms)), [b / 1024 for b in sb], color=[_color(a) for a in arms])
    ax.axhline(4 * npar / 1024, color="k", ls=":", lw=1,
               label="size of the fp32 parameters (one state tensor)")
    ax.set_xticks(range(len(arms)), [_LABEL[a] for a in arms], rotation=20, ha="right",
                  fontsize=9)
    ax.set_ylabel("optimizer state (KiB)")
    where = f"LM size {cell[1]}" if cell[0] == "lm" else "digits MLP"
    ax.set_title(f"optimizer state, {where} ({npar / 1e3:.0f}k params)", fontsize=11)
    ax.set_ylim(0, 1.25 * max(b / 1024 for b in sb))
    ax.legend(fontsize=9, loc="upper left")
    fig.tight_layout()
    paths.append(save_figure(fig, out_dir / f"{name}_memory.png"))
    return paths


# -- entry points ----------------------------------------------------------------------------

def run(config: str, out_dir: str | Path, *, max_workers: int | None = 1, scheduler=None,
        progress: bool = False, fig_dir: str | Path | None = None) -> ExperimentResult:
    """Run (or resume) the tuning and evaluation sweeps of ``config`` into ``out_dir``:
    ``real_tune.jsonl``, ``real_final.jsonl``; figures into ``fig_dir`` (default out_dir)."""
    if config not in CONFIGS:
        raise ValueError(f"config must be one of {sorted(CONFIGS)}, got {config!r}")
    start = time.perf_counter()
    cfg = CONFIGS[config]
    out_dir = Path(out_dir)
    kw = {"max_workers": max_workers, "scheduler": scheduler, "progress": progress}
    tune = run_sweep(tune_specs(cfg), out_dir / "real_tune.jsonl", **kw)
    chosen = select(tune)
    final = run_sweep(final_specs(cfg, chosen), out_dir / "real_final.jsonl", **kw)
    res = summarise(config, tune, final, Path(fig_dir) if fig_dir else out_dir)
    res.seconds = time.perf_counter() - start
    return res


def summarise(config: str, tune: list[dict], final: list[dict], fig_dir: Path,
              make_figures: bool = True) -> ExperimentResult:
    scale = SCALE_NOTE.get(config, f"toy scale ({config} configuration)")
    vs, nums = verdicts(final, scale)
    chosen = select(tune)
    nums["selected_lr"] = {f"{p}/{s or '-'}/{a}": {"lr": v["lr"], "val_loss": v["val_loss"],
                                                   "at_grid_edge": v["edge"]}
                           for (p, s, a), v in sorted(chosen.items(), key=str)}
    nums["run_seconds"] = float(sum(r["result"].get("seconds", 0) for r in (*tune, *final)))
    nums["runs"] = {"tune": len(tune), "final": len(final)}
    lm = [r["result"] for r in final if r["spec"]["problem"] == "lm"]
    if lm:
        nums["corpus"] = {"sha256": lm[0].get("corpus_sha256"), "python": lm[0].get("python"),
                          "files": list(STDLIB_FILES)}
    nums["criteria"] = dict(CRITERIA)
    nums["table_md"] = table_md(final, chosen)
    figs = figures(final, fig_dir, f"real_{config}") if make_figures and final else []
    return ExperimentResult("real_data", config, nums, vs, figs)


def current_records(cfg: dict, tune_path: Path, final_path: Path) -> tuple[list, list]:
    """The records of ``cfg``'s runs in the two files, in spec order: a results file may also
    hold runs of an earlier grid (its lr no longer selected), which must not be mixed in.
    Raises FileNotFoundError when an evaluation run of the current selection is missing."""
    from .runner import _is_current, jsonable, run_key

    def pick(path, specs):
        # Only records of the task's current version, as the runner reuses them.
        recs = {r["key"]: r for r in read_results(path) if _is_current(r)}
        keys = [run_key(jsonable(s)) for s in specs]
        missing = [k for k in keys if k not in recs]
        return [recs[k] for k in keys if k in recs], missing

    tune, _ = pick(tune_path, tune_specs(cfg))
    final, missing = pick(final_path, final_specs(cfg, select(tune)))
    if missing:
        raise FileNotFoundError(f"{final_path}: {len(missing)} evaluation runs of the selected "
                                f"learning rates are missing (rerun to complete them)")
    return tune, final


def from_committed(fig_dir: str | Path, committed: str | Path = COMMITTED_DIR) -> ExperimentResult:
    """The verdicts from the committed results (no training): re-analyses
    ``real_tune.jsonl``/``real_final.jsonl`` there and copies its figures into ``fig_dir``.
    Raises FileNotFoundError when nothing is committed."""
    committed = Path(committed)
    meta = _io.load_json(committed / "meta.json")
    tune, final = current_records(CONFIGS[meta["config"]], committed / "real_tune.jsonl",
                                  committed / "real_final.jsonl")
    if not final:
        raise FileNotFoundError(committed / "real_final.jsonl")
    res = summarise(meta["config"], tune, final, Path(fig_dir), make_figures=False)
    fig_dir = Path(fig_dir)
    order = [f"_{c[0]}" for c in CURVE_FIGURES] + ["_size", "_memory"]

    def rank(src):
        return next((i for i, end in enumerate(order) if src.stem.endswith(end)), len(order))

    for src in sorted(committed.glob("*.png"), key=lambda p: (rank(p), p.name)):
        res.figures.append(_io.atomic_write_bytes(fig_dir / src.name, src.read_bytes())
                           or fig_dir / src.name)
    res.numbers["committed"] = meta
    res.config = (f"{meta['config']} configuration, committed results of `{meta['command']}`: "
                  f"{meta['runs']['tune']} tuning + {meta['runs']['final']} evaluation runs, "
                  f"{meta['wall_seconds'] / 60:.0f} min wall on {meta['machine']}, "
                  f"{meta['device']}, torch {meta['torch']}")
    return res


def main(argv=None) -> int:
    """``python -m refopt.experiments.real_data [--config full] [--out DIR]``: run (or resume)
    the sweeps into DIR and write DIR/meta.json (config, wall time, machine); the files of DIR
    are what refopt commits in refopt/experiments/real_results/."""
    import argparse
    import os
    import platform

    p = argparse.ArgumentParser(prog="python -m refopt.experiments.real_data")
    p.add_argument("--config", default="full", choices=sorted(CONFIGS))
    p.add_argument("--out", default=str(COMMITTED_DIR), metavar="DIR")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--scheduler", default=None, metavar="ADDRESS")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    out = Path(args.out)
    wall = time.perf_counter()
    res = run(args.config, out, max_workers=args.workers, scheduler=args.scheduler,
              progress=sys.stderr.isatty())
    meta = {"config": args.config, "wall_seconds": time.perf_counter() - wall,
            "run_seconds": res.numbers["run_seconds"], "runs": res.numbers["runs"],
            "command": f"python -m refopt.experiments.real_data --config {args.config}",
            "machine": f"{platform.machine()} {platform.processor() or ''} "
                       f"{os.cpu_count()} cores".strip(),
            "device": "cpu", "torch": torch.__version__, "python": platform.python_version(),
            "corpus": res.numbers.get("corpus")}
    _io.atomic_write_json(out / "meta.json", meta)
    for v in res.verdicts:
        print(f"{v.claim_id}: {v.verdict}. {v.evidence}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
