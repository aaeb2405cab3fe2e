"""``refopt report``: run the experiments and the proofs, and write a Markdown report of every
claim of the three papers with its verdict, the evidence and the figures.

Verdicts: *reproduced*, *not reproduced* (both from measured numbers against a stated criterion),
*not checkable here* (with the reason) and *withdrawn by its authors*. The claims are those of
``proofs/spec/{adamx,adams,alphaadam}.md`` (abstract/empirical claims in section 4/5, the
theory in section 3/4), listed in :data:`CLAIMS`; the theory table comes from the proofs registry
(:func:`refopt.proofs.run_all`), imported lazily.

Everything is written atomically into ``DIR`` (default ``reports/``): ``report.md``,
``report.json`` (all numbers), ``figures/*.png`` and ``results/*.jsonl`` (the runner's resumable
results: rerunning the report reuses finished runs; delete ``results/`` to recompute).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import _io
from ._common import (NOT_CHECKABLE, NOT_REPRODUCED, REPRODUCED, VERDICTS, WITHDRAWN,
                      ExperimentResult, Verdict, decide)

PAPERS = {
    "adamx": "AdamX / AdamNX: Zhu, Xiao, Min, arXiv 2511.13465",
    "adams": "AdamS: Zhang, Wang, Chen, arXiv 2505.16363 (EMNLP 2025)",
    "alphaadam": "AlphaAdam: Chang, Li, Yuan, arXiv 2501.18094 (v2 withdrew Theorem 3.5)",
}

_SCALE = "needs GPU-scale training of a large model on a real data set, outside a CPU toolkit"


@dataclass(frozen=True)
class PaperClaim:
    """A claim of a paper: where it comes from and how the report decides it.

    ``check`` is the id of an experiment verdict (``X-transition``, ``S-rate``, ...) or of a
    built-in check (``S-memory``, ``A-memory``, ``A-table``); empty when ``status`` is fixed
    (``not checkable here`` or ``withdrawn by its authors``), with the ``reason``.
    """

    id: str
    paper: str
    claim: str
    source: str
    check: str = ""
    status: str = ""
    reason: str = ""
    note: str = ""   # said before the evidence of a checked row (what part of the claim it probes)


CLAIMS: tuple[PaperClaim, ...] = (
    # -- AdamX / AdamNX ----------------------------------------------------------------------
    PaperClaim("adamx.C1", "adamx", "The exponential decay of the second-moment rate "
               "'gradually weakens the learning step correction strength'", "[v3] abstract",
               check="X-transition"),
    PaperClaim("adamx.C2", "adamx", "The method 'degrades to momentum SGD in the stable training "
               "period'", "[v3] abstract (v1: 'degrades to SGD')", check="X-transition"),
    PaperClaim("adamx.C3", "adamx", "Its second-moment decay rate 'is better than the current' "
               "ones; AdamX 'can stably outperform Adam and its variants'", "[v1, v3] abstract",
               check="R-adamx", note="probed against Adam only, at small scale (the paper's "
               "CIFAR-100 ConvNeXt-Base / EfficientNetV2-L runs of 62,480 steps are out of reach "
               "and publish no numbers; refopt tunes on a validation split, not the test set)."),
    PaperClaim("adamx.C4", "adamx", "Consistent improvements over Adam and AdaX on image "
               "classification, object detection and semantic segmentation",
               "[sst] (AI-written summary)", check="R-adamx",
               note="image classification only (an AI-written summary states the claim; "
               "detection and segmentation are not probed)."),
    PaperClaim("adamx.C5", "adamx", "Results on NLP benchmarks against AdamW and AdaFactor",
               "newx.sg AI summary of v1 only", status=NOT_CHECKABLE,
               reason="not a claim of the paper: the real v1/v3 abstracts name no NLP benchmark "
               "or AdaFactor; refopt does not attribute it"),
    PaperClaim("adamx.T8", "adamx", "(spec, Derived) No uniform step bound: a coordinate that "
               "activates late takes steps up to 6.76 eta (K = 10^3, beta2 = 0.99)",
               "spec adamx.md T8", check="X-T8"),
    # -- AdamS -------------------------------------------------------------------------------
    PaperClaim("adams.C1", "adams", "Provably converges at rate O~(T^-1/4) under "
               "(L0,L1)-smoothness with sub-Gaussian noise", "[sst]; spec 4.2", check="S-rate"),
    PaperClaim("adams.C2", "adams", "The rate matches known lower bounds", "[sst]",
               status=NOT_CHECKABLE, reason="a statement about the literature (the eps^-4 lower "
               "bound for first-order methods), not a measurable property of a run"),
    PaperClaim("adams.C3", "adams", "'Rigorous theoretical convergence guarantees and practical "
               "guidelines for hyperparameter selection'", "[abs]", status=NOT_CHECKABLE,
               reason="the theorem statements, conditions and guidelines are not public (spec "
               "4.3); the checkable consequences (A1-A14) are in the theory table"),
    PaperClaim("adams.C4", "adams", "Pretraining comparable to or better than AdamW and better "
               "than SGDM (GPT-2; Llama 2 up to 13B)", "[abs], [cp]", check="R-adams",
               note="against AdamW (not SGDM), byte-level GPT-2-style decoders at three small "
               "sizes instead of GPT-2/Llama 2."),
    PaperClaim("adams.C5", "adams", "Fig. 1: Llama 2-7B train/val loss comparable to or better "
               "than the baselines", "[cp]", check="R-adams-curves",
               note="train/val loss curves against AdamW at small scale, not Llama 2-7B."),
    PaperClaim("adams.C6", "adams", "RL post-training works (DeepSeek R1-Zero replication)",
               "[abs], [orv]", status=NOT_CHECKABLE,
               reason="no numbers; RL post-training of an LLM " + _SCALE),
    PaperClaim("adams.C7", "adams", "Optimizer memory halved: one state tensor, as SGDM "
               "(~50% of AdamW's state)", "[abs], [cp]", check="S-memory"),
    PaperClaim("adams.C8", "adams", "'In some settings, increased throughput'", "[sst]",
               status=NOT_CHECKABLE, reason="settings and numbers unstated; throughput depends "
               "on fused GPU kernels and hardware, not on the update rule's reference"),
    PaperClaim("adams.C9", "adams", "AdamS 'can directly inherit hyperparameters of AdamW' "
               "(the nanoGPT AdamW recipe)", "[abs], [code]", check="R-adams-inherit",
               note="AdamW's validation-tuned lr with the nanoGPT betas/eps/decay, used "
               "unchanged by AdamS, at small scale; the step bound that makes it plausible "
               "(A2: |step| <= sqrt(C) eta) is in the theory table."),
    PaperClaim("adams.N1", "adams", "(spec, Derived) Fixed-lr GD diverges on cosh where AdamS "
               "converges and stays O(eta)", "spec adams.md N1", check="S-N1"),
    PaperClaim("adams.F1", "adams", "(spec, Derived) Paper form vs official-code form: first "
               "step 0.4472 eta vs 4.472 eta, then the forms coincide", "spec adams.md 2.3",
               check="S-forms"),
    # -- AlphaAdam ---------------------------------------------------------------------------
    PaperClaim("alphaadam.C1", "alphaadam", "Table 1: RoBERTa-base GLUE average 83.63 vs "
               "AdamW 83.24 (and the other baselines)", "[gn] image of Table 1",
               status=NOT_CHECKABLE, reason="fine-tuning RoBERTa-base on 7 GLUE tasks with "
               "unknown hyperparameters and seeds " + _SCALE + "; no public code"),
    PaperClaim("alphaadam.C1a", "alphaadam", "Table 1 arithmetic: each printed Avg is the mean "
               "of its 7 task scores", "[gn] image of Table 1", check="A-table"),
    PaperClaim("alphaadam.C2", "alphaadam", "Table 2: Llama-2-7B GSM-8k accuracy 34.94 vs Adam "
               "34.53, lowest train loss 0.048", "[gn] image of Table 2", status=NOT_CHECKABLE,
               reason="fine-tuning a 7B model " + _SCALE),
    PaperClaim("alphaadam.C3", "alphaadam", "Fig. 2: GPT-2 (125M/355M/'744M') training loss "
               "below CAdamW and AdamW at every size", "[gn] image of Figure 2",
               check="R-alpha", note="byte-level GPT-2-style decoders at three small sizes "
               "instead of GPT-2 125M-774M on OpenWebText; the toy analogues on the noisy "
               "quadratic are alphaadam.Q1 and Q2."),
    PaperClaim("alphaadam.Q1", "alphaadam", "(toy analogue of C3's fixed-budget comparison, "
               "spec 4.5) Lower loss than Adam and C-AdamW after 3000 steps on the heterogeneous "
               "noisy quadratic", "spec alphaadam.md 4.5", check="A-speed"),
    PaperClaim("alphaadam.Q2", "alphaadam", "(spec 4.5) Lower stationary noise floor than Adam "
               "and C-AdamW on the heterogeneous noisy quadratic", "spec alphaadam.md 4.5",
               check="A-floor"),
    PaperClaim("alphaadam.C4", "alphaadam", "'Up to 32% faster convergence than AdamW'",
               "[newx] (AI summary only)", status=NOT_CHECKABLE,
               reason="appears only in an AI summary; no setting is given to measure it in"),
    PaperClaim("alphaadam.C5", "alphaadam", "Theoretical convergence guarantee (Theorem 3.5)",
               "[abs]; withdrawn in arXiv v2 [shd]", status=WITHDRAWN,
               reason="the v2 comment withdraws Theorem 3.5 as not rigorous, its premise a "
               "non-standard assumption; the checkable facts B1-B9 are in the theory table"),
    PaperClaim("alphaadam.C6", "alphaadam", "No extra GPU memory: the state is exactly Adam's "
               "(m, v)", "[newx], [abs]", check="A-memory"),
    PaperClaim("alphaadam.C7", "alphaadam", "Asynchronous masked updates: coordinates within one "
               "layer update at different iterations", "[abs], [cp], [newx]", check="A-async"),
    PaperClaim("alphaadam.C8", "alphaadam", "The adaptive (dynamic) alpha compensates for the "
               "masked coordinates", "[abs], [cp]", check="A-alpha"),
    PaperClaim("alphaadam.C9", "alphaadam", "Applicable to most momentum-based optimizers",
               "[abs]", status=NOT_CHECKABLE, reason="the paper's other bases are not public; "
               "refopt implements the AdamW base only (spec 2.7 bases are Assumed)"),
    PaperClaim("alphaadam.F1", "alphaadam", "(spec, Derived) First-step policy: the strict "
               "m_prev mask is empty at t = 1; 'unmasked' gives AdamW's first step",
               "spec alphaadam.md 2.4", check="A-first"),
)

# spec alphaadam.md section 5, Table 1 (from [gn]): method -> (7 task scores, printed Avg).
GLUE_TABLE = {
    "AdamW": ((89.17, 89.65, 58.04, 68.23, 94.24, 92.4, 90.97), 83.24),
    "Adam-mini": ((87.01, 88.15, 55.30, 56.32, 93.35, 92.02, 89.79), 80.28),
    "GaLore (r=8)": ((86.19, 88.97, 55.12, 69.45, 94.15, 92.01, 89.86), 82.25),
    "LDAdam (r=8)": ((88.32, 90.03, 60.60, 67.58, 94.49, 92.82, 91.23), 83.58),
    "CAdamW": ((88.48, 89.65, 54.60, 70.12, 90.98, 92.04, 91.13), 82.42),
    "AlphaAdam": ((88.97, 90.42, 57.25, 71.49, 93.35, 92.18, 91.76), 83.63),
}


def table_check() -> Verdict:
    """Recompute each Table 1 average; a row agrees if |mean - printed| <= 0.005 (rounding).

    The evidence names only the rows that disagree (with their recomputed mean); the others are
    counted."""
    bad = []
    for method, (scores, printed) in GLUE_TABLE.items():
        mean = float(np.mean(scores))
        if abs(mean - printed) > 0.005 + 1e-9:
            bad.append(f"{method}: mean of its 7 scores {mean:.4f}, printed {printed} (off by "
                       f"{mean - printed:+.4f})")
    agree = len(GLUE_TABLE) - len(bad)
    evidence = ("; ".join(bad) + f"; the other {agree} rows agree" if bad
                else f"all {agree} rows agree")
    short = (f"{len(bad)} of {len(GLUE_TABLE)} printed averages {'is' if len(bad) == 1 else 'are'}"
             f" off by more than rounding (needed: none)"
             + (f": {bad[0].split(':')[0]}" if len(bad) == 1 else ""))
    return Verdict("A-table", decide(not bad),
                   "|mean of the 7 scores - printed Avg| <= 0.005 (rounding to 2 decimals) for "
                   "every row", evidence, short)


def state_bytes(rule_name: str, n: int = 1_000_000, **hyper: Any) -> int:
    """Bytes of optimizer state for one float32 tensor of n elements (buffers only)."""
    from ..registry import get_rule

    rule = get_rule(rule_name, **hyper)
    state = rule.init([np.zeros(n, dtype=np.float32)])
    return int(sum(getattr(state, b)[0].nbytes for b in rule.buffers))


def memory_checks() -> list[Verdict]:
    adams, adamw, sgdm = state_bytes("adams"), state_bytes("adamw"), state_bytes("sgdm")
    alpha, adam = state_bytes("alphaadam"), state_bytes("adam")
    return [
        Verdict("S-memory", decide(adams == sgdm and 2 * adams == adamw),
                "state bytes of AdamS == SGDM's == half of AdamW's (float32 tensor, 10^6 "
                "elements; buffers of the reference rules)",
                f"AdamS {adams:,} B, SGDM {sgdm:,} B, AdamW {adamw:,} B (ratio "
                f"{adams / adamw:.2f}); at 7B fp32 parameters: {7e3 * adams / 1e9:.0f} GB vs "
                f"{7e3 * adamw / 1e9:.0f} GB",
                f"state bytes per fp32 parameter: AdamS {adams / 1e6:g}, SGDM {sgdm / 1e6:g}, "
                f"AdamW {adamw / 1e6:g} (needed: AdamS = SGDM = AdamW / 2)"),
        Verdict("A-memory", decide(alpha == adam == adamw),
                "state bytes of AlphaAdam == Adam's == AdamW's (the mask and alpha are not "
                "stored)", f"AlphaAdam {alpha:,} B, Adam {adam:,} B, AdamW {adamw:,} B",
                f"state bytes per fp32 parameter: AlphaAdam {alpha / 1e6:g}, Adam {adam / 1e6:g} "
                f"(needed: equal)"),
    ]


def _proof_results(rule: str | None = None):
    """The proofs registry's results, or (None, reason) when it is unavailable."""
    try:
        from refopt import proofs  # noqa: F401  (installed from proofs/)
        from refopt.proofs import run_all
    except ImportError as exc:
        return None, f"proofs registry unavailable ({exc})"
    try:
        return run_all(rule), ""
    except Exception as exc:  # a broken registry must not hide the rest of the report
        return None, f"proofs registry failed: {type(exc).__name__}: {exc}"


