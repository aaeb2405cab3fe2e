"""``refopt sweep --summary``: a table and a figure of a sweep's results (task ``optimize``).

Runs are grouped by everything in their spec but the seed (rule, hyperparameters, objective,
constants, steps, ...). Per group the table gives the number of seeds, how many diverged, the
final loss as a mean with a two-sided 95 % Student-t interval over the seeds (n - 1 degrees of
freedom; none with one seed) and the mean gradient norm; the figure plots each group's loss curve
(the mean over seeds, with the seeds' range shaded) against the step.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from .. import _io
from ._common import fmt, pyplot, save_figure, t_ci
from .runner import canonical_json


def _label(spec: Mapping, varying: set[str]) -> str:
    parts = [str(spec.get("rule"))]
    hyper = spec.get("hyper", {})
    parts += [f"{k}={hyper[k]}" for k in sorted(hyper) if f"hyper.{k}" in varying]
    if "objective" in varying or "constants" in varying:
        parts.append(f"on {spec.get('objective')}")
    return " ".join(parts)


def t_interval(values, level: float = 0.95) -> tuple[float, float] | None:
    """Two-sided Student-t interval of the mean (n - 1 df); None for fewer than two values."""
    c = t_ci(values, level)
    return None if math.isnan(c["lo"]) else (c["lo"], c["hi"])


def summarize(records: Iterable[Mapping]) -> list[dict]:
    """One row per group of seeds (see the module docstring), sorted by mean final loss."""
    groups: dict[str, list[Mapping]] = {}
    for rec in records:
        spec = {k: v for k, v in rec["spec"].items() if k != "seed"}
        groups.setdefault(canonical_json(spec), []).append(rec)
    specs = [next(iter(g))["spec"] for g in groups.values()]
    varying = set()
    for key in ("rule", "objective", "constants", "steps"):
        if len({canonical_json(s.get(key)) for s in specs}) > 1:
            varying.add(key)
    for name in {k for s in specs for k in s.get("hyper", {})}:
        if len({canonical_json(s.get("hyper", {}).get(name)) for s in specs}) > 1:
            varying.add(f"hyper.{name}")
    rows = []
    for recs in groups.values():
        spec = recs[0]["spec"]
        res = [r["result"] for r in recs]
        final = np.array([np.nan if r.get("final_loss") is None else r["final_loss"] for r in res])
        grad = np.array([np.nan if r.get("mean_grad_norm") is None else r["mean_grad_norm"]
                         for r in res])
        rows.append({"label": _label(spec, varying), "rule": spec.get("rule"),
                     "hyper": spec.get("hyper", {}), "objective": spec.get("objective"),
                     "seeds": len(recs), "diverged": sum(bool(r.get("diverged")) for r in res),
                     "final_loss_mean": float(np.mean(final)),
                     "final_loss_ci95": t_interval(final),
                     "mean_grad_norm": float(np.mean(grad)), "records": recs})
    rows.sort(key=lambda r: (math.isnan(r["final_loss_mean"]), r["final_loss_mean"]))
    return rows


def table_markdown(rows: list[dict]) -> str:
    """The summary rows as a Markdown table (best mean final loss first)."""
    lines = ["| run (rule, swept values) | seeds | diverged | final loss: mean [95% t CI] | "
             "mean grad norm |", "|---|---|---|---|---|"]
    for r in rows:
        ci = r["final_loss_ci95"]
        ci_text = f" [{fmt(ci[0])}, {fmt(ci[1])}]" if ci else " (one seed: no interval)"
        lines.append(f"| {r['label']} | {r['seeds']} | {r['diverged']} | "
                     f"{fmt(r['final_loss_mean'])}{ci_text} | {fmt(r['mean_grad_norm'])} |")
    return "\n".join(lines) + "\n"


def figure(rows: list[dict], path: str | Path, title: str = "") -> Path:
    """Loss curves (mean over seeds, range shaded) of every row; saved atomically as PNG."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for i, r in enumerate(rows):
        curves = [rec["result"] for rec in r["records"] if rec["result"].get("t")]
        if not curves:
            continue
        t = np.asarray(curves[0]["t"], dtype=float)
        loss = np.array([[np.nan if v is None else v for v in c["loss"]] for c in curves
                         if len(c["loss"]) == len(t)], dtype=float)
        color = f"C{i % 10}"
        ax.plot(t, np.nanmean(loss, axis=0), color=color,
                label=f"{r['label']} ({r['seeds']} seeds)")
        ax.fill_between(t, np.nanmin(loss, axis=0), np.nanmax(loss, axis=0), color=color,
                        alpha=0.15, lw=0)
    ax.set_yscale("log")
    ax.set(xlabel="step t", ylabel="f(x_t) (mean over seeds; range shaded)", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def write_summary(records: Iterable[Mapping], results_path: str | Path) -> dict:
    """Write ``<results>.summary.md`` (the table) and ``<results>.summary.png`` (the figure)
    next to the results file; returns ``{"table": text, "table_path", "figure_path"}``."""
    results_path = Path(results_path)
    rows = summarize([r for r in records if r["spec"].get("task", "optimize") == "optimize"])
    text = table_markdown(rows)
    table_path = results_path.with_name(results_path.name + ".summary.md")
    _io.atomic_write_bytes(table_path, text.encode("utf-8"))
    fig_path = figure(rows, results_path.with_name(results_path.name + ".summary.png"),
                      title=results_path.name)
    return {"table": text, "table_path": table_path, "figure_path": fig_path, "rows": rows}
