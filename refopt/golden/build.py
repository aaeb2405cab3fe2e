"""Generate the golden suite from the float64 reference, write it, and check a committed copy.

:func:`generate` turns one :class:`~refopt.golden.catalogue.CaseSpec` into manifest and payload
bytes, entirely in memory and deterministically (no clock, no host name, no git state: the same
refopt, NumPy and mpmath give the same bytes). :func:`build_suite` writes every case atomically
plus ``index.json``; :func:`check_report` (and :func:`check_suite`, its list of problems)
validates each manifest against the schema, verifies its hashes, regenerates the case in memory
and compares the expected arrays bitwise and the manifest content (all but its generator block,
so a suite built with another NumPy or refopt version still checks clean).
"""
from __future__ import annotations

import fnmatch
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import mpmath
import numpy as np

from .. import __version__
from .._io import CorruptFileError, TamperedFileError, atomic_write_bytes, load_json
from ..registry import get_rule, is_builtin, rule_info
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
    # C-AdamW under bias_correction="torch" (timm, heavyball, C-Optim's foreach path).
    "cadamw/torch": {"eps_placement": "outside_sqrt, corrected sqrt(v)/sqrt(1-b2^t) (torch)",
                     "bias_correction": "torch: step lr/(1-b1^t)",
                     "weight_decay": "decoupled, applied first, scaled by lr_t"},
    "adax": {"eps_placement": "outside_sqrt", "bias_correction": "step lr*sqrt((1+b)^t-1)",
             "weight_decay": "weight_decay_mode (l2 | decoupled)"},
    "sgdm": {"eps_placement": "n/a", "bias_correction": "n/a",
             "weight_decay": "L2: weight_decay*theta added to g (torch)"},
}


def conventions_for(rule: str, hyper: dict) -> dict:
    """The case's conventions: per rule, and per eps placement for C-AdamW."""
    if not is_builtin(rule):
        from .user_rules import CONVENTIONS as USER_CONVENTIONS
        return dict(USER_CONVENTIONS)
    if rule == "cadamw" and hyper.get("bias_correction") == "torch":
        return CONVENTIONS["cadamw/torch"]
    return CONVENTIONS[rule]


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
    import warnings

    from .._validation import HorizonWarning

    source = spec.grads if spec.objective is None else make_grad_fn(spec.objective)
    with warnings.catch_warnings():  # golden runs are short on purpose
        warnings.simplefilter("ignore", HorizonWarning)
        return trajectory(spec.rule, spec.init, source, steps=spec.n_steps,
                          lr_schedule=spec.lr_schedule, record_every=spec.record_every,
                          **spec.hyper)


def payload_arrays(spec: CaseSpec, traj) -> dict[str, np.ndarray]:
    arrays = {"steps": traj.steps}
    for i, p in enumerate(traj.params):
        arrays[f"param.{i}"] = p
        arrays[f"grad.{i}"] = traj.grads[i]
        arrays[f"step.{i}"] = traj.state["step"][i]
        for b in rule_info(spec.rule).cls.buffers:
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
    for base in ("param",) + tuple(rule_info(spec.rule).cls.buffers) + ("grad",):
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
    info = rule_info(spec.rule)
    rule_cls = info.cls
    if spec.result == "invalid":
        hyper_used = dict(spec.hyper)
    else:
        hyper_used = dict(get_rule(spec.rule, **spec.hyper).hyper)
    # Every variant option (the registry's list) plus the non-finite gradient policy.
    options = {k: hyper_used[k] for k in info.variants if k in hyper_used}
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
        "conventions": conventions_for(spec.rule, hyper_used),
        "source": {**spec.source, "rule_source": info.source},
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


def _no_match_error(pattern: str, n_cases: int, example: str, hint: str = "") -> ValueError:
    return ValueError(f"pattern {pattern!r} matches none of the {n_cases} golden case ids "
                      f"(examples of patterns: 'adamx_*', '*_float32', '{example}'){hint}")


def cases_of(rule: str | None) -> list[CaseSpec]:
    """The catalogue of the shipped suite (``rule`` None) or of a user rule's suite
    (:func:`refopt.golden.user_rules.user_catalogue`)."""
    if rule is None:
        return catalogue()
    from .user_rules import user_catalogue
    return user_catalogue(rule)


