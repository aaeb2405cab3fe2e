"""What every experiment returns (numbers, verdicts, figures) and the shared figure/sweep helpers."""
from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import _io

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
NOT_CHECKABLE = "not checkable here"
WITHDRAWN = "withdrawn by its authors"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, NOT_CHECKABLE, WITHDRAWN)


@dataclass
class Verdict:
    """The verdict on one claim, from measured numbers and a stated criterion."""

    claim_id: str
    verdict: str
    criterion: str
    evidence: str
    #: The claim table's cell: the measurement in a line and the criterion's gist (the full
    #: criterion and evidence are listed below the tables); empty: a cut of the evidence.
    summary: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")


@dataclass
class ExperimentResult:
    """One experiment family's outcome: named numbers, verdicts and figure paths."""

    name: str
    config: str
    numbers: dict = field(default_factory=dict)
    verdicts: list = field(default_factory=list)
    figures: list = field(default_factory=list)
    seconds: float = 0.0

    def verdict(self, claim_id: str) -> Verdict:
        for v in self.verdicts:
            if v.claim_id == claim_id:
                return v
        raise KeyError(claim_id)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["figures"] = [str(p) for p in self.figures]
        return d


def decide(ok: bool) -> str:
    return REPRODUCED if ok else NOT_REPRODUCED


def save_figure(fig, path: str | Path) -> Path:
    """Save a matplotlib figure as PNG atomically (temp file + rename); closes it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    buf = io.BytesIO()
    # A fixed dpi and no timestamp metadata keep the files reproducible.
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    _io.atomic_write_bytes(path, buf.getvalue())
    return path


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def fmt(x: Any, digits: int = 4) -> str:
    """A number for the report: ``g`` format, None/non-finite spelled out."""
    if x is None:
        return "n/a"
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    x = float(x)
    if not math.isfinite(x):
        return str(x)
    return f"{x:.{digits}g}"


def log_grid(t_max: int, n: int = 60, start: int = 1) -> np.ndarray:
    """About n log-spaced integer steps in [start, t_max], always including both ends."""
    pts = np.unique(np.round(np.logspace(math.log10(start), math.log10(t_max), n)).astype(int))
    return pts[(pts >= start) & (pts <= t_max)]


# -- configurations --------------------------------------------------------------------------

#: The shipped experiment configurations (package data): ``configs/<name>.json``, one object
#: per experiment module plus ``description`` (and ``notes``).
CONFIG_DIR = Path(__file__).resolve().parent / "configs"
EXPERIMENTS = ("adamx_transition", "adams_rate", "alphaadam_masks")
#: Which paper each configurable experiment belongs to (``refopt report --rules``).
EXPERIMENT_RULE = {"adamx_transition": "adamx", "adams_rate": "adams",
                   "alphaadam_masks": "alphaadam"}
SHIPPED_CONFIGS = ("quick", "full", "tiny")
_CONFIG_KEYS = ("description", "notes", "base", *EXPERIMENTS)


def shipped_configs(experiment: str) -> dict[str, dict]:
    """``{config name: this experiment's settings}`` from the shipped files."""
    out = {}
    for name in SHIPPED_CONFIGS:
        data = _io.load_json(CONFIG_DIR / f"{name}.json")
        out[name] = data[experiment]
    return out


def load_report_config(path: str | Path, seeds: list[int] | None = None) -> tuple[str, dict]:
    """A report configuration file: ``(name, {experiment: settings})``.

    The file is a JSON object with an optional ``"base"`` (a shipped configuration, default
    ``"quick"``), optional ``"description"``/``"notes"``, and per experiment
    (``adamx_transition``, ``adams_rate``, ``alphaadam_masks``) an object of settings that
    replace the base's (only the base's fields are accepted). ``seeds`` (``--seeds``) then
    replaces every experiment's seeds. The name is the file's stem. A bad file raises a
    one-line ``ValueError`` naming the field and what is allowed.
    """
    import re

    path = Path(path)
    data = _io.load_json(path)
    where = f"--config {path}"
    if not isinstance(data, dict):
        raise ValueError(f"{where}: must be a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - set(_CONFIG_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: {list(_CONFIG_KEYS)}")
    base = data.get("base", "quick")
    if base not in SHIPPED_CONFIGS:
        raise ValueError(f"{where}: base must be one of {list(SHIPPED_CONFIGS)}, got {base!r}")
    name = path.stem
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"{where}: the file name must use letters, digits, '_', '-', '.' (it "
                         f"names the results files), got {name!r}")
    if name in SHIPPED_CONFIGS:   # it would replace the shipped configuration in this process
        raise ValueError(f"{where}: the file name must not be a shipped configuration's "
                         f"({', '.join(SHIPPED_CONFIGS)}); rename the file")
    merged = {}
    for exp in EXPERIMENTS:
        settings = dict(shipped_configs(exp)[base])
        given = data.get(exp, {})
        if not isinstance(given, dict):
            raise ValueError(f"{where}: {exp} must be an object of settings, got {given!r}")
        bad = sorted(set(given) - set(settings))
        if bad:
            raise ValueError(f"{where}: {exp}.{bad[0]} is not a setting; allowed: "
                             f"{sorted(settings)}")
        for key, value in given.items():
            if type(value) is not type(settings[key]) and not (
                    isinstance(value, (int, float)) and isinstance(settings[key], (int, float))
                    and not isinstance(value, bool)):
                raise ValueError(f"{where}: {exp}.{key} must be a {type(settings[key]).__name__}"
                                 f" like the base's {settings[key]!r}, got {value!r}")
        settings.update(given)
        _check_named_settings(f"{where}: {exp}", exp, settings)
        if seeds is not None:
            settings["seeds"] = list(seeds)
        _check_seeds(f"{where}: {exp}.seeds", settings["seeds"])
        merged[exp] = settings
    return name, merged


