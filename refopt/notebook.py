"""What the study notebooks in ``notebooks/`` share: fast mode, where figures go, the claims table.

``REFOPT_NOTEBOOK_FAST=1`` (set by the tests) shrinks each notebook's runs and sends figures to a
fresh temporary directory; otherwise figures are saved to ``figures/`` at the repository root.
Library code never prints; these helpers only return values for the notebook to show.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable


def fast_mode() -> bool:
    """True when ``REFOPT_NOTEBOOK_FAST`` is set to anything but '', '0', 'false' or 'no'."""
    return os.environ.get("REFOPT_NOTEBOOK_FAST", "0").lower() not in ("", "0", "false", "no")


def figure_dir(fast: bool) -> Path:
    """figures/ at the repository root in full mode; a fresh temporary directory in fast mode."""
    if fast:
        out = Path(tempfile.mkdtemp(prefix="refopt_nb_"))
    else:
        out = Path.cwd() / "figures"
        for d in [Path.cwd(), *Path.cwd().parents]:
            if (d / "pyproject.toml").exists() and (d / "notebooks").is_dir():
                out = d / "figures"
                break
    out.mkdir(parents=True, exist_ok=True)
    return out


def figure_saver(prefix: str, directory: Path) -> Callable:
    """``save(fig, name)`` writing ``directory/nb_<prefix>_<name>.png`` and returning its path."""
    def save(fig, name: str) -> Path:
        path = directory / f"nb_{prefix}_{name}.png"
        fig.savefig(path, dpi=120, bbox_inches="tight")
        return path

    return save


def run_rule_claims(rule: str, fast_ids: Iterable[str], fast: bool) -> dict:
    """Run ``rule``'s claims of :mod:`refopt.proofs` (only ``fast_ids`` in fast mode).

    Returns ``{claim_id: ClaimResult}``; raises AssertionError if a claim misses its expected
    status, so a notebook that shows the table also fails when the mathematics does.
    """
    from . import proofs

    fast_ids = tuple(fast_ids)
    claims = [c for c in proofs.all_claims(rule=rule) if not fast or c.id in fast_ids]
    results = {c.id: proofs.run_claim(c) for c in claims}
    assert len(results) >= len(fast_ids), sorted(set(fast_ids) - set(results))
    wrong = [(r.claim_id, r.status, r.detail) for r in results.values() if not r.as_expected]
    assert not wrong, wrong
    return results