def build_suite(out: str | Path | None = None, pattern: str = "*", *,
                progress=None, rule: str | None = None) -> list[str]:
    """Write every case matching ``pattern`` (and, for the full suite, ``index.json``) to ``out``.

    ``rule``: a user rule's import path (:mod:`refopt.golden.user_rules`): its generic cases
    instead of the shipped suite; ``out`` is then required and ``index.json`` records the rule.

    ``progress(done, total, case_id)``, if given, is called before each case and at the end.

    Each file is written atomically. Returns the case ids written. Stale ``.json``/``.npz``
    files of cases no longer in the catalogue are removed when the whole suite is built.
    Raises ValueError when ``pattern`` matches no case id.
    """
    if rule is not None and out is None:
        raise ValueError("a user rule's suite needs an output directory (--out DIR); the "
                         "packaged suite holds refopt's own rules only")
    out = Path(out) if out is not None else SUITE_DIR
    all_specs = cases_of(rule)
    specs = select(all_specs, pattern)
    if not specs:
        raise _no_match_error(pattern, len(all_specs), all_specs[0].case_id)
    out.mkdir(parents=True, exist_ok=True)
    index = {}
    for k, spec in enumerate(specs):
        if progress is not None:
            progress(k, len(specs), spec.case_id)
        data, payload = generate(spec)
        if rule is not None:  # the shipped suite's manifests are checked by its tests
            errors = F.validate_manifest(json.loads(data))
            if errors:
                raise AssertionError(f"{spec.case_id}: refopt wrote a manifest that breaks "
                                     f"its schema: {errors[:3]}")
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
        atomic_write_bytes(out / INDEX_FILE, index_bytes(index, rule))
    if progress is not None:
        progress(len(specs), len(specs), "")
    return [s.case_id for s in specs]


def index_bytes(index: dict, rule: str | None = None) -> bytes:
    doc = {"schema": F.SCHEMA_FILE, "schema_version": F.SCHEMA_VERSION,
           "suite_version": SUITE_VERSION, "n_cases": len(index), "cases": index}
    if rule is not None:  # a user rule's suite: `refopt golden check` finds its catalogue here
        doc["rule"] = rule
    return F.manifest_bytes(doc)


def suite_rule(directory: str | Path) -> str | None:
    """The user rule a suite was built for (its index.json's ``rule``), None for refopt's own
    rules or a directory without a readable index."""
    try:
        doc = load_json(Path(directory) / INDEX_FILE)
    except (OSError, CorruptFileError):
        return None
    rule = doc.get("rule") if isinstance(doc, dict) else None
    return rule if isinstance(rule, str) else None


# -- checking ----------------------------------------------------------------------------------

#: Manifest fields that ``check`` does not compare with a regeneration: the generator block
#: (versions change with every NumPy/refopt/mpmath/SymPy release, and a suite built with other
#: versions is still valid when its content matches) and the content hash (it covers the
#: generator block; it is verified against the committed file itself, for tamper detection).
#: The payload block is compared array by array (dtype, shape, digest), not by file sha256:
#: the ``.npz`` container (``.npy`` headers, zip fields) may differ between NumPy versions.
NOT_COMPARED = ("generator", "content_hash", "payload")
VERSION_FIELDS = ("refopt_version", "numpy_version", "mpmath_version", "sympy_version")


@dataclass
class CheckReport:
    """What :func:`check_report` found: ``problems`` (empty: the suite is valid and current),
    ``notices`` (information, not failures: other generator versions) and the case ids checked."""

    directory: Path
    case_ids: list[str]
    problems: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _name_matches(name: str, pattern: str) -> bool:
    """A file name matches when its case-id part (the name less .json/.npz) or the name does."""
    stem = name[: -len(Path(name).suffix)] if Path(name).suffix in (".json", ".npz") else name
    return fnmatch.fnmatchcase(stem, pattern) or fnmatch.fnmatchcase(name, pattern)


def _unknown_files(directory: Path, known_ids: set[str], pattern: str) -> list[str]:
    """Files in the suite directory that belong to no catalogue case (hidden files aside)."""
    known = {f"{cid}.{ext}" for cid in known_ids for ext in ("json", "npz")} | {INDEX_FILE}
    return sorted(p.name for p in directory.iterdir()
                  if not p.name.startswith(".") and p.name not in known
                  and _name_matches(p.name, pattern))


