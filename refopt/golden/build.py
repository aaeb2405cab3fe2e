"""Generate the golden suite from the float64 reference, write it, and check a committed copy.

:func:`generate` turns one :class:`~refopt.golden.catalogue.CaseSpec` into manifest and payload
bytes, entirely in memory and deterministically (no clock, no host name, no git state: the same
refopt, NumPy and mpmath give the same bytes). :func:`build_suite` writes every case atomically
plus ``index.json``; :func:`check_suite` regenerates every case in memory and compares it with the
files byte for byte, after validating each manifest against the schema and verifying its hashes.
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
from pathlib import Path
from typing import Any, Iterable

import mpmath
import numpy as np

from .. import __version__
from .._io import CorruptFileError, TamperedFileError, atomic_write_bytes
from ..registry import RULES, get_rule
from ..trajectory import trajectory
from . import format as F
from . import mp_reference as MP
from . import tolerances as TOL
from .catalogue import FLAG_NOTES, CaseSpec, catalogue, objective_formula

SUITE_VERSION = "2026.11"
SUITE_DIR = Path(__file__).with_name("suite") / "v1"
INDEX_FILE = "index.json"
N_ANCHOR_STEPS = 5

#: Conventions that the options alone do not spell out (golden-vectors.md: manifest fields).
CONVENTIONS = {
    "adamx": {"eps_placement": "outside_sqrt", "bias_correction": "folded into beta1_t, beta2_t",
              "weight_decay": "decoupled, applied first, scaled by lr_t (weight_decay_mode)"},
    "adams": {"eps_placement": "outside_sqrt",
              "bias_correction": "none (paper) or 1-beta1^t on old and new m (official)",
              "weight_decay": "decoupled, applied first, scaled by lr_t"},
    "alphaadam": {"eps_placement": "outside_sqrt (hf: on uncorrected sqrt(v); torch: corrected)",
                  "bias_correction": "bias_correction option (hf | torch)",
                  "weight_decay": "decoupled, unmasked, applied first, scaled by lr_t"},
    "adam": {"eps_placement": "outside_sqrt", "bias_correction": "bias_correction option",
             "weight_decay": "L2: weight_decay*theta added to g"},
    "adamw": {"eps_placement": "outside_sqrt", "bias_correction": "bias_correction option",
              "weight_decay": "decoupled, applied first, scaled by lr_t"},
    "cadamw": {"eps_placement": "outside_sqrt, uncorrected sqrt(v) (hf)",
               "bias_correction": "hf: step lr*sqrt(1-b2^t)/(1-b1^t)",
               "weight_decay": "decoupled, applied first, scaled by lr_t"},
    "adax": {"eps_placement": "outside_sqrt", "bias_correction": "step lr*sqrt((1+b)^t-1)",
             "weight_decay": "weight_decay_mode (l2 | decoupled)"},
    "sgdm": {"eps_placement": "n/a", "bias_correction": "n/a",
             "weight_decay": "L2: weight_decay*theta added to g (torch)"},
}


def generator_info() -> dict:
    """What produced the files. No commit or working-tree state: see FORMAT.md, 'Determinism'."""
    import sympy

    return {"refopt_version": __version__, "numpy_version": np.__version__,
            "mpmath_version": mpmath.__version__, "sympy_version": sympy.__version__,
            "commit": None, "working_tree_state": "not-recorded",
            "note": "rebuilt bit for bit by `refopt golden build`; git commit and working-tree "
                    "state are deliberately not recorded (they would change every rebuild)"}


# -- running the reference ---------------------------------------------------------------------

def make_grad_fn(objective: dict):
    """``grad_fn(params, t)`` of a closed-loop case: the objective's exact gradient per tensor."""
    from ..objectives import make_objective

    obj = make_objective(objective["name"], **objective["constants"])

    def grad_fn(params, t):
        return [obj.grad(p) for p in params]

    grad_fn.objective = obj
    return grad_fn


def run_reference(spec: CaseSpec):
    source = spec.grads if spec.objective is None else make_grad_fn(spec.objective)
    return trajectory(spec.rule, spec.init, source, steps=spec.n_steps,
                      lr_schedule=spec.lr_schedule, record_every=spec.record_every, **spec.hyper)


