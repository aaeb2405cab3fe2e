"""``refopt verify RULE TARGET --api``: the framework-API check of a torch optimizer.

Besides the numbers (the golden suite), a ``torch.optim.Optimizer`` must behave as PyTorch's own
optimizer tests ask. Each check is one row, ``pass``, ``FAIL`` or ``n/a``, with the reason; all
run on CPU in float64 on three small tensors with fixed pseudo-random gradients, and every
comparison is bit for bit (the two runs compared do the same arithmetic, so any difference is a
bug, not a rounding):

``state_dict``
    a run split by ``state_dict()`` -> ``torch.save`` -> ``torch.load(weights_only=True)`` (the
    safe loader) -> a new optimizer on the restored params -> ``load_state_dict`` equals the
    uninterrupted run (params and the state buffers under refopt's names);
``param_groups``
    two groups with different ``lr`` and ``weight_decay`` equal two optimizers built with each
    group's values (a port that reads its defaults instead of the group fails);
``none_grads``
    ``zero_grad(set_to_none=True)`` leaves every ``.grad`` None; a step with one tensor's grad None
    leaves that tensor (and its step count) untouched and the others as if it were absent; a
    step with no grad at all changes nothing;
``maximize``
    ``maximize=True`` on g equals ``maximize=False`` on -g (n/a without the keyword);
``tensor_lr``
    ``lr=torch.tensor(lr)`` equals ``lr=lr``;
``foreach``
    ``foreach=True`` equals ``foreach=False`` (n/a without the keyword).

The port is configured from the rule's first golden case it can express (as ``refopt verify``
does, with ``--option``/``--variant``), then given the check's own lr and weight decay.
"""
from __future__ import annotations

import inspect
import io
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

PASS, FAIL, NA = "pass", "FAIL", "n/a"
ROWS = ("state_dict", "param_groups", "none_grads", "maximize", "tensor_lr", "foreach")
_SHAPES = ((3, 4), (5,), (2, 1, 3))
_STEPS = 6
_BUFFERS = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer")


@dataclass
class ApiRow:
    check: str
    status: str
    reason: str


@dataclass
class ApiReport:
    port: str
    rule: str
    rows: list

    @property
    def passed(self) -> bool:
        return all(r.status != FAIL for r in self.rows)

    @property
    def exit_status(self) -> int:
        return 0 if self.passed else 1

    def table(self) -> str:
        width = max(len(r.check) for r in self.rows)
        lines = [f"framework API of {self.port} ({self.rule}; torch, CPU, float64, bit for bit)"]
        for r in self.rows:
            lines.append(f"  {r.check:<{width}}  {r.status:<4}  {r.reason}")
        fails = sum(r.status == FAIL for r in self.rows)
        lines.append(f"API: {sum(r.status == PASS for r in self.rows)} pass, {fails} FAIL, "
                     f"{sum(r.status == NA for r in self.rows)} n/a")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"port": self.port, "rule": self.rule,
                "rows": [{"check": r.check, "status": r.status, "reason": r.reason}
                         for r in self.rows]}


class _Fail(Exception):
    pass


def _accepts(cls, name: str) -> bool:
    try:
        params = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return False
    return name in params


def _grads(seed: int, n_steps: int = _STEPS) -> list:
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s) for s in _SHAPES] for _ in range(n_steps)]


class _Harness:
    """Builds the port with the case's kwargs and runs it on given gradient streams."""

    def __init__(self, torch, cls, kwargs: dict, unnamed: list = (), name: str = ""):
        self.torch, self.cls, self.kwargs = torch, cls, dict(kwargs)
        self.unnamed, self.name = list(unnamed), name or cls.__qualname__
        rng = np.random.default_rng(12345)
        self.init = [rng.standard_normal(s) for s in _SHAPES]

    def tensors(self, values=None):
        return [self.torch.tensor(np.array(v, copy=True)) for v in (values or self.init)]

    def build(self, params, **over):
        """Constructed as ``refopt verify`` constructs it: keywords that reach only its
        ``**kwargs`` may be refused, and the common hyperparameters also go into every param
        group that does not hold them (ports that read them from the groups only)."""
        from .adapters import COMMON, construct

        kwargs = {**self.kwargs, **over}
        opt = construct(self.cls, (params,), kwargs, self.unnamed, self.name)
        for group in opt.param_groups:
            for key in COMMON:
                if key in kwargs:
                    group.setdefault(key, kwargs[key])
        return opt

    def run(self, opt, params, grads, negate=False):
        for step in grads:
            for p, g in zip(params, step):
                p.grad = None if g is None else self.torch.tensor(-g if negate else g)
            opt.step()
        return params