# Proof obligations that the registry leaves open because they are experiments: their verdict
# is the experiment's.
PROOF_EXPERIMENTS = {"adams.N3": "S-rate"}


def proof_verdict(result, checks: dict | None = None) -> str:
    """Map a proof status to a report verdict (an experiment's verdict for PROOF_EXPERIMENTS)."""
    status = getattr(result, "status", "")
    key = PROOF_EXPERIMENTS.get(getattr(result, "claim_id", ""))
    if status == "open" and checks and key in checks:
        return checks[key].verdict
    text = f"{getattr(result, 'title', '')} {getattr(result, 'detail', '')}".lower()
    if status in ("proved", "checked numerically only"):
        return REPRODUCED
    if status == "refuted":
        return NOT_REPRODUCED
    if status == "open" and "withdr" in text:
        return WITHDRAWN
    return NOT_CHECKABLE


def _md_cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def real_data_result(out_dir: Path, rerun: bool, **kw) -> ExperimentResult:
    """The real-data experiment: rerun (``--real``: the full configuration, into
    ``out_dir/results``) or, by default, re-analysed from the committed results; when neither
    is possible (no torch/scikit-learn, nothing committed) its verdicts are not checkable here,
    with the reason."""
    from . import real_data

    try:
        if rerun:
            return real_data.run("full", out_dir / "results", fig_dir=out_dir / "figures", **kw)
        return real_data.from_committed(out_dir / "figures")
    except (ImportError, FileNotFoundError) as exc:
        if rerun:   # asked for: the caller reports the missing dependency
            raise
        why = f"real-data results unavailable ({type(exc).__name__}: {exc})"
        return ExperimentResult("real_data", "unavailable", {}, [
            Verdict(k, NOT_CHECKABLE, c, why) for k, c in real_data.CRITERIA.items()])


