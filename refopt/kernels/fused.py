r"""The backend-independent half of a fused rule: validation, policies, scalars and alpha.

A fast backend (numba on CPU, CuPy on GPU) supplies a small *kernel namespace* ``K``: functions
over flat, C-contiguous 1-D arrays that do one rule's whole element-wise update in one pass,
reading ``param, grad`` and the state and writing the new ``param`` and state to *output* arrays
(which may be the inputs themselves: the in-place step). :class:`FusedRule` wraps the float64
NumPy reference rule and keeps everything that is not element-wise in Python, shared by both
backends:

* validation, the non-finite policy and ``None`` gradients, exactly as
  :meth:`refopt.rules._base.Rule.step_with_info`;
* the per-step scalars: the reference's own ``rule.scalars(t, lr)`` rounded once to the tensor's
  dtype (the kernels contain no numeric literals, so float32 math stays float32);
* AlphaAdam's and C-AdamW's per-tensor strength: an integer count of kept coordinates (exact,
  independent of the thread partition) from a short read-only pass over ``m`` and ``g`` only
  (8 B per float32 element; ``norm`` also reads ``v``), then alpha by the reference's own
  :func:`~refopt.rules.alphaadam.alpha_for`, then the fused update. The count pass is skipped
  where alpha is known without it (all-ones mask, or ``alpha_rule="none"`` when no info is asked).

Kernel namespace (every array flat; scalars in the array dtype; ``zero`` is that dtype's 0, so
that kernels hold no literals). An update kernel takes ``ins`` (``[p, g, *state]``), ``outs``
(``[p_o, *state_o]``, or ``None`` to write back into ``p`` and the state: the in-place step; a
separate in-place kernel, because a compiler that cannot prove outputs and inputs disjoint or
identical falls back to scalar code) and then the scalars:

=====================  ==========================================================================
``count_nonfinite(g)``  number of NaN/inf in g (the default pre-pass; CuPy and numba override
                       ``_nonfinite_tensors`` with one launch per dtype instead)
``adamx(...)``          AdamX/AdamNX, ``round_mode`` 0 none, 1 float32, 2 float16, 3 bfloat16
``adams(...)``          AdamS, both forms (``bc1`` = 1 in the paper form)
``adam(...)``           Adam (L2) and AdamW (decoupled), all three bias corrections
``adax(...)``           AdaX / AdaXW
``sgdm(...)``           heavy-ball SGD, ``first`` selects b_1 = g_1
``count_kept(...)``     k = #{score > 0} (strict) or #{score >= 0}, score = m_prev g or m_t g
``norm_sums(...)``      k, sum(u^2), sum(phi u^2) in float64 (blocked: independent of threads)
``masked_adam(...)``    AlphaAdam's update given psi for kept and dropped coordinates
``cautious_adam(...)``  C-AdamW's update given the mask's two values (hf or torch eps)
=====================  ==========================================================================
"""
from __future__ import annotations

from collections import Counter

import functools
from typing import Any

import numpy as np

from .. import _validation as V
from ..rules._base import Rule, cast_scalars_checked, normalise_steps
from ..rules._complex import has_complex, step_as_pairs
from ..rules.alphaadam import alpha_for

# AdamX's state_dtype -> the kernels' round_mode (see round_mode_for).
ROUND_MODES = {"float32": 1, "float16": 2, "bfloat16": 3}

# mask_mode of masked_adam / count_kept / norm_sums: which score decides the mask.
MASK_ALL, MASK_M_PREV, MASK_M_NEW = 0, 1, 2


def cast_scalars(rule: Rule, t: int, lr: float, dtype: np.dtype) -> dict[str, Any]:
    """``rule.scalars(t, lr)`` with every float rounded once to ``dtype``, as the reference does
    (and checked as it does: :func:`refopt.rules._base.cast_scalars_checked`)."""
    return cast_scalars_checked(rule, t, lr, dtype)


@functools.lru_cache(maxsize=None)
def round_mode_for(state_dtype: str | None, dtype: np.dtype) -> int:
    """The kernel round mode that reproduces ``round_to_bits(x, state_dtype)`` for x of ``dtype``.

    Rounding a float32 through float64 and back is the identity, as is rounding to its own dtype.
    """
    if state_dtype is None or state_dtype == np.dtype(dtype).name or state_dtype == "float64":
        return 0
    return ROUND_MODES[state_dtype]