def payload_arrays(spec: CaseSpec, traj) -> dict[str, np.ndarray]:
    arrays = {"steps": traj.steps}
    for i, p in enumerate(traj.params):
        arrays[f"param.{i}"] = p
        arrays[f"grad.{i}"] = traj.grads[i]
        arrays[f"step.{i}"] = traj.state["step"][i]
        for b in RULES[spec.rule].cls.buffers:
            arrays[f"{b}.{i}"] = traj.state[b][i]
    if spec.lr_schedule is not None:
        arrays["lr"] = np.asarray(spec.lr_schedule, dtype=np.float64)
    if traj.info:
        rows = traj.steps[1:] - 1       # info row k belongs to step k + 1
        for key, per_tensor in traj.info.items():
            for i, a in enumerate(per_tensor):
                a = np.asarray(a)
                if key == "kept":
                    a = a.astype(np.int64)
                elif key == "alpha":
                    a = a.astype(np.float64)
                arrays[f"{key}.{i}"] = a[rows]
    return arrays


# -- manifest pieces ---------------------------------------------------------------------------

def _anchors(spec: CaseSpec, arrays: dict) -> list[dict]:
    """The first recorded steps of one coordinate per buffer, as hex floats and bit patterns.

    The coordinate is flat index 0 of the first non-empty tensor; its param, every state buffer
    and its gradients are given, so a port of an elementwise rule (all but AlphaAdam and C-AdamW,
    whose alpha couples a tensor's coordinates) can replay it with no .npy reader.
    """
    sizes = [int(np.size(p)) for p in spec.init]
    tensor = next((i for i, n in enumerate(sizes) if n), None)
    if tensor is None:
        return []
    steps = arrays["steps"]
    out = []
    for base in ("param",) + RULES[spec.rule].cls.buffers + ("grad",):
        a = arrays[f"{base}.{tensor}"]
        flat = a.reshape(a.shape[0], -1)
        rows = range(min(N_ANCHOR_STEPS, a.shape[0]))
        enc = [F.encode_float(float(flat[r, 0]), spec.dtype) for r in rows]
        out.append({"array": f"{base}.{tensor}", "flat_index": 0,
                    "steps": [int(r + 1) if base == "grad" else int(steps[r]) for r in rows],
                    "hex": [e["hex"] for e in enc], "bits": [e["bits"] for e in enc]})
    return out


def _objective_block(spec: CaseSpec) -> dict | None:
    if spec.objective is None:
        return None
    fn = make_grad_fn(spec.objective)
    obj = fn.objective
    block = {"name": obj.name, "constants": dict(sorted(obj.constants.items())),
             "formula": objective_formula(obj.name), "applied": "to each tensor separately",
             "exact_gradients": True, "derived": {}}
    if obj.name == "quadratic":
        h = np.diag(obj.hessian(np.zeros(obj.constants["dim"])))
        block["derived"]["h"] = [F.encode_float(float(x)) for x in h]
    return block


def _shapes(spec: CaseSpec) -> list:
    return [list(np.shape(p)) for p in spec.init] if spec.init is not None else []


