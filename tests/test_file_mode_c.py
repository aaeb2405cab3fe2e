"""The file mode end to end with a port in C (``examples/c``), compiled with the system compiler.

Every golden case of AdamX, AdamS and AlphaAdam (float32 and float64, the invalid cases
included) is written with ``refopt verify RULE --write-inputs``, run by the C binary, which
reads only the flat layout (``case.txt``, ``hyper.txt``, ``shapes.txt``, raw ``.bin``), and
judged with ``refopt compare``: every case passes except the one the port declares unsupported
(``n/a``). Each planted mistake (``-DMISTAKE_*``) fails with its cause named by the diagnosis,
also where it shows only after the pointwise horizon.
Also: the inputs do not reveal an invalid case; ``--write-inputs`` refuses a non-empty
directory unless ``--force``; ``compare`` refuses outputs older than their inputs (these two
with the Python stand-in port ``tests/ports/foreign_adams.py``: no compiler needed).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from refopt.cli import main as refopt_main
from refopt.verify.files import compare_directory, port_case_id

FOREIGN = Path(__file__).resolve().parent / "ports" / "foreign_adams.py"

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "c"
SOURCES = ["port.c", "refopt_io.c"]
# -std=c99 and no contraction: the arithmetic the golden values pin down, as written.
CFLAGS = ["-O2", "-std=c99", "-ffp-contract=off"]


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """``build(mistake=None)`` -> the path of the compiled port (cached per mistake)."""
    cc = _compiler()
    if cc is None:
        pytest.skip("no C compiler (cc, gcc or clang) on PATH: the C example port cannot be "
                    "built here")
    out = tmp_path_factory.mktemp("c_port")
    built = {}

    def make(mistake: str | None = None) -> Path:
        if mistake not in built:
            exe = out / f"refopt_port_{mistake or 'ok'}"
            flags = CFLAGS + ([f"-DMISTAKE_{mistake}"] if mistake else [])
            subprocess.run([cc, *flags, "-o", str(exe), *SOURCES, "-lm"], cwd=EXAMPLE,
                           check=True, timeout=120, capture_output=True)
            built[mistake] = exe
        return built[mistake]
    return make


def _write(rule: str, directory: Path, *extra: str) -> None:
    assert refopt_main(["verify", rule, "--write-inputs", str(directory), *extra]) == 0


def _run(exe: Path, directory: Path) -> str:
    done = subprocess.run([str(exe), str(directory)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _compare(rule: str, directory: Path, tmp_path: Path, *extra: str) -> tuple[int, dict]:
    report = tmp_path / f"{rule}-report.json"
    status = refopt_main(["compare", rule, str(directory), "--json", str(report), "--quiet",
                          *extra])
    return status, json.loads(report.read_text())


@pytest.mark.parametrize("rule", ["adamx", "adams", "alphaadam"])
def test_c_port_passes_every_case_it_supports(rule, build, tmp_path, capsys):
    d = tmp_path / "cases"
    _write(rule, d)
    said = _run(build(), d)
    status, report = _compare(rule, d, tmp_path)
    out = capsys.readouterr().out
    assert status == 0 and report["passed"], out
    by_status = {}
    for case in report["cases"]:
        by_status.setdefault(case["status"], []).append(case)
    # Every case ran and passed (the acceptable ones as refopt does them), except AdamX's
    # state_dtype=float16, which this port declares unsupported: n/a with its reason.
    assert set(by_status) <= {"pass", "n/a"}, out
    unsupported = [c["case_id"] for c in by_status.get("n/a", [])]
    assert unsupported == (["adamx_official-state-f16_variant_float64"] if rule == "adamx"
                           else []), out
    if unsupported:
        assert "the port declares it unsupported: state_dtype=float16" in out
    passed = by_status["pass"]
    assert {c["dtype"] for c in passed} == {"float32", "float64"}
    # The invalid cases pass only because the port validated and refused them itself.
    refused = [c for c in passed if c["result"] == "invalid"]
    assert refused and all("refused as required" in c["message"] for c in refused)
    assert f"{len(refused)} refused" in said
    # The state it wrote was compared too, and the invariants that need it were checked.
    valid = [c for c in passed if c["result"] == "valid"]
    assert all(any(k.startswith("exp_avg.") for k in c["compared"]) for c in valid)
    needs = {"adamx": "adamx_v_between_min_max_g2", "alphaadam": "alphaadam_kept_fraction"}
    if rule in needs:
        res = compare_directory(rule, d, pattern=f"{rule}_*_logcosh_float64").results[0]
        checked = {r.id: r.status for r in res.invariants.results}
        assert res.status == "pass" and checked[needs[rule]] == "pass", res.message


@pytest.mark.parametrize("rule, mistake, key", [
    ("adamx", "EPS_INSIDE_SQRT", "eps_inside_sqrt"),
    ("adams", "ADAMS_M_T", "adams_m_t_denominator"),
    ("alphaadam", "ALPHAADAM_MASK_M_T", "alphaadam_mask_from_m_t"),
])
def test_each_planted_mistake_fails_with_its_cause_named(rule, mistake, key, build, tmp_path,
                                                         capsys):
    d = tmp_path / "cases"
    _write(rule, d, "--cases", f"{rule}_*_d[ee]*")    # decay and defaults, both dtypes
    _run(build(mistake), d)
    status, report = _compare(rule, d, tmp_path)
    out = capsys.readouterr().out
    assert status == 1, out
    failed = [c for c in report["cases"] if c["status"] == "FAIL"]
    assert len(failed) >= 3 and {c["dtype"] for c in failed} == {"float32", "float64"}, out
    for case in failed:
        said = case["diagnosis"]           # "matches known mistake: <what> [<key>]"
        assert said.startswith("matches known mistake") and said.endswith(f"[{key}]"), \
            (case["case_id"], said)
    assert f"match {key}" in out


def test_a_planted_mistake_seen_only_after_the_horizon_is_named(build, tmp_path, capsys):
    """AlphaAdam's float32 Rosenbrock case has pointwise horizon 0: the C port with the mask
    from m_t matches "up to the horizon" and fails only the final loss; the diagnosis names
    the mistake by the final loss (flagged as the weaker evidence)."""
    d = tmp_path / "cases"
    _write("alphaadam", d, "--cases", "alphaadam_paper-v1_rosenbrock4_float32")
    _run(build("ALPHAADAM_MASK_M_T"), d)
    status, report = _compare("alphaadam", d, tmp_path)
    (case,) = report["cases"]
    assert status == 1 and case["status"] == "FAIL", capsys.readouterr().out
    assert case["matching_mistakes"] == ["alphaadam_mask_from_m_t"], case["diagnosis"]
    assert case["diagnosis"].startswith("after the pointwise horizon, the port's final loss")


def test_inputs_do_not_reveal_an_invalid_case(tmp_path):
    d = tmp_path / "cases"
    _write("alphaadam", d, "--cases", "alphaadam_paper-v1_[il]*_float64")
    invalid = d / port_case_id("alphaadam_paper-v1_invalid-lr-inf_float64")
    valid = d / port_case_id("alphaadam_paper-v1_logcosh_float64")
    assert sorted(p.name for p in invalid.iterdir()) == sorted(p.name for p in valid.iterdir())
    for folder in (invalid, valid):
        meta = json.loads((folder / "inputs.json").read_text())
        assert "result" not in meta and "flags" not in meta
        text = (folder / "hyper.txt").read_text() + (folder / "case.txt").read_text()
        assert " none " not in text      # AlphaAdam's None defaults spelled out, as when valid
    assert "lr f64 inf inf" in (invalid / "hyper.txt").read_text().splitlines()
    shapes = (invalid / "shapes.txt").read_text()
    assert shapes == "0 1 0\n1 1 1 1\n2 6 2 2 3\n3 7 1 7\n"   # an ordinary case's tensors


def _foreign(directory: Path) -> None:
    """The Python stand-in port (no compiler needed for the file-mode rules below)."""
    subprocess.run([sys.executable, str(FOREIGN), str(directory)], check=True, timeout=120)


def test_write_inputs_refuses_a_non_empty_directory_unless_force(tmp_path, capsys):
    d = tmp_path / "cases"
    _write("adams", d, "--cases", "adams_paper_defaults_*")
    _foreign(d)
    (d / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert refopt_main(["verify", "adams", "--write-inputs", str(d), "--cases",
                        "adams_paper_decay_*"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--write-inputs" in err[0] and "--force" in err[0], err
    assert refopt_main(["verify", "adams", "torch_ports:AdamS", "--force", "--cases",
                        "adams_paper_decay_*"]) == 2                # --force needs the mode
    assert "--force" in capsys.readouterr().err
    _write("adams", d, "--force", "--cases", "adams_paper_decay_*")
    # The old case folders (with the port's outputs) are gone, the user's file stays.
    decay = [port_case_id(f"adams_paper_decay_{dt}") for dt in ("float32", "float64")]
    assert sorted(p.name for p in d.iterdir()) == sorted(
        decay + ["index.json", "index.txt", "notes.txt"])
    assert (d / "index.txt").read_text().split() == ["2"] + decay


def test_compare_refuses_outputs_older_than_their_inputs(tmp_path):
    d = tmp_path / "cases"
    _write("adams", d, "--cases", "adams_paper_de*_float64")
    _foreign(d)
    folder = d / port_case_id("adams_paper_decay_float64")
    stale = folder / "output" / "param.2.bin"
    inputs = (folder / "inputs.json").stat().st_mtime_ns
    os.utime(stale, ns=(inputs - 10**9, inputs - 10**9))
    status, report = _compare("adams", d, tmp_path)
    rows = {c["case_id"]: c for c in report["cases"]}
    assert status == 1
    assert rows["adams_paper_defaults_float64"]["status"] == "pass"
    row = rows["adams_paper_decay_float64"]
    assert row["status"] == "ERROR" and "stale output: output/param.2.bin" in row["message"]
    # A port that refuses a valid case is an ERROR with its message, not a pass.
    _foreign(d)
    (folder / "output" / "error.txt").write_text("no thanks\n")
    status, report = _compare("adams", d, tmp_path)
    row = {c["case_id"]: c for c in report["cases"]}["adams_paper_decay_float64"]
    assert status == 1 and row["status"] == "ERROR" and "no thanks" in row["message"]


def test_unsupported_json_and_malformed_outputs(tmp_path):
    d = tmp_path / "cases"
    _write("adams", d, "--cases", "adams_paper_de*_float32")
    _foreign(d)
    decay_id, defaults_id = "adams_paper_decay_float32", "adams_paper_defaults_float32"
    decay, defaults = d / port_case_id(decay_id), d / port_case_id(defaults_id)
    (decay / "output.json").write_text('{"unsupported": "no weight decay here"}')
    with open(defaults / "output" / "param.1.bin", "ab") as fh:     # one value too many
        fh.write(b"\0\0\0\0")
    rep = compare_directory("adams", d)
    rows = {r.case_id: r for r in rep.results}
    assert rows[decay_id].status == "n/a" and "no weight decay here" in rows[decay_id].message
    assert rows[decay_id].folder == decay.name
    bad = rows[defaults_id]
    assert bad.status == "ERROR" and "param.1" in bad.message and "expected" in bad.message
    for p in (defaults / "output").iterdir():
        p.unlink()
    assert compare_directory("adams", d).by_id(defaults_id).status == "ERROR"   # no output
