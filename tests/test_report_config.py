"""refopt report --config FILE / --seeds / --rules (issue 17): experiments configurable without
code, from the shipped configuration files."""
from __future__ import annotations

import json
import re

import pytest

from refopt.experiments import _common as C
from refopt.experiments import adams_rate


def test_the_shipped_configurations_are_the_experiments_configs():
    for name in C.SHIPPED_CONFIGS:
        data = json.loads((C.CONFIG_DIR / f"{name}.json").read_text())
        assert set(data) - {"description", "notes"} == set(C.EXPERIMENTS)
    assert adams_rate.CONFIGS["full"]["Ts"][-1] == 100000
    assert adams_rate.CONFIGS["quick"]["seeds"] == list(range(6))


def test_a_config_file_replaces_the_base_settings_and_seeds_replace_all(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"base": "full", "adams_rate": {"Ts": [100, 1000]}}))
    name, cfg = C.load_report_config(path)
    assert name == "mine" and cfg["adams_rate"]["Ts"] == [100, 1000]
    assert cfg["adams_rate"]["seeds"] == list(range(20))          # the base's
    assert cfg["alphaadam_masks"] == C.shipped_configs("alphaadam_masks")["full"]
    _, seeded = C.load_report_config(path, seeds=[3, 4])
    assert all(v["seeds"] == [3, 4] for v in seeded.values())
    assert C.parse_seeds("4") == [0, 1, 2, 3] and C.parse_seeds("2,7") == [2, 7]
    # A file named like a shipped configuration would replace it in this process: refused.
    shadow = tmp_path / "quick.json"
    shadow.write_text(json.dumps({"base": "full"}))
    with pytest.raises(ValueError, match="must not be a shipped configuration"):
        C.load_report_config(shadow)


@pytest.mark.parametrize("content, match", [
    ({"adams_rate": {"T": [1]}},
     r"adams_rate\.T is not a setting; allowed: \['Ts', 'constants', 'dim', 'objective', "
     r"'rate_criterion', 'rule_under_test', 'seeds'\]"),
    ({"adams_rate": {"rate_criterion": "two-sided"}},
     r"adams_rate\.rate_criterion must be one of \['upper', 'equivalence'\], got 'two-sided'"),
    ({"alphaadam_masks": {"rule_under_test": "alphadam"}},
     r"alphaadam_masks\.rule_under_test: unknown rule 'alphadam'; known rules: \["),
    ({"alphaadam_masks": {"rule_under_test": "no_such_module_xyz:Rule"}},
     r"alphaadam_masks\.rule_under_test: rule 'no_such_module_xyz:Rule': cannot import module"),
    ({"adams_rate": {"objective": "cosh", "constants": {"noise": "cauchy"}}},
     r"adams_rate\.objective 'cosh' with constants \{'noise': 'cauchy'\}: "),
    ({"adamx_transition": {"rule_under_test": "adams"}},
     r"adamx_transition\.rule_under_test 'adams' must keep AdamX's state"),
    ({"base": "huge"}, r"base must be one of \['quick', 'full', 'tiny'\]"),
    ({"adams": {}}, r"unknown key\(s\) \['adams'\]; allowed:"),
    ({"adams_rate": {"seeds": [0, 0]}}, r"adams_rate\.seeds must be a non-empty list of distinct"),
    ({"adams_rate": {"dim": "ten"}}, r"adams_rate\.dim must be a int"),
])
def test_bad_config_files_are_one_line_naming_the_field(tmp_path, content, match):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=match) as info:
        C.load_report_config(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("argv, match", [
    (["--seeds", "0"], "--seeds must be a count N >= 1"),
    (["--seeds", "1,x"], "--seeds must be"),
    (["--rules", "adamz"],
     r"--rules must be a comma-separated list of \['adamx', 'adams', 'alphaadam'\]"),
    (["--config", "{bad}"], r"adams_rate\.Ts"),
    (["--config", "{bad}", "--full"], "cannot be combined with --full"),
])
def test_report_usage_errors_exit_2_in_one_line(tmp_path, capsys, argv, match):
    from refopt.cli import main

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"adams_rate": {"Ts": "many"}}))
    argv = [a.format(bad=bad) for a in argv]
    assert main(["report", "--out", str(tmp_path / "r"), "--skip-proofs", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(match, err), err
    assert not (tmp_path / "r" / "report.md").exists()


def test_report_from_a_config_file_for_one_paper(tmp_path, capsys):
    from refopt.cli import main

    path = tmp_path / "adams_small.json"
    path.write_text(json.dumps({"base": "tiny", "adams_rate": {"Ts": [100, 300, 1000]}}))
    out = tmp_path / "r"
    assert main(["report", "--out", str(out), "--config", str(path), "--seeds", "3",
                 "--rules", "adams", "--skip-proofs"]) == 0
    text = (out / "report.md").read_text()
    assert "configuration **adams_small**" in text
    assert "## AdamS" in text and "## AdamX" not in text and "## AlphaAdam" not in text
    assert "| adamx." not in text and "| adams.C1 |" in text
    summary = json.loads((out / "report.json").read_text())
    rate = next(e for e in summary["experiments"] if e["name"] == "adams_rate")
    assert rate["numbers"]["Ts"] == [100, 300, 1000] and rate["numbers"]["seeds"] == 3
    assert [e["name"] for e in summary["experiments"]] == ["adams_rate", "real_data"]
