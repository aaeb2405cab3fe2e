"""Tests of the sweep runner, the three experiment families and ``refopt report``."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from refopt._io import CorruptFileError
from refopt.experiments import runner
from refopt.experiments._common import NOT_CHECKABLE, NOT_REPRODUCED, REPRODUCED, WITHDRAWN
from refopt.experiments.runner import expand_sweep, read_results, run_key, run_one, run_sweep

SWEEP = {"rules": [{"name": "adams", "hyper": {"weight_decay": 0.0}, "grid": {"lr": [0.01, 0.1]}},
                   {"name": "adam", "hyper": {"lr": 0.05}}],
         "objectives": [{"name": "cosh", "constants": {"noise": "gaussian", "noise_scale": 0.1}},
                        {"name": "quadratic", "constants": {"dim": 3}}],
         "seeds": [0, 1], "steps": 40, "x0": {"dim": 3, "scale": 2.0}, "record_every": 10}
N_RUNS = 3 * 2 * 2  # (2 adams lrs + adam) x 2 objectives x 2 seeds


def _strict_lines(path: Path) -> list[dict]:
    def no_constant(name):
        raise ValueError(f"non-strict JSON constant {name}")
    lines = path.read_text().splitlines()
    return [json.loads(line, parse_constant=no_constant) for line in lines]


# -- runner ----------------------------------------------------------------------------------

def test_expand_sweep_is_the_full_product_in_a_fixed_order():
    specs = expand_sweep(SWEEP)
    assert len(specs) == N_RUNS
    assert len({run_key(s) for s in specs}) == N_RUNS
    assert specs == expand_sweep(SWEEP)
    assert {s["hyper"]["lr"] for s in specs if s["rule"] == "adams"} == {0.01, 0.1}


@pytest.mark.parametrize("bad,match", [({"objectives": ["cosh"], "seeds": [0]}, "rules"),
                                       ({**SWEEP, "seeds": [-1]}, "seeds"),
                                       ({**SWEEP, "steps": 0}, "steps"),
                                       ({**SWEEP, "colour": 1}, "unknown key")])
def test_expand_sweep_rejects_bad_descriptions(bad, match):
    with pytest.raises(ValueError, match=match):
        expand_sweep(bad)


def test_run_one_is_deterministic_and_json_strict():
    spec = expand_sweep(SWEEP)[0]
    a, b = run_one(spec), run_one(dict(spec))
    assert a == b
    assert a["key"] == run_key(spec)
    json.dumps(a, allow_nan=False)
    r = a["result"]
    assert r["t"][0] == 0 and r["t"][-1] == SWEEP["steps"]
    assert r["min_grad_norm"] <= r["mean_grad_norm"]


def test_resume_after_limit_loses_nothing_and_duplicates_nothing(tmp_path):
    out = tmp_path / "r.jsonl"
    first = run_sweep(SWEEP, out, max_workers=1, limit=5)
    assert len(first) == 5 and len(_strict_lines(out)) == 5
    full = run_sweep(SWEEP, out, max_workers=1)
    lines = _strict_lines(out)
    assert len(lines) == N_RUNS
    assert len({rec["key"] for rec in lines}) == N_RUNS          # no duplicate
    assert full[:5] == first                                       # nothing rewritten
    fresh = run_sweep(SWEEP, tmp_path / "fresh.jsonl", max_workers=1)
    assert fresh == full                                           # identical to one go
    again = run_sweep(SWEEP, out, max_workers=1)                   # nothing left to do
    assert again == full and len(_strict_lines(out)) == N_RUNS


INTERRUPT = {"at": None, "calls": 0}


@runner.task("test_interrupt")
def _interrupting_task(spec):
    INTERRUPT["calls"] += 1
    if spec["seed"] == INTERRUPT["at"]:
        raise KeyboardInterrupt  # as a user's Ctrl-C in the middle of a sweep
    return {"value": spec["seed"] * 2.5}


def test_resume_after_keyboard_interrupt(tmp_path, monkeypatch):
    sweep = {"task": "test_interrupt", "rules": ["adam"], "objectives": ["cosh"],
             "seeds": list(range(6)), "steps": 1}
    out = tmp_path / "r.jsonl"
    monkeypatch.setitem(INTERRUPT, "at", 3)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(sweep, out, max_workers=1)
    assert [rec["spec"]["seed"] for rec in _strict_lines(out)] == [0, 1, 2]  # kept on disk
    monkeypatch.setitem(INTERRUPT, "at", None)
    monkeypatch.setitem(INTERRUPT, "calls", 0)
    records = run_sweep(sweep, out, max_workers=1)
    assert INTERRUPT["calls"] == 3                                   # only the missing runs
    assert [r["result"]["value"] for r in records] == [s * 2.5 for s in range(6)]
    assert len(_strict_lines(out)) == 6


def test_torn_last_line_is_dropped_and_the_run_redone(tmp_path):
    out = tmp_path / "r.jsonl"
    full = run_sweep(SWEEP, out, max_workers=1, limit=3)
    text = out.read_text()
    out.write_text(text + text.splitlines()[0][:37])      # a crash in the middle of a write
    assert len(read_results(out)) == 3                    # readable without repair
    records = run_sweep(SWEEP, out, max_workers=1)
    assert records[:3] == full and len(records) == N_RUNS
    assert len(_strict_lines(out)) == N_RUNS              # the torn fragment is gone


def test_a_task_version_bump_redoes_old_records(tmp_path, monkeypatch):
    out = tmp_path / "r.jsonl"
    old = run_sweep(SWEEP, out, max_workers=1, limit=2)
    assert all(rec["task_version"] == runner.TASK_VERSIONS["optimize"] for rec in old)
    monkeypatch.setitem(runner.TASK_VERSIONS, "optimize", runner.TASK_VERSIONS["optimize"] + 1)
    new = run_sweep(SWEEP, out, max_workers=1)
    assert len(new) == N_RUNS and all(rec["task_version"] == runner.TASK_VERSIONS["optimize"]
                                      for rec in new)
    assert len(_strict_lines(out)) == N_RUNS + 2          # old lines stay, superseded
    assert [r["result"] for r in new[:2]] == [r["result"] for r in old]
    assert run_sweep(SWEEP, out, max_workers=1) == new    # and nothing is redone again


def test_corrupt_line_in_the_middle_raises(tmp_path):
    out = tmp_path / "r.jsonl"
    run_sweep(SWEEP, out, max_workers=1, limit=2)
    lines = out.read_text().splitlines()
    out.write_text(lines[0] + "\n{not json\n" + lines[1] + "\n")
    with pytest.raises(CorruptFileError, match="line 2"):
        read_results(out)


def test_process_pool_gives_the_same_records(tmp_path):
    serial = run_sweep(SWEEP, tmp_path / "a.jsonl", max_workers=1)
    pooled = run_sweep(SWEEP, tmp_path / "b.jsonl", max_workers=2)
    assert pooled == serial
    # The file order may differ (completion order); the content may not.
    assert sorted(map(json.dumps, _strict_lines(tmp_path / "b.jsonl"))) == \
        sorted(map(json.dumps, _strict_lines(tmp_path / "a.jsonl")))


def test_dask_local_cluster_gives_the_same_records(tmp_path):
    distributed = pytest.importorskip("distributed", reason="dask[distributed] is not installed")
    serial = run_sweep(SWEEP, tmp_path / "a.jsonl", max_workers=1)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        half = run_sweep(SWEEP, tmp_path / "d.jsonl", scheduler=cluster.scheduler_address,
                         limit=4)
        assert half == serial[:4]
        dask = run_sweep(SWEEP, tmp_path / "d.jsonl", scheduler=cluster.scheduler_address)
    assert dask == serial


def test_progress_bar_goes_to_the_given_stream(tmp_path):
    import io
    stream = io.StringIO()
    run_sweep(SWEEP, tmp_path / "r.jsonl", max_workers=1, limit=2, progress=stream)
    shown = stream.getvalue()
    assert "r (optimize): 1/2 runs" in shown and "2/2 runs" in shown   # labelled by the sweep
    assert shown.endswith("\r\033[K")                                 # and cleared at the end


def test_bad_runner_arguments(tmp_path):
    with pytest.raises(ValueError, match="executor"):
        run_sweep(SWEEP, tmp_path / "r.jsonl", executor="threads")
    with pytest.raises(ValueError, match="duplicates"):
        run_sweep([expand_sweep(SWEEP)[0]] * 2, tmp_path / "r.jsonl")
    with pytest.raises(ValueError, match="unknown task"):
        run_one({**expand_sweep(SWEEP)[0], "task": "nope"})


# -- experiments: the verdicts come from the numbers and can fail --------------------------------

def test_adamx_transition_verdict_flips_for_a_planted_adam(tmp_path):
    from refopt.experiments import adamx_transition as X

    good = X.run("tiny", tmp_path)
    assert good.verdict("X-transition").verdict == REPRODUCED
    assert good.numbers["rel_dv_end"]["adamx"] < 1e-6 < good.numbers["rel_dv_end"]["adam"]
    assert good.verdict("X-T8").verdict == REPRODUCED
    bad = X.run("tiny", tmp_path, rule="adam")
    assert bad.verdict("X-transition").verdict == NOT_REPRODUCED
    assert bad.verdict("X-T8").verdict == NOT_REPRODUCED
    assert Path(good.figures[0]).stat().st_size > 10_000


def test_late_activation_matches_spec_t8_row():
    from refopt.experiments.adamx_transition import late_activation

    peak, after = late_activation("adamx", 1000)
    assert peak == pytest.approx(6.76, abs=0.01) and after == pytest.approx(1.26, abs=0.01)
    peak, after = late_activation("adam", 1000)
    assert peak == pytest.approx(2.13, abs=0.01) and after == pytest.approx(1.00, abs=0.01)


def test_slope_fit_and_rate_verdict_on_known_data():
    from refopt.experiments.adams_rate import fit_slope, rate_verdict

    rng = np.random.default_rng(0)
    T = np.repeat([100.0, 1000.0, 10000.0], 5)
    fit = fit_slope(T, 3.0 * T ** -0.25 * np.exp(0.05 * rng.standard_normal(T.size)))
    assert fit["ci"][0] < -0.25 < fit["ci"][1]
    assert rate_verdict(fit)[0] == REPRODUCED
    flat = fit_slope(T, np.exp(0.05 * rng.standard_normal(T.size)))
    assert rate_verdict(flat)[0] == NOT_REPRODUCED
    fast = fit_slope(T, T ** -1.0 * np.exp(0.01 * rng.standard_normal(T.size)))
    verdict, why = rate_verdict(fast)
    assert verdict == REPRODUCED and "consistent with the upper bound" in why


def test_adams_rate_verdict_flips_for_a_constant_schedule(tmp_path):
    from refopt.experiments import adams_rate as S

    good = S.run("quick", tmp_path)
    assert good.verdict("S-rate").verdict == REPRODUCED, good.verdict("S-rate").evidence
    assert good.verdict("S-N1").verdict == REPRODUCED
    assert good.numbers["n1"]["adams_first_hit"] == {"1.0": 20, "5.0": 103, "20.0": 412}
    assert good.verdict("S-forms").verdict == REPRODUCED
    assert good.numbers["paper_vs_code"]["ratio_t1"] == pytest.approx(10.0, rel=1e-9)
    bad = S.run("quick", tmp_path, schedule="constant")
    assert bad.verdict("S-rate").verdict == NOT_REPRODUCED
    lo, hi = bad.numbers["fit_mean_grad_norm"]["ci"]
    assert lo > -0.25


def test_alphaadam_masks_verdicts_flip_for_a_maskless_rule(tmp_path):
    from refopt.experiments import alphaadam_masks as A

    good = A.run("tiny", tmp_path)
    for claim in ("A-async", "A-alpha", "A-first"):
        assert good.verdict(claim).verdict == REPRODUCED, good.verdict(claim).evidence
    assert 0.05 < good.numbers["mean_kept_after_1"]["alphaadam:count"] < 0.95
    assert good.numbers["first_step_norm"]["alphaadam:first=as_is"] == 0.0
    bad = A.run("tiny", tmp_path, rule_under_test="adam")
    for claim in ("A-speed", "A-floor", "A-async", "A-alpha", "A-first"):
        assert bad.verdict(claim).verdict == NOT_REPRODUCED
    # The floor runs start at the minimiser: the loss rises from 0 to the floor.
    assert all(v["mean"] > 0 for v in good.numbers["stationary_floor"].values())


def test_memory_and_table_checks():
    from refopt.experiments.report import GLUE_TABLE, memory_checks, table_check

    assert all(v.verdict == REPRODUCED for v in memory_checks())
    v = table_check()
    assert v.verdict == NOT_REPRODUCED   # CAdamW: 82.4286 vs 82.42
    assert v.evidence.startswith("CAdamW: mean of its 7 scores 82.4286, printed 82.42")
    assert "the other 5 rows agree" in v.evidence
    others = [m for m in GLUE_TABLE if m != "CAdamW"]   # only the bad row is named
    assert not any(re.search(rf"(?<![A-Za-z]){re.escape(m)}", v.evidence) for m in others)
    assert np.mean(GLUE_TABLE["AlphaAdam"][0]) == pytest.approx(83.63, abs=0.005)


# -- report ----------------------------------------------------------------------------------

def _claim_rows(text: str) -> dict[str, str]:
    rows = {}
    for line in text.splitlines():
        m = re.match(r"\| ([a-z]+\.[A-Za-z0-9]+) \|.*\| \*\*([a-z ]+)\*\* \|", line)
        if m:
            rows[m.group(1)] = m.group(2)
    return rows


def test_report_smoke_lists_every_claim_with_a_verdict(tmp_path, capsys):
    from refopt.cli import main
    from refopt.experiments.report import CLAIMS

    assert main(["report", "--out", str(tmp_path), "--smoke", "--skip-proofs"]) == 0
    assert "wrote" in capsys.readouterr().out
    text = (tmp_path / "report.md").read_text()
    rows = _claim_rows(text)
    assert set(rows) == {c.id for c in CLAIMS}
    allowed = {REPRODUCED, NOT_REPRODUCED, NOT_CHECKABLE, WITHDRAWN}
    assert set(rows.values()) <= allowed
    assert rows["alphaadam.C5"] == WITHDRAWN
    assert rows["adams.C2"] == NOT_CHECKABLE and rows["adams.C7"] == REPRODUCED
    # The real-data rows (issue 16) come from the committed results when they are there.
    from refopt.experiments import real_data
    committed = (real_data.COMMITTED_DIR / "real_final.jsonl").is_file()
    assert (rows["adams.C4"] != NOT_CHECKABLE) == committed
    for fig in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        assert (tmp_path / fig).is_file()
    assert "skipped (--skip-proofs)" in text
    summary = json.loads((tmp_path / "report.json").read_text())
    assert summary["verdicts"] == rows
    assert list(tmp_path.glob("*.tmp")) == []   # atomic writes leave no temporaries


def test_report_renders_the_proofs_table_and_survives_a_missing_registry(tmp_path, monkeypatch):
    import sys
    from types import SimpleNamespace

    from refopt.experiments import report

    fake = [SimpleNamespace(claim_id="adams.A1", rule="adams", title="SOS identity",
                            status="proved", expected_status="proved", seconds=0.1,
                            detail="ok", source="spec"),
            SimpleNamespace(claim_id="alphaadam.T35", rule="alphaadam", title="Theorem 3.5 "
                            "(withdrawn)", status="open", expected_status="open", seconds=0.0,
                            detail="withdrawn in v2", source="spec"),
            SimpleNamespace(claim_id="adamx.T9", rule="adamx", title="bf16", status="refuted",
                            expected_status="proved", seconds=0.0, detail="x", source="spec"),
            SimpleNamespace(claim_id="adams.N3", rule="adams", title="Empirical rate",
                            status="open", expected_status="open", seconds=0.0,
                            detail="an experiment", source="spec")]
    monkeypatch.setattr(report, "_proof_results", lambda rule=None: (fake, ""))
    summary = report.run_report(tmp_path, config="tiny")
    text = summary["path"].read_text()
    # The verdict column (the claim tables' words) comes before the registry's proof status.
    assert "| id | rule | title | verdict | proof status | detail |" in text
    assert "| adams.A1 | adams | SOS identity | **reproduced** | proved | ok |" in text
    assert "**withdrawn by its authors**" in text.split("## Theory claims")[1]
    assert "| **not reproduced** | refuted (unexpected: expected proved) |" in text
    n3 = next(line for line in text.splitlines() if line.startswith("| adams.N3 |"))
    assert "measured by [S-rate](#check-s-rate)" in n3 and "open: measured by S-rate" in n3
    # The cell is the rate check's short summary, with its criterion.
    assert "criterion 'upper'" in n3
    # Legibility: every claim-table cell is short (the details are listed below the tables),
    # every checked cell says what its criterion needs, and every figure exists and has a
    # caption under it.
    claims = text.split("## Experiments")[0]
    rows = [line for line in claims.splitlines()
            if line.startswith("| ") and not line.startswith("| id |")]
    assert len(rows) == len(summary["verdicts"])
    checked = [line for line in rows if "](#check-" in line]
    assert checked and all(len(line.rsplit(" | ", 2)[-1]) <= 300 for line in rows)
    assert all("needed" in line for line in checked), [r for r in checked if "needed" not in r]
    lines = text.splitlines()
    figures = [i for i, line in enumerate(lines) if line.startswith("![")]
    assert len(figures) >= 14
    for i in figures:
        rel = lines[i][lines[i].index("](") + 2:-1]
        assert (tmp_path / rel).is_file(), rel
        assert lines[i + 2].startswith("*") and lines[i + 2].endswith("*"), lines[i]
    assert f"**{summary['verdicts']['adams.C1']}**" in n3     # the experiment's verdict
    monkeypatch.undo()
    monkeypatch.setitem(sys.modules, "refopt.proofs", None)   # import fails: ImportError
    proofs, note = report._proof_results()
    assert proofs is None and "unavailable" in note


def test_sweep_command(tmp_path, capsys):
    from refopt.cli import main

    spec = tmp_path / "s.json"
    spec.write_text(json.dumps(SWEEP))
    assert main(["sweep", str(spec), "--workers", "1", "--limit", "4"]) == 0
    assert len(_strict_lines(tmp_path / "s.jsonl")) == 4
    assert main(["sweep", str(spec), "--workers", "1"]) == 0
    assert len(_strict_lines(tmp_path / "s.jsonl")) == N_RUNS
    assert f"{N_RUNS} runs" in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert main(["sweep", str(bad)]) == 2


def test_reddi_cyclic_counterexample_through_the_runner():
    """Reddi, Kale, Kumar (2018) Thm 1: Adam (beta1 = 0, beta2 = 1/(1+C^2), step a/sqrt(t))
    ends at the worst point x = +1 of the cyclic sequence; plain SGD goes to the optimum -1."""
    C = 3.0
    base = {"task": "optimize", "objective": "reddi", "constants": {"mode": "cyclic", "C": C},
            "seed": 0, "steps": 3000, "x0": {"value": [0.0]}, "record_every": 3000,
            "lr_schedule": "inv_sqrt"}
    adam = run_one({**base, "rule": "adam", "hyper": {
        "lr": 0.5, "betas": [0.0, 1 / (1 + C ** 2)], "bias_correction": "none", "eps": 1e-8}})
    sgd = run_one({**base, "rule": "sgdm", "hyper": {"lr": 0.5, "momentum": 0.0}})
    slope = (C - 2) / 3                       # F(x) = slope * x on [-1, 1]
    assert adam["result"]["final_loss"] == pytest.approx(slope, rel=1e-9)       # x = +1
    assert sgd["result"]["final_loss"] < -0.95 * slope                          # x near -1


# -- reliability (issue 13): one writer per results file, whole appends, torn lines repaired ------

def test_a_second_sweep_on_the_same_results_file_is_refused_at_once(tmp_path):
    import fcntl
    import os

    out = tmp_path / "r.jsonl"
    run_sweep(SWEEP, out, max_workers=1, limit=2)
    # Another sweep (another open file description) holds the file: flock on its lock file.
    fd = os.open(tmp_path / "r.jsonl.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(runner.ResultsLockedError, match="another sweep is writing"):
            run_sweep(SWEEP, out, max_workers=1)
    finally:
        os.close(fd)
    assert len(_strict_lines(out)) == 2                       # nothing run, nothing appended
    assert len(run_sweep(SWEEP, out, max_workers=1)) == N_RUNS  # the lock is free again
    assert not (tmp_path / "r.jsonl.lock").exists()           # and removed when a sweep ends


def test_a_lock_file_removed_by_the_sweep_that_held_it_is_not_trusted(tmp_path, monkeypatch):
    """The race of removing the lock file at the end: a sweep that opened the old file before
    it was removed gets its flock on a file no longer at the path, and must open anew."""
    import os

    out = tmp_path / "r.jsonl"
    lock = runner._ResultsLock(out)
    real_open, calls = os.open, []

    def open_then_lose_the_race(path, *args, **kwargs):
        fd = real_open(path, *args, **kwargs)
        calls.append(path)
        if len(calls) == 1:          # the holder ends right after our open: file removed
            os.unlink(path)
        return fd

    monkeypatch.setattr(runner.os, "open", open_then_lose_the_race)
    with lock:
        held = os.fstat(lock.fd)
        assert len(calls) == 2 and os.path.samestat(held, os.stat(lock.path))
    assert not lock.path.exists()


def test_a_torn_fragment_followed_by_a_whole_record_is_repaired_not_refused(tmp_path):
    out = tmp_path / "r.jsonl"
    full = run_sweep(SWEEP, out, max_workers=1, limit=3)
    lines = out.read_bytes().splitlines()
    # Writer A was killed mid-append, writer B appended after the torn bytes (an old refopt).
    out.write_bytes(lines[0] + b"\n" + lines[1][:40] + lines[2] + b"\n")
    assert [r["key"] for r in read_results(out)] == [full[0]["key"], full[2]["key"]]
    records = run_sweep(SWEEP, out, max_workers=1)
    assert len(records) == N_RUNS and records[:3] == full       # the torn run is redone
    assert len(_strict_lines(out)) == N_RUNS                    # and the file is whole again


def test_an_append_that_fails_part_way_leaves_no_partial_line(tmp_path, monkeypatch):
    import os

    out = tmp_path / "r.jsonl"
    run_sweep(SWEEP, out, max_workers=1, limit=1)
    before = out.read_bytes()
    real_write = os.write

    def half_then_fail(fd, data):
        real_write(fd, bytes(data[:len(data) // 2]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runner.os, "write", half_then_fail)
    with pytest.raises(OSError, match="No space"):
        runner.append_record(out, {"key": "x", "spec": {}, "result": {}})
    assert out.read_bytes() == before


def test_sweep_command_user_errors_are_one_line(tmp_path, capsys):
    from refopt.cli import main

    spec = tmp_path / "s.json"
    spec.write_text(json.dumps(SWEEP))
    (tmp_path / "adir.json").mkdir()
    assert main(["sweep", str(tmp_path / "adir.json")]) == 2       # a SPEC that is a directory
    assert "directory" in capsys.readouterr().err
    (tmp_path / "out.jsonl").mkdir()
    assert main(["sweep", str(spec), "--workers", "1", "--out", str(tmp_path / "out.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "directory" in err


def test_sweep_command_refuses_a_second_writer_in_one_line(tmp_path, capsys):
    import fcntl
    import os

    from refopt.cli import main

    spec = tmp_path / "s.json"
    spec.write_text(json.dumps(SWEEP))
    fd = os.open(tmp_path / "s.jsonl.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert main(["sweep", str(spec), "--workers", "1"]) == 2
    finally:
        os.close(fd)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "another sweep is writing" in err
    (tmp_path / "afile").write_text("x")
    assert main(["sweep", str(spec), "--workers", "1", "--out", str(tmp_path / "afile" / "r")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.parametrize("change, match", [
    ({"steps": 1.9}, r"steps must be an integer >= 1, got 1\.9"),
    ({"steps": True}, "steps must be an integer"),
    ({"record_every": 0}, r"record_every must be an integer >= 1, got 0"),
    ({"rules": [{"hyper": {"lr": 0.1}}]}, r"rules\[0\] must be a name or an object with a string"),
    ({"objectives": [{"constants": {}}]}, r"objectives\[0\] must be a name"),
    ({"rules": "adam"}, "rules must be a list"),
])
def test_expand_sweep_refuses_what_it_used_to_guess(change, match):
    with pytest.raises(ValueError, match=match):
        expand_sweep({**SWEEP, **change})
    assert expand_sweep({**SWEEP, "steps": 40.0}) == expand_sweep(SWEEP)  # an integral float


def test_run_sweep_refuses_zero_workers(tmp_path):
    with pytest.raises(ValueError, match=r"max_workers \(--workers\) must be None or an integer"):
        run_sweep(SWEEP, tmp_path / "r.jsonl", max_workers=0)


@pytest.mark.parametrize("argv, match", [
    (["report", "--workers", "0", "--smoke"], "--workers must be an integer >= 1"),
    (["report", "--smoke", "--out", "{file}"], "is a file, not a folder"),
    (["report", "--smoke", "--out", "{file}/sub"], "is a file, not a folder"),
    (["golden", "build", "--out", "{file}", "--pattern", "adam_torch_defaults_float64"],
     "File exists"),
    (["bench", "--quick", "--threads", "999", "--out", "{dir}/b"], r"--threads must be in \[1, "),
    (["sweep", "{spec}", "--scheduler", "foo"], "scheduler"),
    (["sweep", "{badspec}"], r"steps must be an integer >= 1, got 1\.9"),
])
def test_user_errors_are_one_line_and_a_nonzero_exit(tmp_path, capsys, argv, match):
    from refopt.cli import main

    (tmp_path / "afile").write_text("x")
    (tmp_path / "s.json").write_text(json.dumps(SWEEP))
    (tmp_path / "bad.json").write_text(json.dumps({**SWEEP, "steps": 1.9}))
    if "--scheduler" in argv:
        pytest.importorskip("distributed")
    argv = [a.format(file=tmp_path / "afile", dir=tmp_path, spec=tmp_path / "s.json",
                     badspec=tmp_path / "bad.json") for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert re.search(match, err), err