def run_report(out_dir: str | Path = "reports", *, config: str = "quick",
               include_proofs: bool = True, max_workers: int | None = 1, scheduler=None,
               progress: bool = False, real: bool = False, config_file: str | Path | None = None,
               seeds: list[int] | None = None, rules: list[str] | None = None) -> dict:
    """Run every experiment (``config`` quick, full or tiny) and the proofs; write the report.

    The real-data rows (``real_data``) read the committed results unless ``real`` reruns them.
    ``config_file`` (``--config``) names a configuration file instead (see
    :func:`refopt.experiments._common.load_report_config`; the shipped ones are
    ``refopt/experiments/configs/*.json``); ``seeds`` (``--seeds``) replaces every experiment's
    seeds; ``rules`` (``--rules``) runs only the experiments and claims of those papers
    (``adamx``, ``adams``, ``alphaadam``).

    Returns a summary dict: ``path`` (report.md), ``verdicts`` (claim id -> verdict),
    ``seconds`` and ``counts`` (verdict -> number of paper claims).
    """
    from . import adams_rate, adamx_transition, alphaadam_masks
    from ._common import EXPERIMENT_RULE, SHIPPED_CONFIGS, load_report_config

    modules = {"adamx_transition": adamx_transition, "adams_rate": adams_rate,
               "alphaadam_masks": alphaadam_masks}
    if rules is not None:
        bad = sorted(set(rules) - set(PAPERS))
        if bad or not rules:
            raise ValueError(f"--rules must name some of {list(PAPERS)}, got {list(rules)!r}")
    papers = [p for p in PAPERS if rules is None or p in rules]
    if config_file is not None:
        config, settings = load_report_config(config_file, seeds)
        for name, module in modules.items():
            module.CONFIGS[config] = settings[name]
    elif config not in SHIPPED_CONFIGS:
        raise ValueError(f"config must be 'quick', 'full' or 'tiny', got {config!r}")
    elif seeds is not None:
        base = config
        config = f"{base}-seeds{len(seeds)}"
        for module in modules.values():
            module.CONFIGS[config] = {**module.CONFIGS[base], "seeds": list(seeds)}
    start = time.perf_counter()
    out_dir = Path(out_dir)
    kw = {"max_workers": max_workers, "scheduler": scheduler, "progress": progress}
    experiments: list[ExperimentResult] = [
        module.run(config, out_dir, **kw) for name, module in modules.items()
        if EXPERIMENT_RULE[name] in papers]
    experiments.append(real_data_result(out_dir, real, **kw))
    checks: dict[str, Verdict] = {v.claim_id: v for e in experiments for v in e.verdicts}
    for v in (*memory_checks(), table_check()):
        checks[v.claim_id] = v
    proofs, proofs_note = (None, "skipped (--skip-proofs)")
    if include_proofs:
        proofs, proofs_note = _proof_results()
        if proofs is not None:
            proofs = [r for r in proofs if r.rule in papers]
    seconds = time.perf_counter() - start

    rows = []
    for c in CLAIMS:
        if c.paper not in papers:
            continue
        if c.check:
            v = checks[c.check]
            cell = v.summary or _short(_measured(v.evidence), 160)
            scope = " Scope: see the note under the table." if c.note else ""
            rows.append((c, v.verdict,
                         f"{cell}.{scope} [{c.check}](#{_anchor(c.check)})"))
        else:
            rows.append((c, c.status, c.reason))
    counts = {k: sum(1 for _, v, _ in rows if v == k) for k in VERDICTS}
    text = _render(rows, experiments, checks, proofs, proofs_note, config, seconds, counts, out_dir,
                   papers)
    path = out_dir / "report.md"
    _io.atomic_write_bytes(path, text.encode("utf-8"))
    summary = {"config": config, "seconds": seconds, "counts": counts,
               "verdicts": {c.id: v for c, v, _ in rows},
               "experiments": [e.to_dict() for e in experiments],
               "checks": {k: vars(v) for k, v in checks.items()},
               "proofs": None if proofs is None else [
                   {"claim_id": r.claim_id, "rule": r.rule, "status": r.status,
                    "expected_status": r.expected_status, "verdict": proof_verdict(r, checks)}
                   for r in proofs], "proofs_note": proofs_note}
    from .runner import jsonable
    _io.atomic_write_json(out_dir / "report.json", jsonable(summary))
    summary["path"] = path
    return summary