def _manifest_differences(committed: dict, current: dict) -> list[str]:
    keys = set(committed) | set(current)
    return sorted(k for k in keys - set(NOT_COMPARED) if committed.get(k) != current.get(k))


def _payload_differences(committed: dict, committed_arrays: dict | None, current: dict,
                         current_payload: bytes | None) -> list[str]:
    """Arrays of the committed payload that differ from the regenerated ones, bitwise.

    Compared by per-array digest (dtype, shape, bytes: container-independent); a differing
    float array is described by its distance in ulps.
    """
    old, new = committed.get("payload"), current.get("payload")
    if old is None or new is None:
        if (old is None) != (new is None):
            return ["the current reference has no payload" if new is None
                    else "the manifest names no payload, the current reference has one"]
        return []
    out = []
    if old["file"] != new["file"]:
        out.append(f"file {old['file']!r}, the current reference names {new['file']!r}")
    old_specs, new_specs = old["arrays"], new["arrays"]
    changed = [k for k in sorted(set(old_specs) | set(new_specs))
               if old_specs.get(k) != new_specs.get(k)]
    if not changed:
        return out
    with np.load(io.BytesIO(current_payload), allow_pickle=False) as z:
        current_arrays = {k: z[k] for k in changed if k in z.files}
    for key in changed:
        if key not in old_specs or key not in new_specs:
            where = "the current reference" if key not in old_specs else "the committed file"
            out.append(f"array {key!r} only in {where}")
            continue
        x, y = committed_arrays[key], current_arrays[key]
        if x.shape != y.shape or x.dtype != y.dtype:
            out.append(f"array {key!r}: {x.dtype}{list(x.shape)}, current {y.dtype}"
                       f"{list(y.shape)}")
        elif x.dtype.kind != "f":
            out.append(f"array {key!r}: {int(np.count_nonzero(x != y))} of {x.size} "
                       f"elements differ")
        else:
            ulps = TOL.ulp_distance(x, y)
            n = int(np.count_nonzero(ulps))
            if n == 0:  # equal values, other bits: the sign of a zero or a NaN payload
                out.append(f"array {key!r}: same values, different bit patterns (signed zero "
                           f"or NaN payload)")
            else:
                out.append(f"array {key!r}: up to {int(np.max(ulps))} ulp apart "
                           f"({n} of {x.size} elements)")
    return out


def _version_notice(recorded: dict[str, set], current: dict) -> str | None:
    """One line naming the generator versions that differ from the running ones, if any."""
    parts = [f"{f.replace('_version', '')} {'/'.join(sorted(recorded[f]))} (running "
             f"{current[f]})" for f in VERSION_FIELDS
             if recorded.get(f) and recorded[f] != {current[f]}]
    if not parts:
        return None
    return ("note: the suite was generated with " + ", ".join(parts) + "; versions are not "
            "compared: arrays are compared by value (bitwise), manifests without their "
            "generator block")