class FusedRule:
    """A reference rule run by fused kernels; same API as the rule, plus in-place steps.

    Parameters
    ----------
    reference : Rule
        The NumPy reference rule (its hyperparameters, scalars and state layout are reused).

    Notes
    -----
    ``step``/``step_with_info`` return new arrays and never mutate their inputs, as the
    reference. ``step_``/``step_with_info_`` update ``params`` and the state buffers **in place**
    (each must be C-contiguous and writeable) and return the new state (whose step counts are
    new tuples; its buffers are the same arrays): one pass over memory, no allocation, the form
    to use for large arrays. Under ``nonfinite="raise"``/``"skip"`` an in-place step first
    runs a read-only pass over the gradients, so that a bad step leaves everything untouched;
    an out-of-place step of a backend whose kernels count non-finite gradients as they go
    (``counts_nonfinite``: numba) judges after its pass instead, its inputs being untouched
    anyway. ``"propagate"`` checks nothing.
    """

    backend = "fused"
    #: Whether the out-of-place kernels return their count of non-finite gradients.
    counts_nonfinite = False

    def __init__(self, reference: Rule, kernels: Any) -> None:
        if reference.name not in _PLANS:
            raise ValueError(f"no fused kernels for rule {reference.name!r}")
        self.reference = reference
        self.K = kernels
        self._plan = _PLANS[reference.name]

    # -- the reference's attributes -------------------------------------------------------
    @property
    def name(self) -> str:
        return self.reference.name

    @property
    def hyper(self):
        return self.reference.hyper

    @property
    def buffers(self) -> tuple[str, ...]:
        return self.reference.buffers

    @property
    def state_type(self) -> type:
        return self.reference.state_type

    @property
    def defaults(self):
        return self.reference.defaults

    def scalars(self, t: int, lr: float) -> dict[str, float]:
        """The reference's float64 per-step scalars (the kernels receive them cast)."""
        return self.reference.scalars(t, lr)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reference!r})"

    # -- backend hooks ----------------------------------------------------------------------
    def _validate(self, params, grads, state):
        """Return (params, grads) as lists of the backend's arrays; raise as the reference does."""
        raise NotImplementedError

    def _validate_fast(self, params, grads, state):
        """(params, grads) as :meth:`_validate` returns them where a quick test finds the call
        plainly valid (and real: no complex tensor, step counts that are Python ints), else None
        (then :meth:`_validate` runs). The default has no quick test."""
        return None

    def _flat(self, a):
        """A flat C-contiguous view (or copy) of ``a``."""
        raise NotImplementedError

    def _address(self, a) -> int:
        """The address of ``a``'s first element."""
        raise NotImplementedError

    def _memory_owner(self, a):
        """A key equal for arrays that may share memory (their allocation); 0: unknown."""
        return 0

    def _owner_keys(self, arrays) -> list:
        """``[self._memory_owner(a) for a in arrays]`` (a backend may compute it faster)."""
        owner = self._memory_owner
        return [owner(a) for a in arrays]

    def _shares_memory(self, a, b) -> bool:
        """Whether ``a`` and ``b``, whose address ranges overlap, share an element's memory."""
        return True

    def _contiguous(self, a):
        """``a`` itself if C-contiguous, else a C-contiguous copy."""
        raise NotImplementedError

    def _empty_like(self, a):
        raise NotImplementedError

    def _new_call(self) -> None:
        """Called once before the outputs of an out-of-place step are allocated."""

    def _ones_mask(self, shape):
        raise NotImplementedError

    def _empty_mask(self, shape):
        raise NotImplementedError

    def _no_mask(self):
        """A dummy mask output (length 0) for kernels called without ``write_mask``."""
        raise NotImplementedError

    def _batched(self, params, grads, state, lr, scalars_for) -> set[int]:
        """In-place steps of several tensors in one launch; returns the indices it stepped.

        ``scalars_for(t, dtype)`` gives the cast scalars. The default batches nothing.
        """
        return set()

    def _batched_out(self, params, grads, state, lr, scalars_for, outputs):
        """Out-of-place steps of several tensors at once, into ``outputs`` (the lists
        ``[params, *buffers]`` of the new state, indexed by tensor): returns (the set of indices
        it stepped, the list of those whose kernels counted non-finite gradients). Called after
        :meth:`_new_call`. The default batches nothing."""
        return set(), []

    # -- public API -----------------------------------------------------------------------
    def init(self, params):
        return self.reference.init(params)

    def step(self, params, grads, state, *, lr: float | None = None):
        new_params, new_state, _ = self._run(params, grads, state, lr, inplace=False,
                                             want_info=False)
        return new_params, new_state

    def step_with_info(self, params, grads, state, *, lr: float | None = None):
        return self._run(params, grads, state, lr, inplace=False, want_info=True)

    def step_(self, params, grads, state, *, lr: float | None = None):
        """In-place step: mutates ``params`` and the state buffers; returns the new state."""
        _, new_state, _ = self._run(params, grads, state, lr, inplace=True, want_info=False)
        return new_state

    def step_with_info_(self, params, grads, state, *, lr: float | None = None):
        """In-place step that also returns the per-tensor info: ``(state, info)``."""
        _, new_state, info = self._run(params, grads, state, lr, inplace=True, want_info=True)
        return new_state, info

    # -- the step ---------------------------------------------------------------------------
    def _run(self, params, grads, state, lr, *, inplace: bool, want_info: bool):
        plain = self._validate_fast(params, grads, state)
        if plain is not None:  # real tensors, Python int step counts: nothing to normalise
            params, grads = plain
        else:
            if inplace and isinstance(params, (list, tuple)):
                for i, p in enumerate(params):
                    if isinstance(p, np.generic):  # validation would make a fresh 0-d array
                        raise TypeError(f"params[{i}] is a NumPy scalar ({type(p).__name__}), "
                                        f"which cannot be updated in place; pass a 0-d array "
                                        f"(np.asarray(x)) or use step()")
            params, grads = self._validate(params, grads, state)
            state = normalise_steps(state)  # NumPy counters would wrap in t + 1: Python ints
        lr = self.hyper["lr"] if lr is None else V.finite_nonneg("lr", lr)
        if inplace:
            self._check_inplace(params, grads, state)
        if plain is None and has_complex(params):  # (real, imag) pairs, as the reference
            def run_real(p, g, s):
                return self._run(p, g, s, lr, inplace=inplace, want_info=want_info)

            return step_as_pairs(run_real, params, grads, state, self.buffers, self._contiguous,
                                 inplace=inplace)
        policy = self.hyper["nonfinite"]
        # Out of place the inputs stay untouched whatever the kernels write, so where the
        # kernels count non-finite gradients as they read them (``counts_nonfinite``) the
        # verdict comes after the pass and the read-only pass over g is saved.
        check_after = policy != "propagate" and not inplace and self.counts_nonfinite
        if policy != "propagate" and not check_after:
            bad = self._nonfinite_tensors(grads)
            if bad:
                return self._bad_step(bad, params, state)

        if not inplace:
            self._new_call()
        sc_cache: dict[tuple, dict] = {}
        reference = self.reference

        def scalars_for(t, dtype):
            sc = sc_cache.get((t, dtype))
            if sc is None:
                sc = sc_cache[(t, dtype)] = cast_scalars(reference, t, lr, dtype)
                sc["zero"] = np.dtype(dtype).type(0)  # the kernels' zero, in the dtype
            return sc

        old_steps = state.step
        # Checked before any kernel runs, each (t, dtype) once, in the order of the tensors.
        for t, dtype in dict.fromkeys([(t_old + 1, p.dtype) for t_old, p, g
                                       in zip(old_steps, params, grads) if g is not None]):
            scalars_for(t, dtype)
        buffers = self.buffers
        state_buffers = {b: getattr(state, b) for b in buffers}
        if inplace and not want_info:
            # step_: the tensors under the backend's multi-tensor path first, then a plan each
            # for the rest; the state keeps its buffers (updated in place), with new counts.
            done = self._batched(params, grads, state, lr, scalars_for)
            steps = list(old_steps)
            for i, (p, g) in enumerate(zip(params, grads)):
                if g is None:
                    continue
                t = steps[i] = old_steps[i] + 1
                if i not in done:
                    old = {b: arrays[i] for b, arrays in state_buffers.items()}
                    self._plan(self, p, g, old, p, old, t, scalars_for(t, p.dtype), False)
            new_state = self.state_type(step=tuple(steps), **state_buffers)
            return list(params), new_state, {"skipped": False,
                                             "tensors": [{} for _ in params]}
        if not inplace and not want_info:
            return self._run_out(params, grads, state, lr, scalars_for, state_buffers, check_after)
        new_params, steps, infos, bad_after = [], [], [], []
        new_bufs: dict[str, list] = {b: [] for b in buffers}
        keep_buffers = inplace  # in place the state's buffer tuples are the new state's
        for i, (p, g) in enumerate(zip(params, grads)):
            t_old = old_steps[i]
            if g is None:  # not stepped
                new_params.append(p)
                steps.append(t_old)
                infos.append({})
                if not keep_buffers:
                    for b, arrays in state_buffers.items():
                        new_bufs[b].append(arrays[i])
                continue
            t = t_old + 1
            old = {b: arrays[i] for b, arrays in state_buffers.items()}
            if inplace:
                p_out, out = p, old
            else:
                p_out = self._empty_like(p)
                out = {b: self._empty_like(old[b]) for b in buffers}
            info, n_bad = self._plan(self, p, g, old, p_out, out, t, scalars_for(t, p.dtype),
                                     want_info)
            if check_after:
                if n_bad is None:  # this kernel did not count: look at g
                    n_bad = self.K.count_nonfinite(self._flat(g))
                if n_bad:
                    bad_after.append(i)
            new_params.append(p_out)
            steps.append(t)
            infos.append(info)
            if not keep_buffers:
                for b in buffers:
                    new_bufs[b].append(out[b])
        if bad_after:
            # Drop the computed outputs first: a caught exception's traceback keeps this frame.
            new_params.clear()
            new_bufs.clear()
            infos.clear()
            p_out = out = info = None  # noqa: F841
            return self._bad_step(bad_after, params, state)
        if keep_buffers:
            new_state = self.state_type(step=tuple(steps), **state_buffers)
        else:
            new_state = self.state_type(step=tuple(steps),
                                        **{b: tuple(v) for b, v in new_bufs.items()})
        return new_params, new_state, {"skipped": False, "tensors": infos}

    def _run_out(self, params, grads, state, lr, scalars_for, state_buffers, check_after):
        """``step``: the backend's multi-tensor path (:meth:`_batched_out`) first, then a plan
        each, into new arrays, for the rest; no info."""
        buffers = self.buffers
        new_params = list(params)
        new_lists = [list(state_buffers[b]) for b in buffers]
        stepped, bad_after = self._batched_out(params, grads, state, lr, scalars_for,
                                               [new_params] + new_lists)
        old_steps = state.step
        steps = list(old_steps)
        for i, (p, g) in enumerate(zip(params, grads)):
            if g is None:
                continue
            t = steps[i] = old_steps[i] + 1
            if i in stepped:
                continue
            old = {b: arrays[i] for b, arrays in state_buffers.items()}
            p_out = self._empty_like(p)
            out = {b: self._empty_like(old[b]) for b in buffers}
            _, n_bad = self._plan(self, p, g, old, p_out, out, t, scalars_for(t, p.dtype), False)
            if check_after:
                if n_bad is None:  # this kernel did not count: look at g
                    n_bad = self.K.count_nonfinite(self._flat(g))
                if n_bad:
                    bad_after.append(i)
            new_params[i] = p_out
            for k, b in enumerate(buffers):
                new_lists[k][i] = out[b]
        if check_after and bad_after:
            # Drop the computed outputs first: a caught exception's traceback keeps this frame.
            new_params.clear()
            new_lists.clear()
            p_out = out = None  # noqa: F841
            return self._bad_step(sorted(bad_after), params, state)
        new_state = self.state_type(step=tuple(steps),
                                    **{b: tuple(v) for b, v in zip(buffers, new_lists)})
        return new_params, new_state, {"skipped": False, "tensors": [{} for _ in params]}

    def _nonfinite_tensors(self, grads) -> list[int]:
        """Indices of the gradients holding NaN or inf (a read-only pass over each)."""
        return [i for i, g in enumerate(grads)
                if g is not None and self.K.count_nonfinite(self._flat(g)) > 0]

    def _bad_step(self, bad: list[int], params, state):
        """A step with non-finite gradients in tensors ``bad``: raise, or skip it whole."""
        if self.hyper["nonfinite"] == "raise":
            raise FloatingPointError(
                f"grads[{bad[0]}] contains NaN or inf (nonfinite='raise'); pass "
                f"nonfinite='skip' to skip such steps or 'propagate' to compute anyway")
        return list(params), state, {"skipped": True, "tensors": [{} for _ in params]}

    def _check_inplace(self, params, grads, state) -> None:
        # (dtypes and shapes were checked by ``_validate``.) A scan without labels first (it
        # runs on every step); the error names the first refused array, tensors in order.
        bufs = [getattr(state, b) for b in self.buffers]
        refused = False
        for arrays in [params] + bufs:
            for a, g in zip(arrays, grads):
                if g is not None:
                    flags = a.flags
                    if not (flags.c_contiguous and getattr(flags, "writeable", True)):
                        refused = True
                        break
            if refused:
                break
        if refused:
            for i, (p, g) in enumerate(zip(params, grads)):
                if g is None:
                    continue
                for label, a in [("params", p)] + [(f"state.{b}", getattr(state, b)[i])
                                                   for b in self.buffers]:
                    if _refused(a.flags):
                        raise ValueError(f"{label}[{i}] must be C-contiguous and writeable for "
                                         f"an in-place step; use step() or np.ascontiguousarray")
        self._check_overlap(params, grads, state)

    def _check_overlap(self, params, grads, state) -> None:
        """Refuse an in-place step whose arrays overlap where that changes the result.

        Written: ``params[i]`` and the state buffers of every tensor with a gradient. Each of
        them must share no memory with any other array of the call (another written array, a
        gradient, or an array of a tensor without a gradient, which must stay unchanged).
        Allowed: ``grads[i]`` that is the very same view (address, shape, strides) as a written
        array of the same tensor i, as ``step_([x], [x], state)``: every kernel reads an
        element's inputs before it writes that element, so the result is the reference's.

        Cost: arrays of different memory owners (:meth:`_memory_owner`) are disjoint; only
        arrays of one owner (views into one buffer, or one array passed twice) have their
        address ranges compared, and only overlapping ranges of a strided gradient are settled
        by :meth:`_shares_memory`.
        """
        buffers = [getattr(state, b) for b in self.buffers]
        arrays = list(params)
        for bufs in buffers:
            arrays += bufs
        arrays += [g for g in grads if g is not None]
        keys = self._owner_keys(arrays)
        if len(set(keys)) == len(keys):
            return  # every array its own allocation (the common case): nothing can overlap
        # (Empty arrays, which cannot overlap anything, were counted above: a key they repeat
        # only sends the call on to the checks below, which leave them out.)
        arrays = [a for a in arrays if a.size]
        keys = self._owner_keys(arrays)
        if len(set(keys)) == len(keys):
            return
        # Arrays of one owner laid out side by side (the views of one pooled output of step(),
        # which a later step_ is given) cannot overlap either: one sorted pass over their byte
        # ranges settles it before any labelled entry is built.
        repeated = {k for k, n in Counter(keys).items() if n > 1}
        shared = [a for a, k in zip(arrays, keys) if k in repeated]
        if all(a.flags.c_contiguous for a in shared):
            spans = sorted((self._address(a), a.size * a.dtype.itemsize) for a in shared)
            if all(start + n <= nxt for (start, n), (nxt, _) in zip(spans, spans[1:])):
                return
        entries = []  # (label, tensor index, array, written)
        for i, (p, g) in enumerate(zip(params, grads)):
            stepped = g is not None
            entries.append((f"params[{i}]", i, p, stepped))
            entries.extend((f"state.{b}[{i}]", i, getattr(state, b)[i], stepped)
                           for b in self.buffers)
            if stepped:
                entries.append((f"grads[{i}]", i, g, False))
        groups: dict = {}
        for e in entries:
            if e[2].size:
                groups.setdefault(self._memory_owner(e[2]), []).append(e)
        for group in groups.values():
            if len(group) > 1 and any(e[3] for e in group):
                self._check_group(group)

    def _check_group(self, group) -> None:
        spans = []
        for label, i, a, written in group:
            start, strides = self._address(a), _strides(a)
            lo = start + sum((n - 1) * st for n, st in zip(a.shape, strides) if st < 0)
            hi = start + sum((n - 1) * st for n, st in zip(a.shape, strides) if st > 0)
            spans.append((lo, hi + a.dtype.itemsize, start, label, i, a, written))
        spans.sort(key=lambda x: x[0])
        for k, x in enumerate(spans):
            for y in spans[k + 1:]:
                if y[0] >= x[1]:
                    break  # sorted by start: no later span reaches into x
                if not (x[6] or y[6]):
                    continue  # two arrays that are only read
                if self._same_view(x, y):
                    continue
                a, b = x[5], y[5]
                contiguous = a.flags.c_contiguous and b.flags.c_contiguous
                if contiguous or self._shares_memory(a, b):
                    first, second = sorted((x, y), key=_label_order)
                    raise ValueError(
                        f"{first[3]} and {second[3]} share memory; an in-place step writes "
                        f"one while it reads the other, which gives wrong results: pass "
                        f"separate arrays (copies) or use step()")

    @staticmethod
    def _same_view(x, y) -> bool:
        """A gradient that is exactly a written array of its own tensor (see _check_overlap)."""
        (_, _, sx, lx, ix, ax, wx), (_, _, sy, ly, iy, ay, wy) = x, y
        grad_and_written = (lx.startswith("grads[") and wy) or (ly.startswith("grads[") and wx)
        return (grad_and_written and ix == iy and sx == sy and ax.shape == ay.shape
                and _strides(ax) == _strides(ay))


