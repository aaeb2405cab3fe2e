"""The command line's shared behaviour (issue 18, docs/cli.md): --quiet and --json on every
command that reports, one flag vocabulary with the old spellings as hidden aliases, labelled
progress only on a terminal, Ctrl-C as one line with exit status 130 and the finished work kept."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import refopt
from refopt.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
REPORTING = (["rules"], ["verify", "adams", "numpy"], ["compare", "adams", "d"],
             ["golden", "check"], ["golden", "build"], ["prove"], ["report"], ["sweep", "s.json"],
             ["bench"])
TINY_SWEEP = {"rules": [{"name": "adams", "grid": {"lr": [0.01, 0.1]}}],
              "objectives": [{"name": "quadratic", "constants": {"dim": 3}}],
              "seeds": [0, 1, 2], "steps": 20, "x0": {"dim": 3, "scale": 2.0}}


@pytest.mark.parametrize("argv", REPORTING, ids=" ".join)
def test_every_reporting_command_takes_quiet_and_json(argv):
    args = build_parser().parse_args([*argv, "--quiet", "--json", "out.json"])
    assert args.quiet is True and args.json == "out.json"


def test_verify_help_names_every_rule(capsys):
    with pytest.raises(SystemExit):
        main(["verify", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    built_in = [n for n, info in refopt.RULES.items()  # not rules a test registered
                if info.cls.__module__.startswith("refopt.rules")]
    assert len(built_in) >= 8
    for name in built_in:
        assert name in text, name
    # Exactly the built-in rules, by whole name ("adam" is in "adamx" too).
    from refopt.verify.cli import RULE_NAMES
    assert {n.split()[0] for n in RULE_NAMES} == set(built_in)
    assert "(adam, adamw, cadamw, ...)" not in text


def test_one_vocabulary_old_spellings_are_hidden_aliases(capsys):
    new = build_parser().parse_args(["golden", "check", "--suite", "D", "--cases", "adams_*"])
    old = build_parser().parse_args(["golden", "check", "--dir", "D", "--pattern", "adams_*"])
    assert (new.suite, new.cases) == (old.suite, old.cases) == ("D", "adams_*")
    build = build_parser().parse_args(["golden", "build", "--pattern", "x*"])
    assert build.cases == "x*"
    for argv in (["golden", "check", "--help"], ["golden", "build", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        shown = capsys.readouterr().out
        assert "--cases" in shown and "--pattern" not in shown and "--dir" not in shown
    verify = build_parser().parse_args(["verify", "adams", "numpy", "--suite", "D", "--cases", "x"])
    assert (verify.suite, verify.cases) == ("D", "x")


def test_json_outputs(tmp_path, capsys):
    assert main(["rules", "adams", "--json", str(tmp_path / "r.json")]) == 0
    rules = json.loads((tmp_path / "r.json").read_text())
    assert rules["adams"]["variants"]["bias_correction"] == ["False", "True"]
    capsys.readouterr()
    assert main(["rules", "--json", "-"]) == 0                       # stdout holds the JSON alone
    assert set(json.loads(capsys.readouterr().out)) == set(refopt.RULES)

    assert main(["golden", "check", "--cases", "adams_paper_spectable_*", "--quiet",
                 "--json", str(tmp_path / "g.json")]) == 0
    golden = json.loads((tmp_path / "g.json").read_text())
    assert golden["ok"] and golden["case_ids"] == ["adams_paper_spectable_float64"]

    assert main(["prove", "--claim", "adams.A2", "--quiet", "--json", str(tmp_path / "p.json")]) == 0
    proofs = json.loads((tmp_path / "p.json").read_text())
    assert proofs["complete"] and proofs["claims"][0]["status"] == "proved"
    out = capsys.readouterr().out
    assert "adams.A2" not in out and "1 claims" in out               # --quiet: the summary only
    # --json - on any command: stdout holds the JSON alone, the rest goes to stderr.
    for argv in (["golden", "check", "--cases", "adams_paper_spectable_*"],
                 ["prove", "--claim", "adams.A2"]):
        assert main([*argv, "--json", "-"]) == 0
        captured = capsys.readouterr()
        assert json.loads(captured.out) and captured.err.strip(), argv

    spec = tmp_path / "s.json"
    spec.write_text(json.dumps(TINY_SWEEP))
    assert main(["sweep", str(spec), "--workers", "1", "--quiet", "--json",
                 str(tmp_path / "sw.json")]) == 0
    sweep = json.loads((tmp_path / "sw.json").read_text())
    assert (sweep["runs"], sweep["new"], sweep["reused"]) == (6, 6, 0)
    capsys.readouterr()

    assert main(["verify", "adams", "numpy", "--cases", "adams_paper_defaults_*",
                 "--json", "-"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["cases"]) == 2


@pytest.mark.parametrize("argv", [["prove"], ["golden", "check"], ["rules"], ["report"],
                                  ["sweep", "s.json"]], ids=" ".join)
def test_json_to_a_missing_folder_is_a_usage_error(argv, tmp_path, capsys):
    assert main([*argv, "--json", str(tmp_path / "no" / "x.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0]


def _on_a_terminal(argv, timeout=120):
    """Run ``refopt ARGV`` with stderr (and stdout) on a pseudo-terminal; return what it drew."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "refopt", *argv], stdout=slave, stderr=slave,
                            stdin=subprocess.DEVNULL, cwd=ROOT, env=dict(os.environ, COLUMNS="120"))
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=timeout)
    os.close(master)
    return proc.returncode, b"".join(chunks).decode(errors="replace")