#: The settings that name code: the rule under test (a registered name or an import path
#: ``"module:Class"`` of a :class:`refopt.extend.Rule`) and, in adams_rate, the objective (a
#: registered name or ``"module:attr"``, built with the block's ``constants``).
RULE_KEY, OBJECTIVE_KEY = "rule_under_test", "objective"


def _check_named_settings(where: str, exp: str, settings: dict) -> None:
    """The named rule and objective resolve and the rate criterion is known: one-line
    ValueError naming the field otherwise."""
    from ..registry import canonical_name

    if RULE_KEY in settings:
        try:
            canonical_name(settings[RULE_KEY])
        except ValueError as exc:
            raise ValueError(f"{where}.{RULE_KEY}: {' '.join(str(exc).split())}") from None
        check = EXPERIMENT_RULE_CHECKS.get(exp)
        if check is not None:
            check(f"{where}.{RULE_KEY}", settings[RULE_KEY])
    if OBJECTIVE_KEY in settings:
        from ..objectives import make_objective

        try:
            make_objective(settings[OBJECTIVE_KEY], **settings.get("constants", {}))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{where}.{OBJECTIVE_KEY} {settings[OBJECTIVE_KEY]!r} with constants "
                             f"{settings.get('constants', {})!r}: "
                             f"{' '.join(str(exc).split())}") from None
    if "rate_criterion" in settings:
        from .adams_rate import RATE_CRITERIA

        if settings["rate_criterion"] not in RATE_CRITERIA:
            raise ValueError(f"{where}.rate_criterion must be one of {list(RATE_CRITERIA)}, got "
                             f"{settings['rate_criterion']!r}")


def _adamx_rule_check(what: str, name: str) -> None:
    from .adamx_transition import check_rule

    check_rule(name, what)


#: Extra checks of a rule under test, per experiment (what its task needs of the rule).
EXPERIMENT_RULE_CHECKS = {"adamx_transition": _adamx_rule_check}


def rule_defaults(name: str) -> dict:
    """The hyperparameter defaults of a rule (a registered name or an import path)."""
    from ..extend import is_import_path, rule_class_from_path
    from ..registry import RULES, canonical_name

    cls = rule_class_from_path(name) if is_import_path(name) else RULES[canonical_name(name)].cls
    return dict(cls.defaults)


def accepted(name: str, hyper: dict) -> dict:
    """``hyper`` without the keys the rule ``name`` has no hyperparameter for (a user rule
    under test need not have AdamS's ``bias_correction`` or AlphaAdam's ``alpha_rule``)."""
    known = rule_defaults(name)
    return {k: v for k, v in hyper.items() if k in known}


def file_tag(name: str) -> str:
    """A rule or objective name as part of a results file name (``my_mod:Rule`` ->
    ``my_mod_Rule``)."""
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _check_seeds(what: str, seeds) -> None:
    if not isinstance(seeds, list) or not seeds or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds) \
            or len(set(seeds)) != len(seeds):
        raise ValueError(f"{what} must be a non-empty list of distinct integers >= 0, got "
                         f"{seeds!r}")


def parse_seeds(text: str) -> list[int]:
    """``--seeds``: ``N`` (the seeds 0..N-1) or a comma-separated list ``0,3,7``."""
    try:
        if "," in text:
            seeds = [int(part) for part in text.split(",")]
        else:
            n = int(text)
            if n < 1:
                raise ValueError
            seeds = list(range(n))
    except ValueError:
        raise ValueError(f"--seeds must be a count N >= 1 (seeds 0..N-1) or a comma-separated "
                         f"list of integers >= 0, got {text!r}") from None
    _check_seeds("--seeds", seeds)
    return seeds


def t_ci(x, level: float = 0.95) -> dict:
    """Mean and two-sided Student-t interval of the values (n - 1 degrees of freedom):
    ``{"mean", "lo", "hi", "n"}``; lo and hi are NaN for fewer than two values or a non-finite
    one (a diverged run: NaN fails every criterion)."""
    from scipy import stats

    x = np.asarray(x, dtype=float)
    n = len(x)
    if n < 2 or not np.all(np.isfinite(x)):
        return {"mean": float(np.mean(x)) if n and np.all(np.isfinite(x)) else math.nan,
                "lo": math.nan, "hi": math.nan, "n": n}
    mean = float(np.mean(x))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * np.std(x, ddof=1) / math.sqrt(n))
    return {"mean": mean, "lo": mean - half, "hi": mean + half, "n": n}