def _refused(flags) -> bool:
    return not (flags.c_contiguous and getattr(flags, "writeable", True))


def _strides(a) -> tuple[int, ...]:
    """``a.strides``, or the C-contiguous strides for an array type without them."""
    strides = getattr(a, "strides", None)
    if strides is not None:
        return tuple(strides)
    out, step = [], a.dtype.itemsize
    for n in reversed(a.shape):
        out.append(step)
        step *= n
    return tuple(reversed(out))


def _label_order(span) -> tuple:
    """Error messages name params before state buffers before grads, lower tensors first."""
    label = span[3]
    return (span[4], 0 if label.startswith("params") else 2 if label.startswith("grads") else 1,
            label)


# -- per-rule plans: scalars and flags -> one (or, for masked rules, two) kernel calls ------

def _flats(rule, p, g, old, p_out, out, names):
    """(ins, outs) of an update kernel; outs is None when the step is in place."""
    f = rule._flat
    ins = [f(p), f(g)] + [f(old[b]) for b in names]
    if p_out is p:
        return ins, None
    return ins, [f(p_out)] + [f(out[b]) for b in names]


def _plan_adamx(rule, p, g, old, p_out, out, t, sc, want_info):
    h = rule.hyper
    ins, outs = _flats(rule, p, g, old, p_out, out, ("exp_avg", "exp_avg_sq"))
    bad = rule.K.adamx(ins, outs, h["weight_decay_mode"] == "l2", sc["decay"], sc["l2"],
                       sc["beta1_t"], sc["one_minus_beta1_t"], sc["beta2_t"],
                       sc["one_minus_beta2_t"], sc["lr"], sc["eps"], sc["zero"],
                       round_mode_for(h["state_dtype"], p.dtype))
    return {}, bad