def _same(a, b, what: str) -> None:
    for i, (x, y) in enumerate(zip(a, b)):
        x, y = np.asarray(x), np.asarray(y)
        if x.shape != y.shape or not np.array_equal(x, y, equal_nan=True):
            d = np.max(np.abs(x.astype(np.float64) - y.astype(np.float64))) if x.shape == \
                y.shape else "shape"
            raise _Fail(f"{what}: tensor {i} differs (max |diff| {d})")


def _np(params):
    return [p.detach().numpy().copy() for p in params]


def _buffers(opt, params) -> dict:
    out = {}
    for name in _BUFFERS:
        vals = [opt.state.get(p, {}).get(name) for p in params]
        if all(v is not None and hasattr(v, "detach") for v in vals):
            out[name] = [v.detach().numpy().copy() for v in vals]
    return out


def _check_state_dict(h: _Harness) -> str:
    torch = h.torch
    grads, k = _grads(1), _STEPS // 2
    pa = h.tensors()
    oa = h.build(pa)
    h.run(oa, pa, grads)
    pb = h.tensors()
    ob = h.build(pb)
    h.run(ob, pb, grads[:k])
    buf = io.BytesIO()
    torch.save({"params": [p.detach() for p in pb], "optimizer": ob.state_dict()}, buf)
    buf.seek(0)
    try:
        ckpt = torch.load(buf, weights_only=True)
    except Exception as exc:
        raise _Fail(f"torch.load(weights_only=True) refuses the state_dict: "
                    f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None
    pc = [p.clone() for p in ckpt["params"]]
    oc = h.build(pc)
    oc.load_state_dict(ckpt["optimizer"])
    h.run(oc, pc, grads[k:])
    _same(_np(pc), _np(pa), f"params after a split at step {k}")
    ba, bc = _buffers(oa, pa), _buffers(oc, pc)
    for name in ba:
        if name not in bc:
            raise _Fail(f"state buffer {name!r} missing after load_state_dict")
        _same(bc[name], ba[name], f"state {name!r} after a split at step {k}")
    names = ", ".join(ba) or "no refopt-named buffers"
    return (f"split at step {k} of {_STEPS} through torch.save/torch.load(weights_only=True) "
            f"equals the uninterrupted run (params; {names})")


def _check_param_groups(h: _Harness) -> str:
    has_wd = "weight_decay" in h.kwargs or _accepts(h.cls, "weight_decay")
    settings = [{"lr": 1e-2, "weight_decay": 0.0}, {"lr": 3e-2, "weight_decay": 0.1}]
    if not has_wd:
        settings = [{"lr": s["lr"]} for s in settings]
    grads = _grads(2)
    p = h.tensors()
    groups = [{"params": p[:2], **settings[0]}, {"params": p[2:], **settings[1]}]
    opt = h.build(groups)
    h.run(opt, p, grads)
    q1, q2 = h.tensors()[:2], h.tensors()[2:]
    h.run(h.build(q1, **settings[0]), q1, [g[:2] for g in grads])
    h.run(h.build(q2, **settings[1]), q2, [g[2:] for g in grads])
    _same(_np(p), _np(q1 + q2), "two groups vs one optimizer per group (the groups' lr or "
          "weight_decay ignored, or a statistic shared across groups)")
    return ("two groups (lr 1e-2/3e-2" + (", weight_decay 0/0.1" if has_wd else "") +
            ") equal one optimizer per group" + ("" if has_wd else "; no weight_decay keyword"))


def _check_none_grads(h: _Harness) -> str:
    grads = _grads(3, 3)
    p = h.tensors()
    opt = h.build(p)
    h.run(opt, p, grads[:1])
    opt.zero_grad(set_to_none=True)
    if any(x.grad is not None for x in p):
        raise _Fail("zero_grad(set_to_none=True) left a .grad that is not None")
    before = _np(p)
    try:
        opt.step()                                     # no grad anywhere: nothing may change
    except Exception as exc:
        raise _Fail(f"a step with every grad None raised {type(exc).__name__}: "
                    f"{(str(exc).splitlines() or [''])[0][:200]}") from None
    _same(_np(p), before, "a step with every grad None")
    step_before = opt.state.get(p[1], {}).get("step")
    step_before = None if step_before is None else float(step_before)
    h.run(opt, p, [[grads[1][0], None, grads[1][2]]])
    _same(_np(p)[1:2], before[1:2], "the tensor whose grad is None")
    step_after = opt.state.get(p[1], {}).get("step")
    if step_before is not None and float(step_after) != step_before:
        raise _Fail(f"the step count of the tensor whose grad is None advanced "
                    f"({step_before:g} -> {float(step_after):g})")
    h.run(opt, p, grads[2:])
    # Reference runs: tensors 0 and 2 saw 3 steps, tensor 1 only steps 1 and 3.
    r = h.tensors()
    ro = h.build([r[0], r[2]])
    h.run(ro, [r[0], r[2]], [[g[0], g[2]] for g in grads])
    r1 = h.tensors()[1:2]
    h.run(h.build(r1), r1, [[grads[0][1]], [grads[2][1]]])
    _same(_np(p), [_np(r)[0], _np(r1)[0], _np(r)[2]], "after a step with one grad None")
    return ("zero_grad(set_to_none=True) clears every grad; an all-None step changes nothing; "
            "a None grad leaves its tensor and step count alone and the others as if it were "
            "absent")


def _check_maximize(h: _Harness) -> str:
    if not _accepts(h.cls, "maximize"):
        return NA, "the constructor takes no maximize keyword"
    grads = _grads(4)
    p = h.tensors()
    h.run(h.build(p, maximize=True), p, grads)
    q = h.tensors()
    h.run(h.build(q, maximize=False), q, grads, negate=True)
    _same(_np(p), _np(q), "maximize=True on g vs maximize=False on -g")
    return "maximize=True on g equals maximize=False on -g"


def _check_tensor_lr(h: _Harness) -> str:
    torch = h.torch
    lr = 1e-2
    grads = _grads(5)
    q = h.tensors()
    h.run(h.build(q, lr=lr), q, grads)
    p = h.tensors()
    try:
        opt = h.build(p, lr=torch.tensor(lr, dtype=torch.float64))
        h.run(opt, p, grads)
    except Exception as exc:
        raise _Fail(f"lr=torch.tensor({lr}) raised {type(exc).__name__}: "
                    f"{str(exc).splitlines()[0][:200]}") from None
    _same(_np(p), _np(q), "lr=torch.tensor(0.01) vs lr=0.01")
    return "lr=torch.tensor(0.01) (float64) equals lr=0.01"


def _check_foreach(h: _Harness) -> str:
    if not _accepts(h.cls, "foreach"):
        return NA, "the constructor takes no foreach keyword"
    grads = _grads(6)
    grads[2][1] = None                                  # a None grad inside the list too
    p = h.tensors()
    h.run(h.build(p, foreach=True), p, grads)
    q = h.tensors()
    h.run(h.build(q, foreach=False), q, grads)
    _same(_np(p), _np(q), "foreach=True vs foreach=False")
    return "foreach=True equals foreach=False (a None grad inside the list included)"


_CHECKS: dict[str, Callable] = {"state_dict": _check_state_dict,
                                "param_groups": _check_param_groups,
                                "none_grads": _check_none_grads, "maximize": _check_maximize,
                                "tensor_lr": _check_tensor_lr, "foreach": _check_foreach}


def _configure(rule: str, cls, options, variant, directory=None) -> tuple[dict, str, list]:
    """The kwargs of the first golden case the port can be built for (fewest keywords that
    reach only its ``**kwargs`` first, then the ``defaults`` cases), its id, and those
    keywords."""
    import torch

    from . import load_cases
    from .adapters import NotApplicable, TorchOptimizerPort, construct

    port = TorchOptimizerPort(cls, options, variant=variant)
    configured, reasons = [], []
    for case in (c for c in load_cases(rule, dtype="float64", directory=directory)
                 if c.result == "valid"):
        try:
            kwargs = port.configure(case)
        except NotApplicable as exc:
            reasons.append(str(exc))
            continue
        configured.append((len(port.unnamed(case)), "defaults" not in case.case_id,
                           case.case_id, kwargs, port.unnamed(case)))
    for *_, case_id, kwargs, unnamed in sorted(configured, key=lambda c: c[:3]):
        try:
            construct(cls, ([torch.zeros(1, dtype=torch.float64)],), kwargs, unnamed, port.name)
        except NotApplicable as exc:
            reasons.append(str(exc))
            continue
        except Exception:    # the port's own error: the rows will show it
            pass
        return kwargs, case_id, unnamed
    raise ValueError(f"the port can express no golden case of {rule}"
                     + (f" ({reasons[0]})" if reasons else ""))


def check_api(rule: str, cls: Any, *, options: Mapping | None = None,
              variant: Mapping | None = None, port_name: str | None = None,
              directory: Any = None) -> ApiReport:
    """The rows of the framework-API check for the torch optimizer class ``cls``; the port is
    configured from a golden case of ``rule`` (in the suite at ``directory``: needed for a user
    rule)."""
    import torch

    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise TypeError(f"--api checks a torch.optim.Optimizer subclass, got "
                        f"{type(cls).__name__ if not isinstance(cls, type) else cls.__name__}")
    name = port_name or f"{cls.__module__}:{cls.__qualname__}"
    kwargs, case_id, unnamed = _configure(rule, cls, options, variant, directory)
    kwargs.pop("lr", None)
    kwargs.pop("learning_rate", None)
    kwargs["lr"] = 1e-2
    if "weight_decay" in kwargs:
        kwargs["weight_decay"] = 0.05
    h = _Harness(torch, cls, kwargs, unnamed, name)
    rows = []
    for check, fn in _CHECKS.items():
        try:
            out = fn(h)
            status, reason = out if isinstance(out, tuple) else (PASS, out)
        except _Fail as exc:
            status, reason = FAIL, str(exc)
        except Exception as exc:
            first = (str(exc).splitlines() or [""])[0][:200]
            status, reason = FAIL, f"raised {type(exc).__name__}: {first}"
        rows.append(ApiRow(check, status, reason))
    return ApiReport(name, f"{rule}, configured as {case_id} with lr=1e-2", rows)


def register_api(parser, run_verify: Callable) -> None:
    """Add ``--api`` to ``refopt verify``: after the numbers, the framework-API rows."""
    parser.add_argument("--api", action="store_true",
                        help="torch ports: also check the framework API (state_dict split run "
                             "through torch.load(weights_only=True), param groups, None grads, "
                             "maximize, tensor lr, foreach), one row each")

    def run(args) -> int:
        import sys

        status = run_verify(args)
        if not getattr(args, "api", False) or status == 2:
            return status
        from .cli import load_target

        try:
            target = load_target(args.target)
            report = check_api(args.rule, target, options=dict(args.option),
                               variant=dict(args.variant), port_name=args.target,
                               directory=args.suite)
        except (ImportError, TypeError, ValueError) as exc:
            print(f"refopt verify --api: {exc}", file=sys.stderr)
            return 2
        print()
        print(report.table())
        return max(status, report.exit_status)

    parser.set_defaults(func=run)