def _render(rows, experiments, checks, proofs, proofs_note, config, seconds, counts, out_dir,
            papers=tuple(PAPERS)):
    from .. import __version__

    L = ["# refopt reproduction report", "",
         f"Generated by `refopt report{' --full' if config == 'full' else ''}` (refopt "
         f"{__version__}, configuration **{config}**, {seconds:.0f} s). Every claim of the three "
         "papers (from `proofs/spec/*.md`) with its verdict: *reproduced* / *not reproduced* "
         "(measured here against the stated criterion), *not checkable here* (with the reason) "
         "or *withdrawn by its authors*. Rows marked (spec, Derived) are expectations derived in "
         "the specs, checked the same way. All experiments but real_data are seeded float64 runs "
         "of the NumPy reference rules; real_data trains small float32 PyTorch models with "
         "refopt.torch on real data (committed results unless `--real`). The raw results are in "
         "`results/*.jsonl`, all numbers in `report.json`.", "",
         "Summary (paper-claim rows): " + ", ".join(f"{k}: {n}" for k, n in counts.items()), "",
         "How to read the tables: each checked row gives the measured numbers and, in "
         "parentheses, what the criterion needs; the link leads to the full criterion and "
         "evidence under *Experiments*. Rows that are not checked give the reason instead.", ""]
    for paper, title in ((p, t) for p, t in PAPERS.items() if p in papers):
        L += [f"## {title}", "", "| id | claim | source | verdict | evidence / reason |",
              "|---|---|---|---|---|"]
        for c, v, ev in rows:
            if c.paper == paper:
                L.append(f"| {c.id} | {_md_cell(c.claim)} | {_md_cell(c.source)} | **{v}** | "
                         f"{_md_cell(ev)} |")
        notes = [c for c, _, _ in rows if c.paper == paper and c.check and c.note]
        if notes:
            L += ["", "What the checked rows probe (scope):", ""]
            L += [f"- **{c.id}**: {c.note}" for c in notes]
        L.append("")
    L += ["## Experiments", ""]
    for e in experiments:
        committed = e.numbers.get("committed")
        if committed:
            L += [f"### {e.name} (committed results, {committed['config']} configuration)", ""]
        else:
            L += [f"### {e.name} ({e.config}, {e.seconds:.1f} s)", ""]
        doc = _first_paragraph(e.name)
        if doc:
            L += [doc, ""]
        if committed:
            L += [f"Results: {e.config}. Re-analysed here without training; `--real` reruns "
                  f"them.", ""]
        used = _used(e)
        if used:
            L += [used, ""]
        scale = next((_scale(v.evidence) for v in e.verdicts if _scale(v.evidence)), "")
        if scale:
            L += [f"Scale of every run below: {scale}.", ""]
        for v in e.verdicts:
            L += [f"- <a id=\"{_anchor(v.claim_id)}\"></a>**{v.claim_id}: {v.verdict}.** "
                  f"Criterion: {v.criterion}. Measured: "
                  f"{_measured(v.evidence)}."]
        if e.numbers.get("table_md"):   # real_data: per-arm results
            L += ["", "Per task and arm: mean over the evaluation seeds [95 % t interval]; loss "
                  "in nats (nats/byte for the LM), accuracy as a fraction, optimizer state in "
                  "KiB; '(grid end)': the selected lr is an end of the tuning grid.", "",
                  e.numbers["table_md"]]
        for fig in e.figures:
            rel = Path(fig).relative_to(out_dir) if Path(fig).is_relative_to(out_dir) else fig
            caption = _caption(Path(fig).stem)
            L += ["", f"![{e.name}: {Path(fig).stem}]({rel})"]
            if caption:
                L += ["", f"*{caption}*"]
        L.append("")
    L += ["### Built-in checks", ""]
    for key in ("S-memory", "A-memory", "A-table"):
        v = checks[key]
        L.append(f"- <a id=\"{_anchor(key)}\"></a>**{key}: {v.verdict}.** Criterion: "
                 f"{v.criterion}. Measured: {v.evidence}.")
    L += ["", "The memory checks use refopt's reference rules, not a configuration's rule "
          "under test; the table check recomputes the paper's printed averages."]
    L += ["", "## Theory claims (proofs registry)", ""]
    if proofs is None:
        L += [f"_{proofs_note}._ Run `refopt prove` once the registry is available.", ""]
    else:
        L += ["Each checkable fact of the specs as a proof obligation (`refopt prove`): a sympy "
              "derivation and/or a float64 cross-check against the reference. Verdict mapping: "
              "proved or checked numerically -> reproduced; refuted -> not reproduced; open -> "
              "not checkable here (withdrawn by its authors where the claim was withdrawn), "
              "except an open obligation that an experiment measures ("
              + ", ".join(f"{k}: {v}" for k, v in PROOF_EXPERIMENTS.items())
              + "), whose proof status reads 'open: measured by ...' and whose verdict is the "
              "experiment's. The verdict column uses the claim tables' words; the proof status "
              "is the registry's (flagged where it differs from the status the registry "
              "expects). The detail column holds the record's first clauses ('(...)': more "
              "follow); `refopt prove --json -` prints all of it.", "",
              "| id | rule | title | verdict | proof status | detail |",
              "|---|---|---|---|---|---|"]
        for r in proofs:
            flag = ("" if r.status == r.expected_status
                    else f" (unexpected: expected {r.expected_status})")
            detail = _first_clauses(r.detail, 140)
            exp = PROOF_EXPERIMENTS.get(r.claim_id)
            status = r.status
            if r.status == "open" and exp in checks:
                status = f"open: measured by {exp}"
                detail = (f"no proof; measured by [{exp}](#{_anchor(exp)}): "
                          f"{checks[exp].summary or _short(checks[exp].evidence, 140)}")
            L.append(f"| {r.claim_id} | {r.rule} | {_md_cell(r.title)} | "
                     f"**{proof_verdict(r, checks)}** | {status}{flag} | {_md_cell(detail)} |")
        tally: dict[str, int] = {}
        for r in proofs:
            tally[proof_verdict(r, checks)] = tally.get(proof_verdict(r, checks), 0) + 1
        L += ["", "Theory summary: " + ", ".join(f"{k}: {n}" for k, n in tally.items()), ""]
    return "\n".join(L) + "\n"


