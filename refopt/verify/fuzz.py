"""``refopt verify RULE TARGET --fuzz N``: random golden cases, judged like the committed ones,
shrunk to a minimal failing case that is saved in the golden format for replay.

Each draw is a :class:`~refopt.golden.catalogue.CaseSpec` built by :func:`random_spec` from a
seeded generator: 1-3 tensors whose shapes include 0-d and (rarely) 0-size ones, dyadic
params and gradients (exact in float32) scaled by a power of two from 2^-10 to 2^10, 1-16
steps, float32 or float64, and hyperparameters across their valid ranges (lr 1e-4..0.3,
betas from the values public code uses, eps 0/1e-8/1e-6/1e-3, weight decay 0..0.5, every
option of the rule). The golden builder (:func:`refopt.golden.build.generate`) computes the
expected trajectory and the tolerance exactly as for the committed suite, so a fuzz case is
judged by the same model (FORMAT.md section 5).

On the first failure the case is shrunk: fewer steps, fewer tensors, smaller shapes, plain
hyperparameters (weight decay 0, options at their defaults, lr 0.01), each change kept only
if the case still fails, until no change does or :data:`MAX_SHRINKS` candidates were tried.
The minimal case is written as ``<case_id>.json`` + ``.npz`` (the golden format); replay it
with ``refopt verify RULE TARGET --cases-from FILE``.
"""
from __future__ import annotations

import dataclasses
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

#: How many shrink candidates are tried at most after the first failure.
MAX_SHRINKS = 40

#: The rule options a draw varies, with the values it picks from (the first is the default
#: a shrink returns to).
OPTIONS: dict[str, dict[str, tuple]] = {
    "adamx": {"coef_form": ("expm1", "naive"), "weight_decay_mode": ("decoupled", "l2")},
    "adams": {"bias_correction": (False, True)},
    "alphaadam": {"mask_source": ("m_prev", "m_t", "ones"), "strict": (True, False),
                  "alpha_rule": ("count", "count+1", "norm", "soft", "none"),
                  "first_step": ("unmasked", "cautious", "as_is"),
                  "bias_correction": ("hf", "torch")},
    "cadamw": {"scaling": ("count", "count+1"), "bias_correction": ("hf", "torch")},
    "adam": {"bias_correction": ("torch", "hf", "none")},
    "adamw": {"bias_correction": ("torch", "hf", "none")},
}
BETAS = ((0.9, 0.999), (0.9, 0.99), (0.9, 0.95), (0.8, 0.9), (0.95, 0.9999), (0.0, 0.5))
SHAPES = ((), (1,), (3,), (7,), (2, 3), (4, 1), (0,))


@dataclass
class FuzzResult:
    """What ``--fuzz`` found: ``draws`` run, ``failure`` (the first failing draw's CaseResult,
    None if every draw passed), ``minimal`` (its shrunk CaseResult), ``saved`` (the file of the
    minimal case) and ``shrinks`` (candidates tried)."""

    rule: str
    seed: int
    draws: int = 0
    not_run: int = 0
    #: Draws the golden builder refused (its legitimate implementations leave the finite
    #: range there, e.g. AdamX's expm1 form with float32 scalars at beta2 near 1): redrawn.
    unbuildable: int = 0
    failure: Any = None
    minimal: Any = None
    saved: Path | None = None
    shrinks: int = 0
    first_case: Any = None
    minimal_case: Any = None
    #: True once a draw was not expressible with random options but was with the defaults:
    #: the later draws keep every option at its default.
    default_options: bool = False

    @property
    def passed(self) -> bool:
        return self.failure is None and self.draws > self.not_run + self.unbuildable

    def summary(self) -> str:
        if self.failure is None:
            ran = self.draws - self.not_run - self.unbuildable
            return (f"fuzz {self.rule} (seed {self.seed}): {ran} random cases passed"
                    + (f", {self.not_run} not expressible by the port" if self.not_run else "")
                    + (f", {self.unbuildable} draws outside the tolerance model skipped"
                       if self.unbuildable else "")
                    + ("; the rule's options stayed at their defaults (the port takes none "
                       "of them)" if self.default_options else ""))
        m = self.minimal or self.failure
        lines = [f"fuzz {self.rule} (seed {self.seed}): draw {self.draws} failed "
                 f"({self.failure.case_id}); shrunk in {self.shrinks} tries to "
                 f"{m.case_id}: {_describe(self.minimal_case or self.first_case)}"]
        if self.saved is not None:
            lines.append(f"saved: {self.saved} (replay: refopt verify {self.rule} TARGET "
                         f"--cases-from {self.saved})")
        return "\n".join(lines)