def test_progress_is_labelled_on_a_terminal_only():
    cases = "adams_paper_d*_float64"  # decay, defaults
    rc, shown = _on_a_terminal(["golden", "check", "--cases", cases])
    assert rc == 0
    assert "refopt golden check [adams_paper_defaults_float64]: 0/2 cases" in shown  # label, phase
    assert "[adams_paper_decay_float64]: 1/2 cases" in shown and "s left)" in shown
    rc, quiet = _on_a_terminal(["golden", "check", "--cases", cases, "-q"])
    assert rc == 0 and "refopt golden check [" not in quiet
    piped = subprocess.run([sys.executable, "-m", "refopt", "golden", "check", "--cases", cases],
                           capture_output=True, text=True, cwd=ROOT)
    assert piped.returncode == 0 and "refopt golden check [" not in piped.stderr


def test_progress_bar_text_has_phase_count_and_time_left():
    import io

    from refopt._progress import Bar, callback

    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    bar = Bar(4, "refopt prove", unit="claims", stream=stream)
    bar.update(phase="adams.A2")
    bar.update()
    assert bar.text().startswith("refopt prove [adams.A2]: 2/4 claims (")
    assert "s left)" in bar.text()
    bar.close()
    assert stream.getvalue().endswith("\r\033[K")
    assert callback("x", stream=io.StringIO()) is None              # not a terminal
    assert callback("x", stream=Tty(), quiet=True) is None


def _interrupt(argv, ready, tmp_path, timeout=120):
    """Start ``refopt ARGV`` with Python's SIGINT handler in place (a background shell starts
    its children with SIGINT ignored, and Python then installs none), wait until ``ready()``,
    send SIGINT; return (exit status, stderr). The child sets the handler itself rather than
    through ``preexec_fn``, which forks a process that may hold JAX's threads."""
    boot = ("import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler);"
            " sys.argv[0] = 'refopt'; runpy.run_module('refopt', run_name='__main__')")
    proc = subprocess.Popen([sys.executable, "-c", boot, *argv], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the command ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_ctrl_c_on_sweep_is_one_line_130_and_keeps_finished_runs(tmp_path):
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps({**TINY_SWEEP, "seeds": list(range(200)), "steps": 400}))
    results = tmp_path / "s.jsonl"
    rc, err = _interrupt(["sweep", str(spec), "--workers", "1"], lambda: _lines(results) >= 2,
                         tmp_path)
    assert rc == 130
    assert err.strip().splitlines() == ["refopt sweep: interrupted (SIGINT); finished work is kept"]
    kept = [json.loads(line) for line in results.read_text().splitlines()]
    assert 2 <= len(kept) < 400 and all("key" in r for r in kept)   # whole lines, none torn


def test_ctrl_c_on_report_is_one_line_130_without_traceback(tmp_path):
    out = tmp_path / "reports"
    results = out / "results"
    rc, err = _interrupt(["report", "--smoke", "--out", str(out), "--skip-proofs"],
                         lambda: any(_lines(p) for p in results.glob("*.jsonl")), tmp_path)
    assert rc == 130
    assert "Traceback" not in err
    assert err.strip().splitlines() == ["refopt report: interrupted (SIGINT); finished work is kept"]
    kept = {p.name: _lines(p) for p in results.glob("*")}
    assert any(n for name, n in kept.items() if name.endswith(".jsonl")), kept  # finished runs


SLOW_PORT = '''
import time
from pathlib import Path

import refopt


class Slow:
    """refopt's AdamS, 20 ms a step: slow enough to be interrupted mid-suite. Each case's
    init appends a line to started.txt (the test interrupts once a second case has begun)."""

    def __init__(self, **hyper):
        self.rule = refopt.get_rule("adams", **hyper)

    def init(self, params):
        with open(Path(__file__).with_name("started.txt"), "a") as f:
            f.write("case\\n")
        return self.rule.init(params)

    def step(self, params, grads, state, lr=None):
        time.sleep(0.02)
        return self.rule.step(params, grads, state, lr=lr)
'''


def test_ctrl_c_on_verify_keeps_the_judged_cases_in_json(tmp_path):
    (tmp_path / "slow_port.py").write_text(SLOW_PORT)
    out = tmp_path / "v.json"
    started = tmp_path / "started.txt"   # a second case began: the first one is judged
    rc, err = _interrupt(["verify", "adams", "slow_port:Slow", "--adapter", "rule", "--cases",
                          "adams_paper_*", "--dtype", "float64", "--no-diagnose", "--json",
                          str(out)], lambda: _lines(started) >= 3, tmp_path)
    assert rc == 130
    assert err.strip().splitlines() == ["refopt verify: interrupted (SIGINT); finished work is kept"]
    partial = json.loads(out.read_text())
    assert partial["interrupted"] is True and 1 <= len(partial["cases"]) < 17
    assert all(c["status"] == "pass" for c in partial["cases"])
