"""The golden suite: format, integrity, determinism, spec tables, accuracy and tolerances.

Every test reads the committed suite (refopt/golden/suite/v1) or a copy of part of it; the
expected spec values are the digits printed in proofs/spec/*.md, not values from refopt.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

import refopt
from refopt._io import CorruptFileError, TamperedFileError, npz_bytes
from refopt.golden import SUITE_DIR, GoldenCase, check_suite, load_suite
from refopt.golden import format as F
from refopt.golden.build import generate, select
from refopt.golden.catalogue import FLAG_NOTES, catalogue
from refopt.golden.tolerances import MARGIN, RTOL, legitimate_for

MANIFESTS = sorted(p for p in SUITE_DIR.glob("*.json") if p.name != "index.json")


def _manifest(case_id: str) -> dict:
    return json.loads((SUITE_DIR / f"{case_id}.json").read_text())


def _copy_case(case_id: str, dst: Path) -> None:
    for ext in ("json", "npz"):
        src = SUITE_DIR / f"{case_id}.{ext}"
        if src.exists():
            shutil.copy(src, dst / src.name)


# -- schema --------------------------------------------------------------------------------------

def test_schema_is_valid_draft07_and_flags_match_catalogue():
    jsonschema = pytest.importorskip("jsonschema", reason="schema validation needs jsonschema")
    schema = F.load_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["$schema"].startswith("http://json-schema.org/draft-07/")
    assert sorted(schema["definitions"]["flag"]["enum"]) == sorted(FLAG_NOTES)


def test_every_committed_manifest_validates_against_the_schema():
    pytest.importorskip("jsonschema", reason="schema validation needs jsonschema")
    assert len(MANIFESTS) == len(catalogue())
    for path in MANIFESTS:
        manifest = json.loads(path.read_text())
        assert manifest["schema"] == F.SCHEMA_FILE
        assert F.validate_manifest(manifest) == [], path.name


@pytest.mark.parametrize("field,value", [("result", "maybe"), ("rule", "adamx2"),
                                         ("param_dtype", "float16"), ("n_steps", -1)])
def test_bad_field_is_a_schema_error_naming_it(field, value):
    pytest.importorskip("jsonschema", reason="schema validation needs jsonschema")
    manifest = _manifest("adams_paper_spectable_float64")
    manifest[field] = value
    errors = F.validate_manifest(manifest)
    assert errors and any(e.startswith(f"{field}:") for e in errors), errors


@pytest.mark.parametrize("kind, why", [("advisory", "x"), ("policy", ""), ("policy", 3)])
def test_bad_invalid_kind_or_why_is_a_schema_error(kind, why):
    pytest.importorskip("jsonschema", reason="schema validation needs jsonschema")
    manifest = _manifest("adamx_official_invalid-beta2-0_float64")
    assert F.validate_manifest(manifest) == []
    manifest["expected_error"] = {**manifest["expected_error"], "kind": kind, "why": why}
    errors = F.validate_manifest(manifest)
    assert errors and all(e.startswith("expected_error") for e in errors), errors


def test_expected_error_without_kind_still_validates():
    # kind/why are optional in the v1 schema: a suite written before them stays valid.
    pytest.importorskip("jsonschema", reason="schema validation needs jsonschema")
    manifest = _manifest("adamx_official_invalid-beta2-0_float64")
    del manifest["expected_error"]["kind"], manifest["expected_error"]["why"]
    assert F.validate_manifest(manifest) == []


def test_missing_field_is_a_schema_error_naming_it():
    pytest.importorskip("jsonschema", reason="schema validation needs jsonschema")
    manifest = _manifest("adams_paper_spectable_float64")
    del manifest["tolerance"]
    assert any("'tolerance' is a required property" in e for e in F.validate_manifest(manifest))


# -- check and determinism -----------------------------------------------------------------------

def test_check_passes_on_committed_subset():
    problems = check_suite(pattern="*spectable*")
    assert problems == []
    problems = check_suite(pattern="*_float32")  # includes closed-loop, long and magnitude cases
    assert problems == []


@pytest.mark.slow
def test_check_passes_on_the_whole_committed_suite():
    assert check_suite() == []


def _skip_unless_same_numpy():
    """Byte identity holds for the same generator versions only (FORMAT.md section 8): the
    manifest records them, and the .npz container may change with NumPy."""
    from refopt.golden.build import VERSION_FIELDS, generator_info

    recorded = _manifest("adamx_official_spectable_float64")["generator"]
    current = generator_info()
    differ = {f: (recorded[f], current[f]) for f in VERSION_FIELDS if recorded[f] != current[f]}
    if differ:
        pytest.skip(f"suite generated with other versions {differ} (recorded, running): byte "
                    f"identity is promised for the same versions only (FORMAT.md)")


def test_rebuilt_subset_is_byte_identical(tmp_path):
    """Fast variant of the whole rebuild: closed-loop cases of both dtypes (their tolerances
    come from the seeded faithful runs, so the seeds must make them reproducible)."""
    _skip_unless_same_numpy()
    ids = refopt.golden.build_suite(tmp_path, pattern="*_logcosh_*")
    assert len(ids) == 10 and not (tmp_path / "index.json").exists()  # 5 rules x 2 dtypes
    for cid in ids:
        for ext in ("json", "npz"):
            assert (tmp_path / f"{cid}.{ext}").read_bytes() == \
                (SUITE_DIR / f"{cid}.{ext}").read_bytes(), cid


@pytest.mark.slow
def test_rebuilt_suite_is_byte_identical(tmp_path):
    _skip_unless_same_numpy()
    refopt.golden.build_suite(tmp_path)
    committed = sorted(p.name for p in SUITE_DIR.iterdir() if not p.name.startswith("."))
    rebuilt = sorted(p.name for p in tmp_path.iterdir())
    assert rebuilt == committed
    for name in committed:
        assert (tmp_path / name).read_bytes() == (SUITE_DIR / name).read_bytes(), name


def test_generation_is_deterministic_in_memory():
    spec = select(catalogue(), "alphaadam_paper-v1_logcosh_float32")[0]
    assert generate(spec) == generate(spec)


def test_case_ids_are_unique_and_well_formed():
    ids = [c.case_id for c in catalogue()]
    assert len(ids) == len(set(ids))
    for cid in ids:
        assert re.fullmatch(r"[a-z0-9]+_[a-z0-9.+-]+_[a-z0-9.+-]+_(float32|float64)", cid), cid


# -- check across versions: arrays by value, manifests without the generator block --------------

def _reseal(directory: Path, case_id: str, edit=None, arrays: dict | None = None,
            payload: bytes | None = None) -> None:
    """Rewrite a copied case consistently, as a build with other code or versions would: the
    payload entry (file sha256, per-array digests) and the content hash are recomputed."""
    mpath = directory / f"{case_id}.json"
    manifest = json.loads(mpath.read_text())
    if arrays is not None:
        payload = npz_bytes(arrays) if payload is None else payload
        (directory / f"{case_id}.npz").write_bytes(payload)
        manifest["payload"] = F.payload_entry(f"{case_id}.npz", payload, arrays)
    if edit is not None:
        edit(manifest)
    manifest["content_hash"] = "0" * 64          # the documented recipe (FORMAT.md section 3)
    manifest["content_hash"] = hashlib.sha256(F.manifest_bytes(manifest)).hexdigest()
    mpath.write_bytes(F.manifest_bytes(manifest))


def _arrays(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def test_check_is_clean_under_other_numpy_and_refopt_versions(monkeypatch, capsys):
    """The committed files, checked by a NumPy 2.4.7 and a refopt 9.9.9 (monkeypatched): no
    problem, one notice naming both versions."""
    from refopt.cli import main
    import refopt.golden.build as B

    monkeypatch.setattr(np, "__version__", "2.4.7")
    monkeypatch.setattr(B, "__version__", "9.9.9")
    assert B.generator_info()["numpy_version"] == "2.4.7"
    report = B.check_report(pattern="*spectable*")
    assert report.problems == [] and len(report.case_ids) == 8
    (notice,) = report.notices
    assert "numpy" in notice and "(running 2.4.7)" in notice and "(running 9.9.9)" in notice
    assert main(["golden", "check", "--pattern", "*spectable*"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and out.count("note:") == 1 and "8 cases" in out


def test_check_compares_arrays_not_container_bytes(tmp_path):
    """A payload written by another NumPy (here: .npy format 2.0 headers, members in reverse
    order), with its manifest recording that NumPy: same arrays, so the check is clean."""
    _copy_case(CASE, tmp_path)
    arrays = _arrays(tmp_path / f"{CASE}.npz")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for key in sorted(arrays, reverse=True):
            member = io.BytesIO()
            np.lib.format.write_array(member, arrays[key], version=(2, 0))
            z.writestr(f"{key}.npy", member.getvalue())
    other = buf.getvalue()
    assert other != (SUITE_DIR / f"{CASE}.npz").read_bytes()
    _reseal(tmp_path, CASE, edit=lambda m: m["generator"].update(numpy_version="1.26.4"),
            arrays=arrays, payload=other)
    report = refopt.golden.check_report(tmp_path, pattern=CASE)
    assert report.problems == []
    assert len(report.notices) == 1 and "numpy 1.26.4" in report.notices[0]


def test_check_reports_one_ulp_in_a_consistent_payload(tmp_path):
    """Hashes all consistent (as a build by changed code would leave them), one element one ulp
    off: reported as a payload difference with its ulp distance, not as tampering."""
    _copy_case(CASE, tmp_path)
    arrays = _arrays(tmp_path / f"{CASE}.npz")
    arrays["exp_avg_sq.3"] = arrays["exp_avg_sq.3"].copy()
    arrays["exp_avg_sq.3"][5, 2] = np.nextafter(arrays["exp_avg_sq.3"][5, 2], np.inf)
    _reseal(tmp_path, CASE, arrays=arrays)
    (problem,) = check_suite(tmp_path, pattern=CASE)
    assert problem == (f"{CASE}: payload differs from the current reference: array "
                       f"'exp_avg_sq.3': up to 1 ulp apart (1 of {arrays['exp_avg_sq.3'].size} "
                       f"elements)")


def test_check_still_compares_every_other_manifest_field(tmp_path):
    """Only the generator block is exempt: an edited comment or rtol, resealed, is reported."""
    _copy_case(CASE, tmp_path)

    def edit(m):
        m["comment"] += " (edited)"
        m["tolerance"]["rtol"] = 1e-6
        m["generator"]["numpy_version"] = "0.0.1"

    _reseal(tmp_path, CASE, edit=edit)
    (problem,) = check_suite(tmp_path, pattern=CASE)
    assert problem == f"{CASE}: manifest differs from the current reference in " \
                      f"['comment', 'tolerance']"


# -- check: edge cases ---------------------------------------------------------------------------

def test_check_pattern_matching_no_case_is_an_error(capsys):
    from refopt.cli import main

    with pytest.raises(ValueError,
                       match=rf"pattern 'nomatch\*' matches none of the {len(catalogue())}"):
        check_suite(pattern="nomatch*")
    assert main(["golden", "check", "--pattern", "nomatch*"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith("golden check: error: pattern 'nomatch*' matches none")
    assert main(["golden", "build", "--out", "/nonexistent/never", "--pattern", "nomatch*"]) == 2
    assert "matches none" in capsys.readouterr().err


def test_check_missing_directory_is_one_error(tmp_path, capsys):
    from refopt.cli import main

    missing = tmp_path / "no-such-suite"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        check_suite(missing)
    assert main(["golden", "check", "--dir", str(missing)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"golden check: error: golden suite directory {missing} does " \
                                f"not exist\n"
    (tmp_path / "a-file").write_text("x")
    assert main(["golden", "check", "--dir", str(tmp_path / "a-file")]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_check_reports_foreign_files_with_and_without_pattern(tmp_path, capsys):
    from refopt.cli import main

    cid = "adams_paper_spectable_float64"
    _copy_case(cid, tmp_path)
    for name in ("adams_paper_spectable-old_float64.json", "adams_paper_spectable-old_float64.npz",
                 "zz_unrelated.txt"):
        (tmp_path / name).write_text("{}")
    (tmp_path / ".hidden").write_text("ignored")
    # With a pattern: the foreign files whose names match it, and nothing else.
    assert check_suite(tmp_path, pattern="adams_paper_spectable*") == [
        "adams_paper_spectable-old_float64.json: not a file of any catalogue case (stale or "
        "foreign file)",
        "adams_paper_spectable-old_float64.npz: not a file of any catalogue case (stale or "
        "foreign file)"]
    assert main(["golden", "check", "--dir", str(tmp_path), "--pattern",
                 "adams_paper_spectable*"]) == 1
    assert capsys.readouterr().err.count("FAIL adams_paper_spectable-old_float64") == 2
    # Without: every foreign file (and here, the cases this directory lacks).
    problems = check_suite(tmp_path)
    foreign = [p for p in problems if "stale or foreign" in p]
    assert [p.split(":")[0] for p in foreign] == ["adams_paper_spectable-old_float64.json",
                                                  "adams_paper_spectable-old_float64.npz",
                                                  "zz_unrelated.txt"]
    assert sum("MISSING manifest" in p for p in problems) == len(catalogue()) - 1
    assert not any(p.startswith(cid) for p in problems)


def test_check_missing_payload_is_labelled_missing(tmp_path, capsys):
    from refopt.cli import main

    _copy_case(CASE, tmp_path)
    (tmp_path / f"{CASE}.npz").unlink()
    assert check_suite(tmp_path, pattern=CASE) == [
        f"{CASE}: MISSING payload {CASE}.npz (named by the manifest)"]
    assert main(["golden", "check", "--dir", str(tmp_path), "--pattern", CASE]) == 1
    err = capsys.readouterr().err
    assert "MISSING payload" in err and "CORRUPT" not in err


# -- integrity: corrupt vs tampered --------------------------------------------------------------

CASE = "adamx_official_defaults_float64"


def test_flipped_byte_in_array_data_is_reported_as_corrupt_crc(tmp_path):
    _copy_case(CASE, tmp_path)
    path = tmp_path / f"{CASE}.npz"
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
        info = z.getinfo("param.2.npy")
    # Local header is 30 bytes + name + extra; flip a byte well inside the array data.
    offset = info.header_offset + 30 + len(info.filename) + len(info.extra) + 140
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match="truncated or malformed"):
        F.read_case(tmp_path, CASE)
    problems = check_suite(tmp_path, pattern=CASE)
    assert len(problems) == 1 and "CORRUPT" in problems[0] and CASE in problems[0]


def test_consistently_rewritten_payload_is_reported_as_tampered(tmp_path):
    _copy_case(CASE, tmp_path)
    path = tmp_path / f"{CASE}.npz"
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["exp_avg_sq.3"] = arrays["exp_avg_sq.3"].copy()
    arrays["exp_avg_sq.3"][5, 2] *= 1.0 + 2.0 ** -40        # valid zip, valid CRC, wrong value
    path.write_bytes(npz_bytes(arrays))
    with pytest.raises(TamperedFileError, match=r"exp_avg_sq\.3"):
        F.read_case(tmp_path, CASE)
    problems = check_suite(tmp_path, pattern=CASE)
    assert len(problems) == 1 and "TAMPERED" in problems[0]


def test_truncated_payload_is_reported_as_corrupt(tmp_path):
    _copy_case(CASE, tmp_path)
    path = tmp_path / f"{CASE}.npz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CorruptFileError):
        F.read_case(tmp_path, CASE)
    with pytest.raises(CorruptFileError):
        load_suite(CASE, directory=tmp_path)


def test_missing_payload_array_is_reported_as_corrupt(tmp_path):
    _copy_case(CASE, tmp_path)
    path = tmp_path / f"{CASE}.npz"
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != "grad.1"}
    path.write_bytes(npz_bytes(arrays))
    with pytest.raises(CorruptFileError, match="missing arrays"):
        F.read_case(tmp_path, CASE)


def test_edited_or_truncated_manifest(tmp_path):
    _copy_case(CASE, tmp_path)
    path = tmp_path / f"{CASE}.json"
    original = path.read_bytes()
    path.write_bytes(original.replace(b'"rtol": 1e-10', b'"rtol": 1e-06'))
    assert path.read_bytes() != original
    with pytest.raises(TamperedFileError, match="content hash"):
        F.read_case(tmp_path, CASE)
    path.write_bytes(original[:-200])
    with pytest.raises(CorruptFileError):
        F.read_case(tmp_path, CASE)
    path.write_bytes(original)
    manifest, arrays = F.read_case(tmp_path, CASE)
    assert manifest["case_id"] == CASE and arrays is not None


def test_content_hash_is_language_neutral():
    """sha256 of the file bytes with the hash value replaced by 64 zeros (FORMAT.md)."""
    data = (SUITE_DIR / f"{CASE}.json").read_bytes()
    recorded = json.loads(data)["content_hash"]
    zeroed = data.replace(recorded.encode(), b"0" * 64)
    assert hashlib.sha256(zeroed).hexdigest() == recorded


def test_per_array_digest_matches_documented_recipe():
    manifest = _manifest(CASE)
    with np.load(SUITE_DIR / f"{CASE}.npz", allow_pickle=False) as z:
        a = z["param.2"]
    h = hashlib.sha256()
    h.update(b"<f8")
    h.update(b"(26, 2, 3)")
    h.update(a.astype("<f8").tobytes(order="C"))
    assert h.hexdigest() == manifest["payload"]["arrays"]["param.2"]["sha256"]
    file_sha = hashlib.sha256((SUITE_DIR / f"{CASE}.npz").read_bytes()).hexdigest()
    assert file_sha == manifest["payload"]["sha256"]


# -- no pickle -----------------------------------------------------------------------------------

def test_object_arrays_are_refused_on_write_and_read(tmp_path):
    manifest = _manifest(CASE)
    with pytest.raises(TypeError, match="object"):
        F.encode_case(manifest, {"param.0": np.array([1, "a"], dtype=object)})
    bad = tmp_path / "pickled.npz"
    np.savez(bad, x=np.array([{"a": 1}], dtype=object))      # needs pickle to read
    from refopt._io import load_npz
    with pytest.raises(CorruptFileError):
        load_npz(bad)


def test_committed_payloads_hold_only_plain_numeric_arrays():
    for path in sorted(SUITE_DIR.glob("*.npz")):
        with zipfile.ZipFile(path) as z:
            assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())
        with np.load(path, allow_pickle=False) as data:
            for key in data.files:
                assert data[key].dtype.kind in "biuf", (path.name, key)


# -- the loader ----------------------------------------------------------------------------------

def test_load_suite_fills_every_field():
    cases = load_suite()
    assert len(cases) == len(catalogue())
    kinds = {"explicit": 0, "closed": 0, "invalid": 0}
    for case in cases:
        assert isinstance(case, GoldenCase)
        assert case.tolerance["reason"] and case.flags
        if case.result == "invalid":
            kinds["invalid"] += 1
            assert case.manifest["payload"] is None and case.expected_params == []
            continue
        assert case.steps[0] == 0 and case.steps[-1] == case.n_steps
        assert len(case.expected_params) == len(case.init_params)
        for i, p in enumerate(case.init_params):
            assert isinstance(p, np.ndarray) and p.dtype == np.dtype(case.dtype)
            np.testing.assert_array_equal(p, case.expected_params[i][0])
        if case.grads is not None:
            kinds["explicit"] += 1
            assert case.grad_fn is None and case.objective is None
            assert all(g.shape[0] == case.n_steps for g in case.grads)
        else:
            kinds["closed"] += 1
            assert callable(case.grad_fn) and case.objective["name"]
    assert all(v > 0 for v in kinds.values()), kinds
    assert [c.case_id for c in load_suite("*", dtype="float32")] == \
        sorted(c.case_id for c in cases if c.dtype == "float32")


@pytest.mark.parametrize("case_id", ["alphaadam_paper-v1_schedule_float32",
                                     "adams_official_rosenbrock4_float64",
                                     "adamx_official_long-b2-0.9_float32",
                                     "alphaadam_paper-v1_nanskip_float64"])
def test_loaded_case_replays_bitwise_through_refopt(case_id):
    (case,) = load_suite(case_id)
    traj = refopt.trajectory(case.rule, case.init_params, case.gradient_source(),
                             steps=case.n_steps, lr_schedule=case.lr_schedule,
                             record_every=case.manifest["record_every"], **case.hyper)
    np.testing.assert_array_equal(traj.steps, case.steps)
    for i in range(len(case.init_params)):
        np.testing.assert_array_equal(traj.params[i], case.expected_params[i])
        for b in case.manifest["buffers"]:
            np.testing.assert_array_equal(traj.state[b][i], case.expected_state[b][i])
        np.testing.assert_array_equal(traj.state["step"][i], case.expected_state["step"][i])


def test_invalid_cases_raise_naming_the_parameter():
    cases = load_suite("*invalid*")
    assert len(cases) >= 10
    for case in cases:
        err = case.manifest["expected_error"]
        with pytest.raises(ValueError, match=err["message_regex"]):
            refopt.get_rule(case.rule, **case.hyper)


def test_every_invalid_case_states_its_kind_and_why():
    cases = load_suite("*invalid*")
    assert len(cases) == sum(c.result == "invalid" for c in catalogue())
    kinds = {}
    for case in cases:
        assert case.result == "invalid"
        err = case.expected_error
        assert err is case.manifest["expected_error"]
        assert case.invalid_kind == err["kind"] in ("undefined", "policy"), case.case_id
        assert isinstance(err["why"], str) and 20 <= len(err["why"]) <= 200, case.case_id
        kinds[case.case_id] = err["kind"]
    # Classifications the specs settle (adamx.md: beta2 = 0 is accepted by the official code and
    # defined; beta2 = 1 is 0/0 in beta2_t; a NaN lr has no value; negative lr/wd/eps are defined).
    expected = {"adamx_official_invalid-beta2-0_float64": "policy",
                "adamx_official_invalid-beta2-1_float64": "undefined",
                "adamx_official_invalid-lr-negative_float64": "policy",
                "adams_paper_invalid-lr-nan_float64": "undefined",
                "adams_paper_invalid-eps-negative_float64": "policy",
                "adamw_torch_invalid-wd-negative_float64": "policy",
                "alphaadam_paper-v1_invalid-lr-inf_float64": "undefined",
                "cadamw_count_invalid-beta1-1_float64": "undefined",
                "cadamw_torch_invalid-beta2-1_float64": "undefined",
                "cadamw_count_invalid-beta2-1_float64": "policy",
                "adams_official_invalid-beta1-1_float64": "undefined"}
    assert {k: kinds[k] for k in expected} == expected
    assert {"undefined", "policy"} == set(kinds.values())
    # Valid cases carry no expected_error.
    (valid,) = load_suite("cadamw_torch_timm_float64")
    assert valid.expected_error is None and valid.invalid_kind is None


def test_cadamw_and_adams_code_form_coverage():
    ids = {c.case_id for c in catalogue()}
    for dt in ("float64", "float32"):
        for cid in ("cadamw_torch_variant", "cadamw_torch-count1_variant", "cadamw_torch_epsscale",
                    "cadamw_torch_timm", "cadamw_count_signflip", "cadamw_count1_signflip",
                    "cadamw_count1_variant", "cadamw_count_schedule", "cadamw_torch_schedule",
                    "cadamw_count_rosenbrock4", "cadamw_torch_rosenbrock4",
                    "cadamw_count_logcosh"):
            assert f"{cid}_{dt}" in ids, (cid, dt)
    invalid = [c for c in catalogue() if c.result == "invalid"]
    assert sum(c.rule == "cadamw" for c in invalid) >= 5
    assert sum(c.rule == "adams" and c.hyper["bias_correction"] for c in invalid) >= 3
    for case in load_suite("cadamw_torch_*"):
        assert case.hyper["bias_correction"] == "torch", case.case_id
        assert "corrected sqrt(v)/sqrt(1-b2^t)" in case.manifest["conventions"]["eps_placement"]
    for case in load_suite("cadamw_count*_defaults_*"):
        assert case.hyper["bias_correction"] == "hf"
        assert "uncorrected sqrt(v) (hf)" in case.manifest["conventions"]["eps_placement"]


def test_anchors_equal_payload_values():
    for case in load_suite("*spectable*") + load_suite("*_defaults_float32"):
        for anchor in case.manifest["anchors"]:
            key = anchor["array"]
            base, i = key.split(".")
            if base == "param":
                arr = case.expected_params[int(i)]
            elif base == "grad":
                arr = case.grads[int(i)]
            else:
                arr = case.expected_state[base][int(i)]
            flat = arr.reshape(arr.shape[0], -1)
            for r, (hx, bits) in enumerate(zip(anchor["hex"], anchor["bits"])):
                value = flat[r, anchor["flat_index"]]
                assert float.fromhex(hx) == float(value)
                assert value.view(np.uint64 if value.dtype == np.float64 else np.uint32) == \
                    int(bits, 16)


# -- spec tables (printed digits; rtol 1e-9 for 10-digit prints) ----------------------------------

def _series(case_id, key):
    (case,) = load_suite(case_id)
    base, i = key.split(".")
    arr = case.expected_params[int(i)] if base == "param" else case.expected_state[base][int(i)]
    return arr[1:]


def test_adamx_spec_table():
    cid = "adamx_official_spectable_float64"
    np.testing.assert_allclose(_series(cid, "param.0"), [0.8990000010, 0.8714716962, 0.8047683600,
                                                         0.7500529828, 0.6782535701], rtol=1e-9)
    np.testing.assert_allclose(_series(cid, "exp_avg.0"), [1.0, 0.2105263158, 0.8708487085,
                                                           0.6176214016, 1.199384630], rtol=1e-9)
    np.testing.assert_allclose(_series(cid, "exp_avg_sq.0"), [1.0, 0.6250188444, 1.749899499,
                                                              1.312490574, 2.849683426], rtol=1e-9)
    naive = _series("adamx_official-naive_spectable_float64", "param.0")
    np.testing.assert_allclose(naive, _series(cid, "param.0"), rtol=1e-10)


def test_adams_spec_table_both_forms():
    m = [0.1, 0.04, 0.236, 0.2124, 0.49116]
    paper = "adams_paper_spectable_float64"
    official = "adams_official_spectable_float64"
    np.testing.assert_allclose(_series(paper, "param.0"), [0.9452786425, 0.9088578633, 0.8471974764,
                                                           0.7463874539, 0.6689616065], rtol=1e-9)
    np.testing.assert_allclose(_series(official, "param.0"),
                               [0.5427864245, 0.4972607031, 0.3069158977, 0.2115086885,
                                0.0666063101], rtol=1e-9)
    np.testing.assert_allclose(_series(paper, "exp_avg.0"), m, rtol=1e-9)
    np.testing.assert_allclose(_series(official, "exp_avg.0"), m, rtol=1e-9)
    assert _manifest(paper)["variant_id"] == "adams/paper"
    assert _manifest(official)["variant_id"] == "adams/official"


def test_alphaadam_spec_table_and_theta4_rows():
    cid = "alphaadam_paper-v1_spectable_float64"
    theta = [[0.9890003162, -0.9890001581, 0.4895006324, 1.9980000000],
             [0.9880113159, -0.9693678289, 0.4697080373, 1.9960020000],
             [0.9870233046, -0.9683984611, 0.4692383293, 1.9619967983],
             [0.9786909277, -0.9616335939, 0.4660944921, 1.9600348015]]
    np.testing.assert_allclose(_series(cid, "param.0"), theta, rtol=1e-9)
    with np.load(SUITE_DIR / f"{cid}.npz", allow_pickle=False) as z:
        masks = ["".join("1" if b else "0" for b in row) for row in z["mask.0"]]
        assert masks == ["1111", "0110", "0001", "1110"]
        np.testing.assert_allclose(z["alpha.0"], [1.0, 2.0, 4.0, 4.0 / 3.0], rtol=1e-15)
    rows = {"adamw_hf_spectable-alphaadam_float64":
            [0.9793070468, -0.9684227074, 0.4750973683, 1.9729825402],
            "cadamw_count_spectable-alphaadam_float64":
            [0.9724019989, -0.9676133336, 0.4724036128, 1.9685970212],
            "cadamw_count1_spectable-alphaadam_float64":
            [0.9786201726, -0.9742463477, 0.4783218464, 1.9754118281]}
    for case_id, theta4 in rows.items():
        np.testing.assert_allclose(_series(case_id, "param.0")[-1], theta4, rtol=1e-9)


def test_coverage_of_the_issue_list():
    ids = {c.case_id for c in catalogue()}
    flags = {f for c in catalogue() for f in c.flags}
    for flag in ("FirstStep", "ZeroGrad", "EmptyMask", "ExtremeMagnitude", "SignFlip", "MaskTie",
                 "LongRun", "Freeze", "WeightDecay", "ClosedLoop", "InvalidHyperparam",
                 "ZeroSizeTensor", "ScalarTensor", "LrSchedule"):
        assert flag in flags, flag
    for rule in ("adamx", "adams", "alphaadam", "adam", "adamw", "cadamw", "adax", "sgdm"):
        assert any(i.startswith(f"{rule}_") for i in ids), rule
    alpha_opts = {(k, repr(v)) for c in catalogue() if c.rule == "alphaadam"
                  for k, v in c.hyper.items()}
    for option, values in refopt.RULES["alphaadam"].variants.items():
        for v in values:
            default = refopt.RULES["alphaadam"].cls.defaults[option]
            assert v == default or (option, repr(v)) in alpha_opts, (option, v)
    long_adamx = _manifest("adamx_official_long-b2-0.9_float64")
    assert long_adamx["n_steps"] >= 1000
    from refopt.rules.adamx import memory_horizon
    assert long_adamx["n_steps"] > 10 * memory_horizon(0.9)       # the late regime
    (mags,) = load_suite("adamx_official_magnitudes_float64")
    for values in (mags.init_params[0], mags.grads[0]):
        assert np.max(np.abs(values)) > 1e29 and np.min(np.abs(values)) < 1e-29


# -- accuracy of the float64 values and the tolerances --------------------------------------------

def test_reference_accuracy_against_mpmath():
    """History-scaled error < 1e-13 (float64 rounding over <= 2000 steps); the naive coef_form
    loses ~3 digits to cancellation in 1 - beta2**((1-beta2)t) and is held to 1e-11."""
    checked = 0
    for path in MANIFESTS:
        m = json.loads(path.read_text())
        acc = m["reference_accuracy"]
        if m["result"] == "invalid" or acc["fallback"]:
            assert acc["fallback_reason"]
            continue
        checked += 1
        assert acc["mp_dps"] == 50 and acc["steps_checked"] >= min(m["n_steps"], 200)
        limit = 1e-11 if m["options"].get("coef_form") == "naive" else 1e-13
        assert acc["worst_history_scaled_error"] < limit, path.name
        if "SpecTable" in m["flags"] and m["options"].get("coef_form") != "naive":
            assert acc["worst_rel_error"] < 1e-15, path.name
    assert checked > 80


#: float64 explicit cases whose faithful runs need more than a tenth of the atol floor, so the
#: builder's atol is 10x the measured need (still derived, not chosen): C-AdamW on g**2 ~ eps
#: needs 1.2e-17 (hf) and 2.7e-17 (torch) against the 1e-16 floor.
ABOVE_FLOOR_FLOAT64 = {"cadamw_count_epsscale_float64", "cadamw_torch_epsscale_float64"}


def test_measured_spread_is_inside_the_stated_tolerance():
    """Every tolerance keeps a 10x margin over the measured spread of the legitimate
    implementations (reordered loop + faithfully rounded runs, FORMAT.md section 5)."""
    for path in MANIFESTS:
        m = json.loads(path.read_text())
        if m["result"] == "invalid":
            continue
        tol, meas = m["tolerance"], m["tolerance"]["measured"]
        assert meas["implementations"] == list(legitimate_for(m["param_dtype"])), path.name
        assert "faithfully rounded" in tol["reason"] and "FMA" in tol["reason"], path.name
        if "ExtremeMagnitude" in m["flags"]:
            assert tol["atol"] == 0.0
            assert meas["legit_worst_rel"] * MARGIN <= tol["rtol"] <= 1e-3, path.name
        else:
            assert tol["rtol"] == RTOL[m["param_dtype"]]
        if "ExtremeMagnitude" in m["flags"]:
            pass
        elif m["explicit_gradients"]:
            assert tol["pointwise_horizon"] == m["n_steps"]
            assert meas["legit_needed_atol"] * MARGIN <= tol["atol"], path.name
            assert meas["legit_needed_atol"] == max(
                meas["legit_needed_atol_by_implementation"].values())
            assert tol["atol"] >= meas["atol_floor"] > 0, path.name
            if m["param_dtype"] == "float64" and m["case_id"] not in ABOVE_FLOOR_FLOAT64:
                # No feedback: faithful rounding leaves float64 explicit cases as tight as the
                # operand-rounding floor alone.
                assert tol["atol"] == meas["atol_floor"], path.name
        else:
            h = tol["pointwise_horizon"]
            assert 0 <= h <= m["n_steps"]
            assert h == min(meas["legit_horizon_by_implementation"].values()), path.name
            by_step = meas["legit_score_by_step"]
            assert [s for s, _ in by_step][-1] == m["n_steps"]
            # Within the horizon every legitimate run stays within a tenth of the tolerance;
            # the next stored step is the first where one of them does not (the horizon is
            # the longest the measurement supports).
            assert all(score * MARGIN <= 1 for s, score in by_step if s <= h), path.name
            later = [score for s, score in by_step if s > h]
            assert not later or later[0] * MARGIN > 1, path.name
            assert any(inv["id"] == "final_loss" for inv in tol["invariants"])


def test_final_loss_invariant_is_a_float64_value_with_a_measured_absolute_tolerance():
    """final_loss: ``value`` is f evaluated in float64 at the golden final params cast to
    float64 (recomputed here from the payload with the objective named in the manifest), so a
    port in any language can compare against it; the tolerance is atol + rtol*|value| with
    atol >= 10x the legitimate runs' measured absolute spread and rtol the dtype's floor."""
    from refopt.objectives import make_objective

    checked = 0
    for path in MANIFESTS:
        m = json.loads(path.read_text())
        invs = [i for i in (m.get("tolerance") or {}).get("invariants") or []
                if i["id"] == "final_loss"]
        if not invs:
            continue
        (inv,) = invs
        checked += 1
        obj = make_objective(m["objective"]["name"], **m["objective"]["constants"])
        with np.load(path.with_suffix(".npz")) as z:
            finals = [z[f"param.{i}"][-1] for i in range(len(m["tensors"]))]
            inits = [z[f"param.{i}"][0] for i in range(len(m["tensors"]))]
        want = sum(obj.value(np.asarray(p, dtype=np.float64)) for p in finals)
        want0 = sum(obj.value(np.asarray(p, dtype=np.float64)) for p in inits)
        assert F.decode_float(inv["value"]) == want, path.name
        assert F.decode_float(inv["initial_value"]) == want0, path.name
        assert "float64" in inv["statement"] and "atol" in inv["statement"]
        assert inv["rtol"] == {"float64": 1e-6, "float32": 1e-3}[m["param_dtype"]], path.name
        spread = inv["measured"]["legit_abs_spread"]
        assert MARGIN * spread <= inv["atol"] <= 2 * MARGIN * spread, path.name
        # Relative to the initial loss the allowance stays small even where the final loss is
        # ~0 (AlphaAdam's logcosh cases, the Rosenbrock float32 valley): at most 0.6 %.
        assert inv["atol"] <= 6e-3 * want0, path.name
    assert checked == 28  # the closed-loop cases: 11 per dtype plus 3 C-AdamW per dtype
    # The float32 evaluation is not what is stored: near the minimum it is quantised.
    m = json.loads((SUITE_DIR / "adamx_official_logcosh_float32.json").read_text())
    inv = next(i for i in m["tolerance"]["invariants"] if i["id"] == "final_loss")
    assert F.decode_float(inv["value"]) == pytest.approx(7.095e-7, rel=1e-3)    # not 2^-21


@pytest.mark.parametrize("case_id", ["adams_paper_logcosh_float32",
                                     "adams_official_logcosh_float32",
                                     "adams_paper_rosenbrock4_float32",
                                     "alphaadam_paper-v1_logcosh_float32",
                                     "alphaadam_paper-v1_logcosh_float64",
                                     "adamx_official_long-b2-0.9_float32",
                                     "adams_paper_defaults_float64"])
def test_unseen_faithful_implementations_pass(case_id):
    """Out of sample: faithfully rounded runs with seeds the builder never used (one in each
    operation order) pass the case's tolerance up to its horizon. These are the closed-loop
    cases with the shortest horizons, a long float32 run and a float64 explicit case."""
    from refopt.golden import mp_reference as MP
    from refopt.golden.tolerances import _full_hyper, _score_by_step

    (spec,) = select(catalogue(), case_id)
    (case,) = load_suite(case_id)
    tol = case.tolerance
    steps = [int(s) for s in case.steps]
    inside = [s <= tol["pointwise_horizon"] for s in steps]
    for seed, reorder in ((1000, False), (1001, True)):
        A = MP.FloatArith(case.dtype, reorder=reorder, faithful_seed=seed)
        run = MP.run(A, case.rule, _full_hyper(spec), case.init_params, case.gradient_source(),
                     case.n_steps, case.lr_schedule, record=steps,
                     as_array=MP.float_array(case.dtype))
        got, expected = {}, {}
        for i in range(len(case.init_params)):
            for base in ("param",) + tuple(case.manifest["buffers"]):
                gold = (case.expected_params[i] if base == "param"
                        else case.expected_state[base][i])
                expected[f"{base}.{i}"] = gold
                got[f"{base}.{i}"] = np.array([np.reshape(run[s][f"{base}.{i}"], gold.shape[1:])
                                               for s in steps], dtype=case.dtype)
        score = _score_by_step(got, expected, tol["rtol"], tol["atol"])
        assert np.max(score[inside]) <= 1.0, (seed, score)


def _within(actual, expected, tol) -> bool:
    return bool(np.all(np.abs(actual - expected) <= tol["atol"] + tol["rtol"] * np.abs(expected)))


@pytest.mark.parametrize("case_id,wrong", [
    ("adams_paper_defaults_float64", {"bias_correction": True}),
    ("adams_paper_defaults_float32", {"weight_decay": 0.0}),
    ("adamx_official_defaults_float64", {"coef_form": "naive", "weight_decay": 0.0}),
    ("alphaadam_paper-v1_signflip_float64", {"mask_source": "m_t"}),
    ("alphaadam_paper-v1_signflip_float32", {"strict": False}),
    # C-AdamW's eps placement (spec alphaadam.md E5) is caught in both directions and dtypes.
    ("cadamw_torch_epsscale_float32", {"bias_correction": "hf"}),
    ("cadamw_torch_epsscale_float64", {"bias_correction": "hf"}),
    ("cadamw_count_epsscale_float32", {"bias_correction": "torch"}),
    ("cadamw_torch_timm_float64", {"bias_correction": "hf"}),
    ("cadamw_torch_variant_float64", {"bias_correction": "hf"}),
    ("cadamw_count1_signflip_float32", {"scaling": "count"}),
])
def test_tolerance_rejects_a_planted_mistake(case_id, wrong):
    (case,) = load_suite(case_id)
    hyper = {**case.hyper, **wrong}
    traj = refopt.trajectory(case.rule, case.init_params, case.grads, lr_schedule=case.lr_schedule,
                             **hyper)
    assert not all(_within(traj.params[i], case.expected_params[i], case.tolerance)
                   for i in range(len(case.init_params)))
    # ... while the right hyperparameters pass.
    traj = refopt.trajectory(case.rule, case.init_params, case.grads, lr_schedule=case.lr_schedule,
                             **case.hyper)
    assert all(_within(traj.params[i], case.expected_params[i], case.tolerance)
               for i in range(len(case.init_params)))


# -- size, packaging, CLI ------------------------------------------------------------------------

def test_suite_is_small_enough_for_git():
    # A budget against accidental growth (whole histories of big tensors, compressed-looking
    # payloads), not a numeric tolerance: 6.1 MiB with the float32 cases' per-coordinate bound
    # and its measured k per implementation (+0.2 MiB of manifest text in 72 files).
    total = sum(p.stat().st_size for p in SUITE_DIR.iterdir())
    assert total < 8 * 2 ** 20, total


def test_pyproject_ships_the_suite_schema_and_format():
    text = (Path(refopt.__file__).parent.parent / "pyproject.toml").read_text()
    line = next(l for l in text.splitlines() if l.startswith('"refopt" = ['))
    for pattern in ("golden/suite/**/*", "golden/schema/*.json", "golden/FORMAT.md"):
        assert f'"{pattern}"' in line


def test_cli_check_exit_status(tmp_path, capsys):
    from refopt.cli import main

    assert main(["golden", "check", "--pattern", "*spectable*"]) == 0
    _copy_case("adams_paper_spectable_float64", tmp_path)
    npz = tmp_path / "adams_paper_spectable_float64.npz"
    npz.write_bytes(npz.read_bytes()[:-10])
    status = main(["golden", "check", "--dir", str(tmp_path), "--pattern",
                   "adams_paper_spectable_float64"])
    err = capsys.readouterr().err
    assert status == 1 and "CORRUPT" in err and "adams_paper_spectable_float64" in err


def test_hex_floats_round_trip():
    for x, dtype in [(1 / 3, "float32"), (1 / 3, "float64"), (-0.0, "float64"), (math.inf, "float64"),
                     (math.nan, "float32"), (5e-324, "float64")]:
        enc = F.encode_float(x, dtype)
        back = F.decode_float(enc)
        ref = float(np.float32(x)) if dtype == "float32" else x
        assert (math.isnan(back) and math.isnan(ref)) or (back == ref and
                                                          math.copysign(1, back) == math.copysign(1, ref))
    assert F.encode_float(1 / 3, "float32") == {"hex": "0x1.5555560000000p-2", "bits": "3eaaaaab",
                                                "decimal": "0.3333333432674408"}


@pytest.mark.parametrize("case_id", ["adam_torch_defaults_float32", "adamw_torch_defaults_float32",
                                     "adamw_torch_defaults_float64", "adamw_torch_long_float64",
                                     "adamw_torch_schedule_float64"])
def test_an_independent_implementation_fits_the_tolerance(case_id):
    """torch.optim.Adam/AdamW (foreach=False) is a correct port written by others: it must pass."""
    torch = pytest.importorskip("torch", reason="the independent implementation is torch.optim")
    (case,) = load_suite(case_id)
    h = case.hyper
    cls = torch.optim.AdamW if case.rule == "adamw" else torch.optim.Adam
    params = [torch.nn.Parameter(torch.from_numpy(p.copy())) for p in case.init_params]
    opt = cls(params, lr=h["lr"], betas=h["betas"], eps=h["eps"], weight_decay=h["weight_decay"],
              foreach=False)
    rows = {int(s): r for r, s in enumerate(case.steps)}
    for t in range(1, case.n_steps + 1):
        if case.lr_schedule is not None:
            opt.param_groups[0]["lr"] = case.lr_schedule[t - 1]
        for p, g in zip(params, case.grads):
            p.grad = torch.from_numpy(np.array(g[t - 1], copy=True))
        opt.step()
        if t in rows:
            for i, p in enumerate(params):
                got = {"param": p.detach().numpy(), "exp_avg": opt.state[p]["exp_avg"].numpy(),
                       "exp_avg_sq": opt.state[p]["exp_avg_sq"].numpy()}
                want = {"param": case.expected_params[i][rows[t]],
                        "exp_avg": case.expected_state["exp_avg"][i][rows[t]],
                        "exp_avg_sq": case.expected_state["exp_avg_sq"][i][rows[t]]}
                for key in got:
                    assert _within(got[key], want[key], case.tolerance), (t, i, key)
