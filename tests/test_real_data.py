"""Real-data experiments (issue 16): the quick mode end to end (tuning on validation only, paired
evaluation seeds, resumable), the verdict criteria on planted numbers, the t intervals, and the
report rows read from the committed results."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from refopt.experiments import real_data as R
from refopt.experiments._common import NOT_CHECKABLE, NOT_REPRODUCED, REPRODUCED


def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_quick_mode_tunes_on_validation_only_and_resumes(tmp_path):
    pytest.importorskip("torch", reason="the real-data runs need torch")
    pytest.importorskip("sklearn", reason="the digits task needs scikit-learn (refopt[real])")
    res = R.run("quick", tmp_path)
    assert [v.claim_id for v in res.verdicts] == list(R.CRITERIA)
    assert {v.verdict for v in res.verdicts} <= {REPRODUCED, NOT_REPRODUCED}
    for v in res.verdicts:
        assert v.criterion == R.CRITERIA[v.claim_id] and "toy scale" in v.evidence
    tune, final = _lines(tmp_path / "real_tune.jsonl"), _lines(tmp_path / "real_final.jsonl")
    cfg = R.CONFIGS["quick"]
    assert len(tune) == len(R.tune_specs(cfg)) and len(final) == len(R.final_specs(
        cfg, R.select(tune)))
    # Tuning never looks at the test split; evaluation runs report it once, at the end.
    assert all("test_loss" not in r["result"] and r["spec"]["eval_test"] is False for r in tune)
    assert all(r["result"]["test_loss"] is not None for r in final)
    assert {r["spec"]["seed"] for r in tune} == {cfg["digits"]["tune_seed"]}
    assert not {r["spec"]["seed"] for r in final} & {cfg["digits"]["tune_seed"]}
    # AdamS-inherit runs with AdamW's selected lr and hyperparameters, untuned.
    chosen = R.select(tune)
    for r in final:
        s = r["spec"]
        if s["arm"] == "adams_inherit":
            w = chosen[(s["problem"], s["size"], "adamw")]
            assert s["lr"] == w["lr"]
            assert {k: s["hyper"][k] for k in ("betas", "eps", "weight_decay")} == \
                {k: w["hyper"][k] for k in ("betas", "eps", "weight_decay")}
    # Same seed, same data and init across arms: AdamS's state is half of AdamW's.
    by = {(r["spec"]["problem"], r["spec"]["arm"], r["spec"]["seed"]): r["result"] for r in final}
    assert by[("digits", "adams", 0)]["state_bytes"] * 2 == by[("digits", "adamw", 0)][
        "state_bytes"]
    assert by[("lm", "adamw", 0)]["corpus_sha256"] == R.stdlib_corpus()["sha256"]
    for fig in res.figures:
        assert fig.is_file() and fig.stat().st_size > 1000
    # A run of an earlier grid left in the file (an lr no longer selected) is not mixed in.
    stale = dict(final[0], key="0" * 16, spec=dict(final[0]["spec"], lr=123.0))
    with open(tmp_path / "real_final.jsonl", "a") as fh:
        fh.write(json.dumps(stale) + "\n")
    t2, f2 = R.current_records(cfg, tmp_path / "real_tune.jsonl", tmp_path / "real_final.jsonl")
    assert f2 == final and t2 == tune
    # Resumable: a second run reuses every record and appends nothing.
    size = (tmp_path / "real_final.jsonl").stat().st_size
    again = R.run("quick", tmp_path)
    assert (tmp_path / "real_final.jsonl").stat().st_size == size
    assert [v.evidence for v in again.verdicts] == [v.evidence for v in res.verdicts]


def _rec(problem, size, arm, seed, **res):
    curve = res.pop("curve", {"step": [1, 2], "train_loss": [1.0, 1.0],
                              "val_loss": [res.get("test_loss", 1.0)] * 2})
    return {"spec": {"problem": problem, "size": size, "arm": arm, "seed": seed},
            "result": dict({"diverged": False, "curve": curve}, **res)}


def _planted(adamx_gain=0.02, adams_loss=2.0, alpha_loss=1.9, inherit_acc=0.95):
    recs = []
    rng = np.random.default_rng(0)
    for seed in range(5):
        e = 1e-3 * rng.standard_normal()
        recs += [_rec("digits", None, "adam", seed, test_acc=0.95 + e),
                 _rec("digits", None, "adamx", seed, test_acc=0.95 + e + adamx_gain
                      + 1e-4 * (seed - 2)),
                 _rec("digits", None, "adamw", seed, test_acc=0.95 + e),
                 _rec("digits", None, "adams_inherit", seed, test_acc=inherit_acc + e)]
        for size in ("S", "M"):
            for arm, loss in (("adamw", 2.0), ("adams", adams_loss), ("adams_inherit", adams_loss),
                              ("cadamw", 2.0), ("alphaadam", alpha_loss)):
                v = loss + e + 1e-4 * (seed - 2) * (arm == "alphaadam")
                recs.append(_rec("lm", size, arm, seed, test_loss=v, train_loss=v))
    return recs


def _verdicts(recs):
    return {v.claim_id: v.verdict for v in R.verdicts(recs, "test scale")[0]}


def test_verdict_criteria_decide_on_planted_numbers():
    ok = _verdicts(_planted())
    assert ok == {k: REPRODUCED for k in R.CRITERIA}
    # A tie is not 'outperforms'; 5 % worse is outside the 2 % margin; above one baseline fails.
    assert _verdicts(_planted(adamx_gain=0.0))["R-adamx"] == NOT_REPRODUCED
    worse = _verdicts(_planted(adams_loss=2.1))
    assert worse["R-adams"] == worse["R-adams-inherit"] == worse["R-adams-curves"] == \
        NOT_REPRODUCED
    assert _verdicts(_planted(adams_loss=2.03))["R-adams"] == REPRODUCED   # within 2 %
    assert _verdicts(_planted(alpha_loss=2.0))["R-alpha"] == NOT_REPRODUCED
    assert _verdicts(_planted(inherit_acc=0.9))["R-adams-inherit"] == NOT_REPRODUCED
    # A diverged AdamS run fails its rows whatever the others did.
    recs = _planted()
    for r in recs:
        if r["spec"]["arm"] == "adams" and r["spec"]["seed"] == 0:
            r["result"].update(diverged=True, test_loss=None, train_loss=None)
    assert _verdicts(recs)["R-adams"] == NOT_REPRODUCED


def test_selection_reads_validation_only():
    def tune(lr, val, test):
        return {"spec": {"problem": "lm", "size": "S", "arm": "adamw", "lr": lr,
                         "hyper": {"betas": [0.9, 0.95]}},
                "result": {"val_loss": val, "test_loss": test}}

    pick = R.select([tune(1e-3, 2.0, 1.0), tune(3e-3, 1.5, 9.0), tune(1e-2, None, 0.0)])
    assert pick[("lm", "S", "adamw")]["lr"] == 3e-3      # lowest val; test and divergence ignored
    assert pick[("lm", "S", "adamw")]["edge"] is False
    assert R.select([tune(1e-3, 2.0, 0), tune(3e-3, 2.5, 0)])[("lm", "S", "adamw")]["edge"]


def test_t_interval():
    ci = R.t_ci([1.0, 2.0, 3.0])
    assert ci["mean"] == 2.0 and ci["hi"] - 2.0 == pytest.approx(4.302653 / math.sqrt(3), 1e-5)
    assert math.isnan(R.t_ci([1.0])["lo"])
    assert math.isnan(R.t_ci([1.0, math.inf])["hi"])   # a diverged run fails every bound


def test_schedule_and_corpus_are_fixed():
    assert R.lr_factor(1, 100) == pytest.approx(0.1) and R.lr_factor(10, 100) == 1.0
    assert R.lr_factor(100, 100) == pytest.approx(0.1)
    a, b = R.stdlib_corpus(), R.stdlib_corpus()
    assert a["sha256"] == b["sha256"] and len(a["train"]) > 7 * len(a["test"]) > 0


def test_report_rows_read_the_committed_results(tmp_path):
    if not (R.COMMITTED_DIR / "real_final.jsonl").is_file():
        pytest.skip("no committed real-data results")
    from refopt.experiments.report import CLAIMS, real_data_result

    res = real_data_result(tmp_path, rerun=False)
    assert [v.claim_id for v in res.verdicts] == list(R.CRITERIA)
    assert all(v.verdict in (REPRODUCED, NOT_REPRODUCED) and "small scale" in v.evidence
               for v in res.verdicts)
    assert res.figures and all(p.is_file() for p in res.figures)
    checked = {c.id for c in CLAIMS if c.check.startswith("R-")}
    assert checked >= {"adamx.C3", "adams.C4", "adams.C9", "alphaadam.C3"}
    # The claim table's cell shows the measurement; the scale statement stays in the details.
    from refopt.experiments.report import _measured
    for v in res.verdicts:
        cell = _measured(v.evidence)
        assert v.evidence.startswith("At small scale (") and not cell.startswith("At small")
        assert v.evidence.endswith(cell) and len(cell) < len(v.evidence)
    with pytest.raises(FileNotFoundError):
        R.from_committed(tmp_path / "f", committed=tmp_path / "nothing")


def test_report_rows_without_results_are_not_checkable(tmp_path, monkeypatch):
    from refopt.experiments import report

    monkeypatch.setattr(R, "COMMITTED_DIR", tmp_path / "nothing")
    monkeypatch.setattr(R.from_committed, "__defaults__", (tmp_path / "nothing",))
    res = report.real_data_result(tmp_path, rerun=False)
    assert [v.verdict for v in res.verdicts] == [NOT_CHECKABLE] * len(R.CRITERIA)
    assert "unavailable" in res.verdicts[0].evidence


def test_real_runs_on_a_dask_cluster_give_the_same_numbers(tmp_path):
    pytest.importorskip("torch", reason="the real-data runs need torch")
    pytest.importorskip("sklearn", reason="the digits task needs scikit-learn (refopt[real])")
    distributed = pytest.importorskip("distributed", reason="dask[distributed] is not installed")
    from refopt.experiments.runner import run_sweep

    specs = [s for s in R.tune_specs(R.CONFIGS["quick"]) if s["problem"] == "digits"][:2]
    serial = run_sweep(specs, tmp_path / "a.jsonl", max_workers=1)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        dask = run_sweep(specs, tmp_path / "d.jsonl", scheduler=cluster.scheduler_address)

    def strip(recs):   # wall time aside, a run is a function of its spec
        return [{k: v for k, v in r["result"].items() if k != "seconds"} for r in recs]
    assert strip(dask) == strip(serial) and len(serial) == 2


def test_report_real_flag_reruns_instead_of_reading(tmp_path, monkeypatch):
    """``refopt report --real`` asks run_report to rerun the real-data runs; the rerun goes to
    the full configuration into DIR/results (planted here: no training)."""
    from refopt.cli import main
    from refopt.experiments import report

    seen = {}

    def fake_run_report(out, **kw):
        seen.update(kw)
        return {"path": tmp_path / "report.md", "seconds": 0.0, "counts": {}, "config": "quick",
                "verdicts": {}}

    monkeypatch.setattr(report, "run_report", fake_run_report)
    assert main(["report", "--out", str(tmp_path), "--real", "--skip-proofs"]) == 0
    assert seen["real"] is True
    assert main(["report", "--out", str(tmp_path), "--skip-proofs"]) == 0
    assert seen["real"] is False
    calls = []
    monkeypatch.setattr(R, "run", lambda config, out, **kw: calls.append((config, out, kw)) or
                        "ran")
    assert report.real_data_result(tmp_path, True, max_workers=1) == "ran"
    assert calls[0][:2] == ("full", tmp_path / "results")
    assert calls[0][2]["fig_dir"] == tmp_path / "figures"