def _plan_adams(rule, p, g, old, p_out, out, t, sc, want_info):
    ins, outs = _flats(rule, p, g, old, p_out, out, ("exp_avg",))
    bad = rule.K.adams(ins, outs, sc["decay"], sc["beta1"], sc["one_minus_beta1"], sc["beta2"],
                       sc["one_minus_beta2"], sc["bias_correction1"], sc["lr"], sc["eps"],
                       sc["zero"])
    return {}, bad


def _plan_adam(rule, p, g, old, p_out, out, t, sc, want_info):
    ins, outs = _flats(rule, p, g, old, p_out, out, ("exp_avg", "exp_avg_sq"))
    bad = rule.K.adam(ins, outs, bool(rule.reference.decoupled), sc["decay"], sc["weight_decay"],
                      sc["beta1"], sc["one_minus_beta1"], sc["beta2"], sc["one_minus_beta2"],
                      sc["step_size"], sc["denom_div"], sc["eps"], sc["zero"])
    return {}, bad


def _plan_adax(rule, p, g, old, p_out, out, t, sc, want_info):
    ins, outs = _flats(rule, p, g, old, p_out, out, ("exp_avg", "exp_avg_sq"))
    bad = rule.K.adax(ins, outs, rule.hyper["weight_decay_mode"] == "l2", sc["decay"], sc["l2"],
                      sc["beta1"], sc["one_minus_beta1"], sc["growth"], sc["b"], sc["step_size"],
                      sc["eps"], sc["zero"])
    return {}, bad