def _describe(spec) -> str:
    shapes = ", ".join(str(tuple(np.shape(p))) for p in spec.init)
    opts = {k: v for k, v in spec.hyper.items() if k not in ("lr", "betas", "eps",
                                                            "weight_decay")}
    h = spec.hyper
    common = [f"lr={h['lr']:g}"] + ([f"betas={tuple(h['betas'])}"] if "betas" in h else []) \
        + [f"{k}={h[k]:g}" for k in ("eps", "weight_decay") if k in h]
    return (f"{spec.dtype}, {spec.n_steps} steps, shapes [{shapes}], " + ", ".join(common)
            + (f", {opts}" if opts else ""))


def random_spec(rule: str, rng: np.random.Generator, draw: int, dtype: str | None = None):
    """One random case of ``rule`` (see the module docstring). The draw consumes the same
    random numbers whatever is done with it, so a seed gives the same sequence of cases."""
    from ..golden.catalogue import CaseSpec, standard_inputs

    n_tensors = int(rng.integers(1, 4))
    shapes = [SHAPES[int(rng.integers(0, len(SHAPES) - 1 if rng.random() > 0.1
                                           else len(SHAPES)))] for _ in range(n_tensors)]
    n_steps = int(rng.integers(1, 17))
    init, grads = standard_inputs(int(rng.integers(0, 2 ** 31)), n_steps, shapes=shapes)
    scale = 2.0 ** int(rng.integers(-10, 11))     # a power of two: still exact in float32
    grads = [g * scale for g in grads]
    hyper = {"lr": float(10.0 ** rng.uniform(-4, np.log10(0.3))),
             "betas": BETAS[int(rng.integers(0, len(BETAS)))],
             "eps": (0.0, 1e-8, 1e-6, 1e-3)[int(rng.integers(0, 4))],
             "weight_decay": (0.0, 0.0, 0.01, 0.1, 0.5)[int(rng.integers(0, 5))]}
    for name, values in OPTIONS.get(rule, {}).items():
        hyper[name] = values[int(rng.integers(0, len(values)))]
    dtype = dtype or ("float32", "float64")[int(rng.integers(0, 2))]
    from ..registry import is_builtin, rule_info

    if not is_builtin(rule):  # a user rule: only the common hyperparameters it has
        from ..golden.user_rules import USER_VARIANT, UserCaseSpec, rule_label

        cls = rule_info(rule).cls
        defaults = dict(cls.defaults)
        keep = {"lr"} | {k for k in ("eps", "weight_decay") if k in defaults
                         and defaults[k] is not None}
        if isinstance(defaults.get("betas"), (tuple, list)) and len(defaults["betas"]) == 2:
            keep.add("betas")
        return UserCaseSpec(rule=rule, variant=USER_VARIANT, scenario=f"fuzz-d{draw}",
                            hyper={k: v for k, v in hyper.items() if k in keep}, dtype=dtype,
                            init=init, grads=grads, n_steps=n_steps,
                            comment="random case drawn by refopt verify --fuzz",
                            label=rule_label(cls))
    return CaseSpec(rule=rule, variant="fuzz", scenario=f"d{draw}", hyper=hyper, dtype=dtype,
                    init=init, grads=grads, n_steps=n_steps,
                    comment="random case drawn by refopt verify --fuzz")


def _build(spec, directory: Path):
    """Generate ``spec`` with the golden builder into ``directory`` and load it back."""
    from ..golden import load_suite
    from ..golden.build import generate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # idle options of a random draw are the draw's
        manifest, payload = generate(spec)
    (directory / f"{spec.case_id}.json").write_bytes(manifest)
    (directory / f"{spec.case_id}.npz").write_bytes(payload)
    (case,) = load_suite(pattern=spec.case_id, directory=directory)
    return case


def _plain_options(spec, rule: str):
    return dataclasses.replace(spec, hyper={**spec.hyper, **{
        name: values[0] for name, values in OPTIONS.get(rule, {}).items()}})