def check_report(directory: str | Path | None = None, pattern: str = "*", *,
                 progress=None, rule: str | None = None) -> CheckReport:
    """Check the suite at ``directory`` against the current reference (``refopt golden check``).

    For every catalogue case matching ``pattern``: validates the manifest against the schema,
    verifies its content hash and the payload's hashes (a truncated or malformed file is
    CORRUPT, a readable file whose hash does not match is TAMPERED, a payload file the manifest
    names but that is absent is MISSING), then regenerates the case in memory and compares the
    expected arrays bitwise (per-array digests; the ulp distance on a mismatch) and the manifest
    content except its generator block (:data:`NOT_COMPARED`). Other generator versions (NumPy,
    refopt, ...) give one notice, not a problem. Files in the directory that belong to no
    catalogue case are problems whether or not a pattern is given (those matching it).
    The catalogue is the user rule's (``rule``, or the rule the suite's index.json records)
    or the shipped one.
    ``progress(done, total, case_id)``, if given, is called before each case and at the end.

    Raises
    ------
    FileNotFoundError, NotADirectoryError
        ``directory`` does not exist or is not a directory.
    ValueError
        ``pattern`` matches no case id of the catalogue.
    """
    directory = Path(directory) if directory is not None else SUITE_DIR
    if not directory.exists():
        raise FileNotFoundError(f"golden suite directory {directory} does not exist")
    if not directory.is_dir():
        raise NotADirectoryError(f"golden suite directory {directory} is not a directory")
    rule = rule or suite_rule(directory)
    all_specs = cases_of(rule)
    specs = select(all_specs, pattern)
    unknown = _unknown_files(directory, {s.case_id for s in all_specs}, pattern)
    if not specs:
        hint = (f"; files in {directory} that match it but belong to no case: {unknown}"
                if unknown else "")
        raise _no_match_error(pattern, len(all_specs), all_specs[0].case_id, hint)
    report = CheckReport(directory, [s.case_id for s in specs])
    problems = report.problems
    for name in unknown:
        problems.append(f"{name}: not a file of any catalogue case (stale or foreign file)")
    index_path = directory / INDEX_FILE
    index = None
    if index_path.exists() or pattern == "*":   # a partial build (--pattern) writes no index
        try:
            # Bounded like every read of a file that may not be ours (a few hundred bytes a
            # case; 64 MiB is far beyond any suite).
            index = load_json(index_path)["cases"]
            if not isinstance(index, dict):
                raise TypeError("'cases' is not an object")
        except FileNotFoundError:
            problems.append(f"{index_path}: missing")
        except (CorruptFileError, KeyError, TypeError) as exc:
            problems.append(f"{index_path}: CORRUPT (truncated or malformed): {exc}")
            index = None
        if index is not None:
            wanted = {s.case_id for s in all_specs}
            for extra in sorted(set(index) - wanted):
                if fnmatch.fnmatchcase(extra, pattern):
                    problems.append(f"{extra}: listed in index.json but not in the catalogue")
    current_generator = generator_info()
    recorded_versions: dict[str, set] = {}
    for k, spec in enumerate(specs):
        cid = spec.case_id
        if progress is not None:
            progress(k, len(specs), cid)
        mpath = directory / f"{cid}.json"
        if not mpath.exists():
            problems.append(f"{cid}: MISSING manifest {mpath.name}")
            continue
        try:
            manifest, data = F.read_manifest(mpath)
            errors = F.validate_manifest(manifest)
            if errors:
                problems.extend(f"{cid}: schema error at {e}" for e in errors)
                continue
            entry = manifest["payload"]
            if entry is not None and not (directory / entry["file"]).exists():
                problems.append(f"{cid}: MISSING payload {entry['file']} (named by the manifest)")
                continue
            if entry is None and (directory / f"{cid}.npz").exists():
                problems.append(f"{cid}: {cid}.npz present but the manifest names no payload "
                                f"(stale file)")
            committed_arrays = F.read_payload(directory, manifest)
        except CorruptFileError as exc:
            problems.append(f"{cid}: CORRUPT (truncated or malformed): {exc}")
            continue
        except TamperedFileError as exc:
            problems.append(f"{cid}: TAMPERED (hash mismatch): {exc}")
            continue
        for f in VERSION_FIELDS:
            recorded_versions.setdefault(f, set()).add(str(manifest["generator"].get(f)))
        if index is not None:
            listed = index.get(cid)
            payload_sha = entry["sha256"] if entry is not None else None
            if not isinstance(listed, dict) or \
                    listed.get("manifest_sha256") != hashlib.sha256(data).hexdigest() or \
                    listed.get("payload_sha256") != payload_sha:
                problems.append(f"{cid}: index.json does not list this manifest's and payload's "
                                f"sha256")
        new_data, new_payload = generate(spec)
        current = json.loads(new_data)
        fields = _manifest_differences(manifest, current)
        if fields:
            problems.append(f"{cid}: manifest differs from the current reference in {fields}")
        arrays = _payload_differences(manifest, committed_arrays, current, new_payload)
        if arrays:
            problems.append(f"{cid}: payload differs from the current reference: "
                            + "; ".join(arrays))
    if progress is not None:
        progress(len(specs), len(specs), "")
    notice = _version_notice(recorded_versions, current_generator)
    if notice:
        report.notices.append(notice)
    if index is not None and not problems:
        expected = index_bytes({s.case_id: index[s.case_id] for s in specs if s.case_id in index},
                               rule)
        if pattern == "*" and index_path.read_bytes() != expected:
            problems.append(f"{index_path}: differs from the index the catalogue would write")
    return report


def check_suite(directory: str | Path | None = None, pattern: str = "*") -> list[str]:
    """Problems found in the suite at ``directory`` (empty list: the suite is valid and current).

    See :func:`check_report`, which also returns the notices (other generator versions).
    """
    return check_report(directory, pattern).problems