def _plan_sgdm(rule, p, g, old, p_out, out, t, sc, want_info):
    ins, outs = _flats(rule, p, g, old, p_out, out, ("momentum_buffer",))
    bad = rule.K.sgdm(ins, outs, t == 1, bool(rule.hyper["nesterov"]), sc["weight_decay"],
                      sc["momentum"], sc["one_minus_dampening"], sc["lr"])
    return {}, bad


def _plan_cadamw(rule, p, g, old, p_out, out, t, sc, want_info):
    f, kind = rule._flat, p.dtype.type
    n = p.size
    kept = int(rule.K.count_kept(f(old["exp_avg"]), f(g), sc["beta1"], sc["one_minus_beta1"],
                                 MASK_M_NEW, True, kind(0)))
    # The reference's mask values: 1/r and 0/r (count), 1*s and 0*s (count+1), in the dtype.
    if rule.hyper["scaling"] == "count":
        mean = kept / n if n else 1.0  # = np.mean(mask, dtype=float64): an exact sum of 0/1
        r = kind(max(mean, 1e-3))
        keep_val, drop_val = kind(1) / r, kind(0) / r
    else:
        s = kind(n / (float(kept) + 1.0))
        keep_val, drop_val = kind(1) * s, kind(0) * s
    ins, outs = _flats(rule, p, g, old, p_out, out, ("exp_avg", "exp_avg_sq"))
    bad = rule.K.cautious_adam(ins, outs, sc["decay"], sc["beta1"], sc["one_minus_beta1"],
                               sc["beta2"], sc["one_minus_beta2"], sc["step_size"],
                               sc["denom_div"], sc["eps"], kind(0), keep_val, drop_val)
    return {}, bad