#: One line under each figure: what it shows (matched on the end of the file's stem).
FIGURE_CAPTIONS = (
    ("local_slope", "S-rate: the slope between consecutive horizons with 95 % t intervals over "
                    "the seeds; the shaded region is what the rate criterion rejects (upper) or "
                    "requires (equivalence)."),
    ("_v", "X-transition: relative change of v per step (median over coordinates and seeds); "
           "AdamX's falls to rounding level after the memory horizon H, Adam's does not."),
    ("_lr", "X-transition: effective learning rate of three coordinates of different curvature "
            "h (seed 0): AdamX's settles, Adam's keeps moving with the noise."),
    ("_twin", "X-transition: distance to a momentum-SGD twin whose preconditioner is frozen at "
              "t0, relative to the distance travelled since t0 (median over seeds)."),
    ("_t8", "X-T8: step of a coordinate whose gradient is 0 for K steps and 1 after; bars "
            "measured, black marks the spec's table."),
    ("_fit", "S-rate: the verdict's statistic, the average gradient norm, one point per (T, "
             "seed) run, with its least-squares fit and the claimed slope -1/4."),
    ("_min", "S-rate, reported only: the minimum gradient norm over the run (a noisy "
             "statistic that falls with T even without convergence)."),
    ("_n1", "S-N1: |x_t| on cosh for GD (lr 0.5; it overflows) and for AdamS from three "
            "starting points (it settles within O(eta))."),
    ("_forms", "S-forms: update-norm ratio of AdamS's official-code form to its paper form on "
               "the same gradients; it starts at 10 and stays under 1/(1-beta1^t)."),
    ("_loss", "A-speed: loss over time for the baselines and the default AlphaAdam (and "
              "alpha = 1); the shaded steps are the budget's window."),
    ("_density_exact", "A-async: kept fraction of the default AlphaAdam with exact gradients "
                       "(Rosenbrock, logistic regression)."),
    ("_density", "A-async: kept fraction of the coordinates per step on the noisy quadratic."),
    ("_budget", "A-speed, A-alpha, A-first: loss after the budget for every variant, 95 % t "
                "intervals over the seeds."),
    ("_floor", "A-floor: loss from the minimiser x* = 0 as the noise drives it to its floor; "
               "the shaded last quarter is what the verdict averages."),
    ("_digits", "R-adamx: validation loss of AdamX and Adam on digits (bands: 95 % t over the "
                "seeds)."),
    ("_curves_adams", "R-adams-curves: validation loss of AdamS (tuned, and with AdamW's "
                      "hyperparameters) and AdamW at each LM size."),
    ("_curves_alpha", "R-alpha: training loss of AlphaAdam, AdamW and C-AdamW at each LM size."),
    ("_size", "R-adams, R-adams-inherit: final test loss against model size."),
    ("_memory", "S-memory and A-memory on a real model: optimizer state in KiB; AdamS holds "
                "one tensor the size of the parameters."),
)