def _shrinks(spec, rule: str):
    """Smaller or plainer candidates of ``spec``, most reducing first."""
    n = spec.n_steps
    for steps in sorted({1, n // 2, n - 1} - {0, n}):
        yield dataclasses.replace(spec, n_steps=steps, grads=[g[:steps] for g in spec.grads],
                                  scenario=spec.scenario + "s")
    if len(spec.init) > 1:
        for i in range(len(spec.init)):
            keep = [k for k in range(len(spec.init)) if k != i]
            yield dataclasses.replace(spec, init=[spec.init[k] for k in keep],
                                      grads=[spec.grads[k] for k in keep],
                                      scenario=spec.scenario + "t")
    for i, p in enumerate(spec.init):
        p = np.asarray(p)
        if p.ndim and p.size > 1:
            small = tuple(1 for _ in p.shape)
            yield dataclasses.replace(
                spec, init=[q if k != i else np.asarray(q)[tuple(slice(0, 1) for _ in small)]
                            for k, q in enumerate(spec.init)],
                grads=[g if k != i else np.asarray(g)[(slice(None),) +
                                                      tuple(slice(0, 1) for _ in small)]
                       for k, g in enumerate(spec.grads)], scenario=spec.scenario + "e")
    plain = {"weight_decay": 0.0, "lr": 0.01}
    for name, values in OPTIONS.get(rule, {}).items():
        plain[name] = values[0]
    for name, value in plain.items():
        if spec.hyper.get(name) != value:
            yield dataclasses.replace(spec, hyper={**spec.hyper, name: value},
                                      scenario=spec.scenario + "h")


def fuzz(rule: str, port: Any, n_draws: int, *, seed: int = 0, dtype: str | None = None,
         options: Mapping | None = None, variant: Mapping | None = None,
         adapter: str = "auto", strict: bool = False,
         save_to: str | Path | None = None, progress: Callable | None = None) -> FuzzResult:
    """Draw up to ``n_draws`` random cases of ``rule`` and run each through ``port``; stop at the
    first failure, shrink it and (with ``save_to``, a directory) save the minimal case."""
    from ..registry import canonical_name
    from . import ERROR, FAIL, NOT_RUN, verify_cases

    rule = canonical_name(rule)
    if n_draws < 1:
        raise ValueError(f"--fuzz must be >= 1 draws, got {n_draws}")
    rng = np.random.default_rng(seed)
    result = FuzzResult(rule=rule, seed=seed)

    def judge(spec, directory, with_diagnosis=False):
        from .._validation import HyperparameterWarning

        case = _build(spec, directory)
        with warnings.catch_warnings():   # an idle option of a random draw is the draw's
            warnings.simplefilter("ignore", HyperparameterWarning)
            rep = verify_cases([case], port, options=options, variant=variant, rule=rule,
                               adapter=adapter, strict=strict, diagnose=with_diagnosis)
        return rep.results[0], case

    with tempfile.TemporaryDirectory(prefix="refopt-fuzz-") as tmp:
        work = Path(tmp)
        for draw in range(1, n_draws + 1):
            if progress is not None:
                progress(draw - 1, n_draws, f"draw {draw}")
            spec = random_spec(rule, rng, draw, dtype)
            if result.default_options:
                spec = _plain_options(spec, rule)
            result.draws = draw
            try:
                res, _ = judge(spec, work)
            except AssertionError:   # the builder cannot state a tolerance for this draw
                result.unbuildable += 1
                continue
            if res.status == NOT_RUN and not result.default_options and OPTIONS.get(rule):
                plain = _plain_options(spec, rule)
                again, _ = judge(plain, work)
                if again.status != NOT_RUN:   # the port takes none of the options: keep them
                    result.default_options, spec, res = True, plain, again
            if res.status == NOT_RUN:
                result.not_run += 1
                continue
            if res.status in (FAIL, ERROR):
                result.failure, result.first_case = res, spec
                break
        if progress is not None:
            progress(n_draws, n_draws, "")
        if result.failure is None:
            return result
        best = result.first_case
        improved = True
        while improved and result.shrinks < MAX_SHRINKS:
            improved = False
            for candidate in _shrinks(best, rule):
                if result.shrinks >= MAX_SHRINKS:
                    break
                result.shrinks += 1
                try:
                    res, _ = judge(candidate, work)
                except (ValueError, TypeError, AssertionError):   # the builder refuses it
                    continue
                if res.status in (FAIL, ERROR):
                    best, improved = candidate, True
                    break
        final = dataclasses.replace(best, scenario=f"d{result.draws}min")
        result.minimal_case = final
        result.minimal, _ = judge(final, work, with_diagnosis=True)
        if save_to is not None:
            out = Path(save_to)
            out.mkdir(parents=True, exist_ok=True)
            from .._io import atomic_write_bytes

            for ext in ("json", "npz"):
                atomic_write_bytes(out / f"{final.case_id}.{ext}",
                                   (work / f"{final.case_id}.{ext}").read_bytes())
            result.saved = out / f"{final.case_id}.json"
    return result