def alphaadam_mask_mode(h, t: int) -> int:
    """Which score decides AlphaAdam's mask at step t (MASK_ALL, MASK_M_PREV or MASK_M_NEW)."""
    if h["mask_source"] == "ones" or (h["mask_source"] == "m_prev" and t == 1
                                      and h["first_step"] == "unmasked"):
        return MASK_ALL
    if h["mask_source"] == "m_t" or (t == 1 and h["first_step"] == "cautious"):
        return MASK_M_NEW
    return MASK_M_PREV


def alphaadam_alpha_known(h, t: int) -> bool:
    """Whether the plan knows alpha at step t without reading the data (no count pass), for a
    step without info: the unmasked first step, an all-ones mask under a rule other than
    ``norm``, or ``alpha_rule="none"``."""
    mode = alphaadam_mask_mode(h, t)
    if mode == MASK_ALL and (h["mask_source"] == "m_prev" or h["alpha_rule"] != "norm"):
        return True
    return h["alpha_rule"] == "none"


def _plan_alphaadam(rule, p, g, old, p_out, out, t, sc, want_info):
    h = rule.hyper
    f, kind = rule._flat, p.dtype.type
    n = p.size
    strict = bool(h["strict"])
    mode = alphaadam_mask_mode(h, t)

    alpha, kept = None, None
    if mode == MASK_ALL:
        kept = n
        # The unmasked first step uses psi = 1 whatever the rule; otherwise an all-ones mask gives
        # alpha = 1 (count, soft, none) or n/(n+1) (count+1). ``norm`` is a ratio of two equal
        # sums, 1 unless they are not finite: computed below, as the reference does.
        if t == 1 and h["mask_source"] == "m_prev":
            alpha = 1.0
        elif h["alpha_rule"] != "norm":
            alpha = alpha_for(h["alpha_rule"], kept, n, h["density_floor"], h["alpha_max"])
    if alpha is not None:
        pass
    elif h["alpha_rule"] == "norm":
        kept, sum_all, sum_kept = rule.K.norm_sums(
            f(g), f(old["exp_avg"]), f(old["exp_avg_sq"]), sc["beta1"], sc["one_minus_beta1"],
            sc["beta2"], sc["one_minus_beta2"], sc["denom_div"], sc["eps"], kind(0), mode, strict)
        kept = int(kept)
        alpha = norm_alpha(float(sum_all), float(sum_kept), h["alpha_max"])
    elif h["alpha_rule"] == "none" and not want_info:
        alpha = 1.0  # the count would only feed info["kept"]
    else:
        kept = int(rule.K.count_kept(f(old["exp_avg"]), f(g), sc["beta1"], sc["one_minus_beta1"],
                                     mode, strict, kind(0)))
        alpha = alpha_for(h["alpha_rule"], kept, n, h["density_floor"], h["alpha_max"])

    a = kind(alpha)
    # psi = phi/a + (1-phi) a (soft) or a phi + gamma (1-phi): its two values, in the dtype.
    if h["alpha_rule"] == "soft":
        psi_kept, psi_drop = kind(1) / a, a
    else:
        psi_kept, psi_drop = a, kind(h["gamma"])

    write_mask = want_info and mode != MASK_ALL
    if write_mask:
        mask = rule._empty_mask(p.shape)
        mask_flat = f(mask)
    else:
        mask, mask_flat = None, rule._no_mask()
    ins, outs = _flats(rule, p, g, old, p_out, out, ("exp_avg", "exp_avg_sq"))
    bad = rule.K.masked_adam(ins, outs, mask_flat, write_mask, sc["decay"], sc["beta1"],
                             sc["one_minus_beta1"], sc["beta2"], sc["one_minus_beta2"],
                             sc["step_size"], sc["denom_div"], sc["eps"], kind(0), mode, strict,
                             psi_kept, psi_drop)
    if not want_info:
        return {}, bad
    if mask is None:
        mask = rule._ones_mask(p.shape)
    return {"mask": mask, "alpha": alpha, "kept": kept}, bad