def manifest_for(spec: CaseSpec, arrays: dict | None, tolerance: dict, accuracy: dict) -> dict:
    rule_cls = RULES[spec.rule].cls
    if spec.result == "invalid":
        hyper_used = dict(spec.hyper)
    else:
        hyper_used = dict(get_rule(spec.rule, **spec.hyper).hyper)
    # Every variant option (the registry's list) plus the non-finite gradient policy.
    options = {k: hyper_used[k] for k in RULES[spec.rule].variants if k in hyper_used}
    options["nonfinite"] = hyper_used["nonfinite"]
    if spec.lr_schedule is not None:
        schedule = {"kind": "explicit", "payload_key": "lr"}
    else:
        schedule = {"kind": "constant", "lr": F.encode_float(float(hyper_used["lr"]))}
    manifest: dict[str, Any] = {
        "schema": F.SCHEMA_FILE, "schema_version": F.SCHEMA_VERSION,
        "suite_version": SUITE_VERSION, "case_id": spec.case_id, "rule": spec.rule,
        "variant_id": spec.variant_id, "options": options,
        "hyperparams": F.encode_hyper(hyper_used),
        "conventions": CONVENTIONS[spec.rule],
        "source": {**spec.source, "rule_source": RULES[spec.rule].source},
        "generator": generator_info(),
        "param_dtype": spec.dtype, "state_dtype": hyper_used.get("state_dtype") or spec.dtype,
        "scalar_dtype": "float64",
        "buffers": list(rule_cls.buffers),
        "tensors": [{"index": i, "shape": s} for i, s in enumerate(_shapes(spec))],
        "n_steps": spec.n_steps, "record_every": spec.record_every,
        "schedule": schedule,
        "explicit_gradients": spec.objective is None,
        "objective": _objective_block(spec),
        "init": {"source": "payload rows param.<i>[0]",
                 "generator": "numpy PCG64 dyadic draws (see refopt/golden/catalogue.py); the "
                              "values are stored, ports need not regenerate them"},
        "flags": list(spec.flags), "notes": {f: FLAG_NOTES[f] for f in spec.flags},
        "comment": spec.comment, "result": spec.result,
        "expected_error": spec.expected_error,
        "tolerance": tolerance, "reference_accuracy": accuracy,
        "anchors": _anchors(spec, arrays) if arrays is not None else [],
    }
    return manifest


# -- generation --------------------------------------------------------------------------------

def generate(spec: CaseSpec) -> tuple[bytes, bytes | None]:
    """Manifest and payload bytes of one case (payload None for invalid cases)."""
    if spec.result == "invalid":
        tol = TOL.invalid_tolerance()
        acc = {"method": "not applicable (invalid case: no values)", "mp_dps": MP.MP_DPS,
               "worst_rel_error": None, "worst_normwise_rel_error": None,
               "steps_checked": 0, "fallback": True,
               "fallback_reason": "invalid case: a port must raise, there are no values"}
        return F.encode_case(manifest_for(spec, None, tol, acc), None)
    traj = run_reference(spec)
    arrays = payload_arrays(spec, traj)
    with np.errstate(all="ignore"):  # inf/NaN comparisons of the float32 overflow cases
        tol = TOL.tolerance_for(spec, arrays)
        acc = TOL.reference_accuracy(spec, arrays)
    return F.encode_case(manifest_for(spec, arrays, tol, acc), arrays)


def select(specs: Iterable[CaseSpec], pattern: str = "*") -> list[CaseSpec]:
    return [s for s in specs if fnmatch.fnmatchcase(s.case_id, pattern)]


def build_suite(out: str | Path | None = None, pattern: str = "*") -> list[str]:
    """Write every case matching ``pattern`` (and, for the full suite, ``index.json``) to ``out``.

    Each file is written atomically. Returns the case ids written. Stale ``.json``/``.npz``
    files of cases no longer in the catalogue are removed when the whole suite is built.
    """
    out = Path(out) if out is not None else SUITE_DIR
    out.mkdir(parents=True, exist_ok=True)
    specs = select(catalogue(), pattern)
    index = {}
    for spec in specs:
        data, payload = generate(spec)
        if payload is not None:
            atomic_write_bytes(out / f"{spec.case_id}.npz", payload)
        elif (out / f"{spec.case_id}.npz").exists():
            (out / f"{spec.case_id}.npz").unlink()
        atomic_write_bytes(out / f"{spec.case_id}.json", data)
        index[spec.case_id] = {"manifest_sha256": hashlib.sha256(data).hexdigest(),
                               "payload_sha256": (hashlib.sha256(payload).hexdigest()
                                                  if payload is not None else None)}
    if pattern == "*":
        keep = {f"{cid}.{ext}" for cid in index for ext in ("json", "npz")}
        for path in list(out.glob("*.json")) + list(out.glob("*.npz")):
            if path.name != INDEX_FILE and path.name not in keep:
                path.unlink()
        atomic_write_bytes(out / INDEX_FILE, index_bytes(index))
    return [s.case_id for s in specs]


def index_bytes(index: dict) -> bytes:
    doc = {"schema": F.SCHEMA_FILE, "schema_version": F.SCHEMA_VERSION,
           "suite_version": SUITE_VERSION, "n_cases": len(index), "cases": index}
    return F.manifest_bytes(doc)


# -- checking ----------------------------------------------------------------------------------

