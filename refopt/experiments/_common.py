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