def norm_alpha(sum_all: float, sum_kept: float, alpha_max: float) -> float:
    """AlphaAdam's ``norm`` strength from the two float64 sums of squares (as ``alpha_for``)."""
    import math

    kept_norm = math.sqrt(sum_kept)
    if kept_norm == 0.0:
        return 1.0
    return min(alpha_max, math.sqrt(sum_all) / kept_norm)


_PLANS = {"adamx": _plan_adamx, "adams": _plan_adams, "adam": _plan_adam, "adamw": _plan_adam,
          "adax": _plan_adax, "sgdm": _plan_sgdm, "cadamw": _plan_cadamw,
          "alphaadam": _plan_alphaadam}

#: Rules whose plan reads the tensor's size (``n = p.size``): their launch's scalars may depend
#: on it, not only on (t, dtype, hyperparameters) (AlphaAdam's all-ones mask under ``count+1``:
#: alpha = n/(n+1)). A backend that reuses one plan's launch for several tensors
#: (``NumbaRule._batched``) must key it by size too for these.
PLANS_READING_SIZE = frozenset({"alphaadam", "cadamw"})


class RecordingRule:
    """The rule as a plan sees it, with ``recorder`` for kernel namespace.

    The multi-tensor paths (CuPy's pointer-table launches, numba's replay of small tensors) run
    a plan against it to learn which launches the plan makes, instead of making them.
    """

    def __init__(self, rule: FusedRule, recorder: Any) -> None:
        self._rule = rule
        self.K = recorder

    def __getattr__(self, name):
        return getattr(self._rule, name)