def _caption(stem: str) -> str:
    for key, text in FIGURE_CAPTIONS:
        if (key in stem) if key == "local_slope" else stem.endswith(key):
            return text
    return ""


def _anchor(check_id: str) -> str:
    """The HTML id of a check's details in the report (``S-rate`` -> ``check-s-rate``)."""
    return "check-" + "".join(ch if ch.isalnum() else "-" for ch in check_id.lower())


#: How the real-data evidence opens: the scale of the run, in parentheses.
_SCALE_PREFIX = "At small scale ("


def _measured(evidence: str) -> str:
    """The evidence for a claim-table cell: without the real-data runs' opening statement of
    their scale (the row's note says "at small scale" and the full evidence below keeps the
    statement), so that the cut cell shows the measurement, not the same preamble each time."""
    if not evidence.startswith(_SCALE_PREFIX):
        return evidence
    depth = 0
    for i in range(len(_SCALE_PREFIX) - 1, len(evidence)):
        depth += {"(": 1, ")": -1}.get(evidence[i], 0)
        if depth == 0:
            return evidence[i + 1:].lstrip(" :")
    return evidence


def _scale(evidence: str) -> str:
    """The real-data evidence's opening statement of scale (without "At"), or ""."""
    if not evidence.startswith(_SCALE_PREFIX):
        return ""
    rest = _measured(evidence)
    return evidence[3:len(evidence) - len(rest)].rstrip(" :")