def _first_difference(expected: bytes, actual: bytes, case_id: str, kind: str) -> str:
    if kind == "manifest":
        try:
            e, a = json.loads(expected), json.loads(actual)
            keys = sorted(k for k in set(e) | set(a) if e.get(k) != a.get(k) and k != "content_hash")
            return f"{case_id}: manifest differs from the current reference in {keys}"
        except json.JSONDecodeError:
            pass
        return f"{case_id}: manifest bytes differ from the current reference"
    return f"{case_id}: payload differs from the current reference ({_array_diff(expected, actual)})"


def _array_diff(expected: bytes, actual: bytes) -> str:
    import io

    with np.load(io.BytesIO(expected), allow_pickle=False) as ze, \
            np.load(io.BytesIO(actual), allow_pickle=False) as za:
        for key in sorted(set(ze.files) | set(za.files)):
            if key not in ze.files or key not in za.files:
                return f"array {key!r} present in only one of them"
            x, y = ze[key], za[key]
            if x.shape != y.shape or x.dtype != y.dtype:
                return f"array {key!r}: {x.dtype}{x.shape} vs {y.dtype}{y.shape}"
            if not np.array_equal(x, y, equal_nan=x.dtype.kind == "f"):
                if x.dtype.kind == "f":
                    ulps = TOL.ulp_distance(x, y)
                    return f"array {key!r}: up to {int(np.max(ulps))} ulp apart"
                return f"array {key!r} differs"
    return "same arrays, different container bytes (NumPy/zipfile version?)"


def check_suite(directory: str | Path | None = None, pattern: str = "*") -> list[str]:
    """Problems found in the suite at ``directory`` (empty list: the suite is valid and current).

    Validates every manifest against the schema, verifies its content hash and the payload's
    hashes (reporting truncated/corrupt vs tampered files), then regenerates each case in memory
    from the current reference and compares the bytes.
    """
    directory = Path(directory) if directory is not None else SUITE_DIR
    problems: list[str] = []
    specs = select(catalogue(), pattern)
    index_path = directory / INDEX_FILE
    index = None
    if pattern == "*":
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))["cases"]
        except FileNotFoundError:
            problems.append(f"{index_path}: missing")
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            problems.append(f"{index_path}: corrupt (truncated or malformed): {exc}")
        if index is not None:
            on_disk = {p.stem for p in directory.glob("*.json") if p.name != INDEX_FILE}
            wanted = {s.case_id for s in specs}
            for extra in sorted(on_disk - wanted):
                problems.append(f"{extra}: not in the catalogue (stale or foreign case file)")
            for extra in sorted(set(index) - wanted):
                problems.append(f"{extra}: listed in index.json but not in the catalogue")
    for spec in specs:
        cid = spec.case_id
        mpath = directory / f"{cid}.json"
        if not mpath.exists():
            problems.append(f"{cid}: manifest missing")
            continue
        try:
            manifest, data = F.read_manifest(mpath)
            errors = F.validate_manifest(manifest)
            if errors:
                problems.extend(f"{cid}: schema error at {e}" for e in errors)
                continue
            arrays_ok = F.read_payload(directory, manifest)
        except CorruptFileError as exc:
            problems.append(f"{cid}: CORRUPT (truncated or malformed): {exc}")
            continue
        except TamperedFileError as exc:
            problems.append(f"{cid}: TAMPERED (hash mismatch): {exc}")
            continue
        del arrays_ok
        if index is not None:
            entry = index.get(cid)
            if entry is None or entry.get("manifest_sha256") != hashlib.sha256(data).hexdigest():
                problems.append(f"{cid}: index.json does not list this manifest's sha256")
        new_data, new_payload = generate(spec)
        if new_data != data:
            problems.append(_first_difference(data, new_data, cid, "manifest"))
        if new_payload is not None:
            old_payload = (directory / f"{cid}.npz").read_bytes()
            if old_payload != new_payload:
                problems.append(_first_difference(old_payload, new_payload, cid, "payload"))
    if index is not None and not problems:
        expected = index_bytes({s.case_id: index[s.case_id] for s in specs if s.case_id in index})
        if index_path.read_bytes() != expected:
            problems.append(f"{index_path}: differs from the index the catalogue would write")
    return problems