class HostArrays:
    """The array plumbing of a :class:`FusedRule` whose arrays live in host (NumPy) memory."""

    def _validate(self, params, grads, state):
        params = V.as_param_list("params", params)
        grads = V.check_grads(params, grads)
        self.reference._check_state(params, state)
        return params, grads

    def _validate_fast(self, params, grads, state):
        return V.plain_lists(params, grads, state, self.reference.state_type, self.buffers)

    def _flat(self, a):
        # A view when ``a`` is C-contiguous (the in-place steps require it), else a C-order copy.
        return a.ravel()

    def _address(self, a) -> int:
        return a.__array_interface__["data"][0]

    def _memory_owner(self, a):
        # The end of the ``base`` chain: NumPy arrays of different owners cannot overlap (an
        # array made from a raw address of another's memory, which has no base to follow, is
        # not detected).
        base = a.base
        while base is not None:
            if not isinstance(base, np.ndarray):
                return id(base)
            a, base = base, base.base
        return id(a)

    def _owner_keys(self, arrays) -> list:
        owner = self._memory_owner
        return [id(a) if a.base is None else owner(a) for a in arrays]

    def _shares_memory(self, a, b) -> bool:
        return bool(np.shares_memory(a, b))

    def _contiguous(self, a):
        return np.ascontiguousarray(a)

    #: A :class:`refopt.kernels.recycle.Recycler` for the outputs of ``step``, or None.
    recycler = None

    def _empty_like(self, a):
        if self.recycler is None:
            return np.empty(a.shape, dtype=a.dtype)
        return self.recycler.empty(a.shape, a.dtype)

    def _new_call(self) -> None:
        if self.recycler is not None:
            self.recycler.new_call()

    def release_buffers(self) -> None:
        """Free the arrays kept for recycling (see :mod:`refopt.kernels.recycle`)."""
        if self.recycler is not None:
            self.recycler.release()

    def _ones_mask(self, shape):
        return np.ones(shape, dtype=bool)

    def _empty_mask(self, shape):
        return np.empty(shape, dtype=bool)