def _used(e: ExperimentResult) -> str:
    """Which rule (and objective) an experiment ran, as the report states it."""
    rule = e.numbers.get("rule_under_test")
    if not rule:
        return ""
    text = f"Rule under test: `{rule}`"
    if e.numbers.get("objective"):
        text += f"; objective: `{e.numbers['objective']}` with constants " \
                f"`{e.numbers.get('constants', {})}`"
    return text + " (the configuration's `rule_under_test`" + (
        ", `objective`, `constants`)." if e.numbers.get("objective") else ").")


def _first_clauses(text: str, n: int = 140) -> str:
    """The record's opening clauses ("; "-separated) that fit in about n characters, with
    " (...)" when some were left out; a first clause longer than n is cut at a word."""
    text = " ".join(str(text).split())
    if len(text) <= n:
        return text
    parts, out = text.split("; "), ""
    for part in parts:
        if len(out) + len(part) + 2 > n:
            break
        out = f"{out}; {part}" if out else part
    if not out:
        out = text[:n].rsplit(" ", 1)[0]
    return out + " (...)"


def _short(text: str, n: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 3] + "..."


def _first_paragraph(name: str) -> str:
    import importlib

    import re

    doc = importlib.import_module(f"refopt.experiments.{name}").__doc__ or ""
    para = " ".join(doc.strip().split("\n\n")[0].split())
    # reST roles and literals as Markdown code.
    return re.sub(r":\w+:`([^`]+)`", r"`\1`", para).replace("``", "`")
