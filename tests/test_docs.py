"""The README's example and the package docstring run as written (a new user's first contact)."""
import doctest
import sys
import re
from pathlib import Path

import refopt

ROOT = Path(__file__).resolve().parents[1]


def test_package_docstring_example():
    result = doctest.testmod(refopt, verbose=False)
    assert result.attempted > 0 and result.failed == 0


def test_readme_first_example_runs_and_prints_what_it_says(capsys):
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## A first example\s+```python\n(.*?)```", text, re.S).group(1)
    exec(compile(block, "README.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "[0.94527864] (1, 1)"
    assert out[1].startswith("(6,) 2.849683426")


def test_refopt_rules_lists_every_default(capsys):
    from refopt.cli import main

    assert main(["rules", "alphaadam"]) == 0
    out = capsys.readouterr().out
    for key in refopt.RULES["alphaadam"].cls.defaults:
        assert f"    {key} = " in out
    assert "eps = None (= 1e-06 with the default options)" in out
    assert main(["rules", "adamax"]) == 2
    assert "unknown rule 'adamax'" in capsys.readouterr().err


def test_every_command_is_registered():
    from refopt.cli import build_parser

    text = build_parser().format_help()
    for command in ("rules", "report", "sweep", "golden", "verify", "compare", "bench", "prove"):
        assert f"    {command} " in text


# --- Every document's code blocks and cited paths (docs/conventions.md) -------------------------
import glob  # noqa: E402
import json  # noqa: E402
import shlex  # noqa: E402

import pytest  # noqa: E402

#: The Markdown documents of the repository (the documentation site's pages, mkdocs.yml).
DOCUMENTS = sorted({"README.md", *glob.glob("docs/*.md", root_dir=ROOT), "refopt/verify/PORTING.md",
                    "refopt/golden/FORMAT.md", "proofs/README.md",
                    *glob.glob("proofs/spec/*.md", root_dir=ROOT), "notebooks/README.md",
                    "examples/c/README.md"} - {"docs/api.md"})
#: Languages a fence may name (docs/conventions.md): python runs, json parses, bash/console
#: commands are parsed by refopt's own parser, text is not code.
LANGUAGES = {"python", "json", "bash", "console", "text", "c"}
FENCE = re.compile(r"^(?P<indent> *)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
                   re.S | re.M)


def blocks(doc: str):
    text = (ROOT / doc).read_text(encoding="utf-8")
    for m in FENCE.finditer(text):
        body = "\n".join(line[len(m.group("indent")):] for line in m.group("body").splitlines())
        yield m.group("info").strip(), body, text[:m.start()].count("\n") + 1


def test_every_code_block_names_a_language_of_the_convention():
    bad = [f"{doc}:{line} {info!r}" for doc in DOCUMENTS for info, _, line in blocks(doc)
           if info not in LANGUAGES]
    assert not bad, "code blocks without a known language (docs/conventions.md): " + ", ".join(bad)
    assert len(DOCUMENTS) >= 12


@pytest.mark.parametrize("doc", [d for d in DOCUMENTS
                                 if any(i == "python" for i, _, _ in blocks(d))])
def test_python_blocks_run_in_order(doc, tmp_path, monkeypatch, capsys):
    """A document's python blocks run top to bottom in one namespace, as a reader would paste
    them into one session, in an empty working directory."""
    from refopt import objectives, registry

    monkeypatch.chdir(tmp_path)
    # A page may register rules and objectives (docs/extending.md): in copies of the registries,
    # so that no other test in this process finds them taken.
    monkeypatch.setattr(registry, "RULES", dict(registry.RULES))
    monkeypatch.setattr(registry, "_ALIASES", dict(registry._ALIASES))
    monkeypatch.setattr(objectives, "OBJECTIVES", dict(objectives.OBJECTIVES))
    namespace: dict = {"__name__": "__docs__"}
    for info, body, line in blocks(doc):
        if info != "python":
            continue
        try:
            exec(compile(body, f"{doc}:{line}", "exec"), namespace)
        except ModuleNotFoundError as exc:
            if exc.name.split(".")[0] in ("torch", "jax", "optax", "numba", "cupy"):
                pytest.skip(f"{doc}:{line} needs {exc.name} (an extra)")
            raise


def test_json_blocks_parse():
    for doc in DOCUMENTS:
        for info, body, line in blocks(doc):
            if info == "json":
                text = body.strip()
                json.loads(text if text.startswith(("{", "[")) else "{" + text + "}"), (doc, line)


def _commands(info: str, body: str):
    for raw in body.splitlines():
        if info == "console":
            if not raw.startswith("$ "):
                continue  # output
            raw = raw[2:]
        for part in re.split(r"&&|\|\||;|\|", raw):
            try:
                words = shlex.split(part, comments=True)
            except ValueError:
                words = part.split()
            if words:
                yield words


def test_shell_blocks_name_real_commands_and_flags(capsys):
    from refopt.cli import build_parser

    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    checked = 0
    for doc in DOCUMENTS:
        for info, body, line in blocks(doc):
            if info not in ("bash", "console"):
                continue
            for words in _commands(info, body):
                if words[0] == "refopt":
                    try:
                        build_parser().parse_args(words[1:])
                    except SystemExit as exc:
                        assert exc.code == 0, (f"{doc}:{line}: {' '.join(words)}: "
                                               f"{capsys.readouterr().err.strip()}")
                    checked += 1
                elif words[0] == "make" and doc != "examples/c/README.md":
                    for target in words[1:]:
                        if "=" not in target:
                            assert target in targets, f"{doc}:{line}: make {target}"
    assert checked >= 10


#: Paths a document may cite that are not in the repository, each with the reason.
NOT_IN_REPOSITORY = {
    "figures/bench_gpu.json": "written by `refopt bench --backends cupy` on a GPU (not yet run)",
    "notebooks/*.ipynb": "written by `jupytext --to notebook`, ignored by git",
    "shared/spec/*.md": "the golden manifests' name for proofs/spec/ (proofs/spec/README.md)",
}
# The spec copies (proofs/spec/<rule>.md) cite paths of the papers' own repositories; left out.
CITING = [d for d in DOCUMENTS if not re.fullmatch(r"proofs/spec/\w+\.md", d)
          or d == "proofs/spec/README.md"] + sorted(glob.glob("notebooks/0*.py", root_dir=ROOT)) + [
    "refopt/experiments/report.py"]  # the text of reports/report.md
_PATH = re.compile(r"(?<![\w/.\-])((?:\.ci|refopt|proofs|docs|tests|notebooks|figures|examples|"
                   r"shared)/[\w.\-*{},<>/]*)")


def cited_paths(doc: str):
    for m in _PATH.finditer((ROOT / doc).read_text(encoding="utf-8")):
        path = m.group(1).rstrip(".,")
        last = path.rstrip("/").rsplit("/", 1)[-1]
        if not (path.endswith("/") or "." in last or "*" in last or "<" in last):
            continue  # "refopt/NumPy versions" is prose, not a path
        options = [path]
        if "{" in path and "}" in path:
            head, rest = path.split("{", 1)
            alts, tail = rest.split("}", 1)
            options = [head + a + tail for a in alts.split(",")]
        for p in options:
            yield re.sub(r"<[^>]*>|NN(?=_)", "*", p)


def missing_paths(docs) -> list:
    """``doc: path`` for each path the documents cite that is neither in the repository nor
    listed in NOT_IN_REPOSITORY."""
    from fnmatch import fnmatch

    return sorted({f"{doc}: {p}" for doc in docs for p in cited_paths(doc)
                   if not any(fnmatch(p, known) for known in NOT_IN_REPOSITORY)
                   and not glob.glob(p, root_dir=ROOT)})


def test_every_cited_path_exists():
    missing = missing_paths(CITING)
    assert not missing, "documents cite paths that are not in the repository:\n" + "\n".join(
        missing)


def test_cited_path_check_catches_a_missing_path(tmp_path, monkeypatch):
    doc = tmp_path / "doc.md"
    doc.write_text("see `shared/spec/adams.md` and `proofs/nothing_here.md` and refopt/NumPy\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    found = set(cited_paths("doc.md"))
    assert found == {"shared/spec/adams.md", "proofs/nothing_here.md"}
    # The exempt path is let through, the missing one is reported.
    assert missing_paths(["doc.md"]) == ["doc.md: proofs/nothing_here.md"]


#: README console samples run by the test below: fast, deterministic commands (the report's line
#: holds its run time, so it is only parsed).
RUN_SAMPLES = ("verify",)


def _console_samples(doc: str):
    """(command words, the output lines shown) of each `$ refopt ...` in a console block."""
    for info, body, line in blocks(doc):
        if info != "console":
            continue
        command, shown = None, []
        for raw in body.splitlines() + ["$ "]:
            if raw.startswith("$ "):
                if command:
                    yield command, shown, line
                command, shown = shlex.split(raw[2:]) or None, []
            elif command and raw.strip() and raw.strip() != "...":
                shown.append(" ".join(raw.split()))


def test_readme_console_samples_print_what_they_show(capsys, monkeypatch):
    """The README's sample output is what its commands print now: each line shown (``...``
    stands for lines left out) is a line of the real output, whitespace aside."""
    from refopt.cli import main as refopt_main

    pytest.importorskip("torch", reason="the README's verify samples run torch ports (extra)")
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "ports"))
    ran = 0
    for words, shown, line in _console_samples("README.md"):
        if words[0] != "refopt" or words[1] not in RUN_SAMPLES:
            continue
        capsys.readouterr()
        refopt_main(words[1:] + ["--quiet"])
        printed = {" ".join(x.split()) for x in capsys.readouterr().out.splitlines()}
        missing = [x for x in shown if x not in printed]
        assert not missing, f"README.md:{line}: {' '.join(words)} no longer prints {missing}"
        ran += 1
    assert ran >= 2


def test_readme_many_tensor_table_is_the_committed_bench_run():
    """The README's ratios are figures/bench_cpu.json's (one full run), not typed by hand."""
    import json

    bench = json.loads((ROOT / "figures" / "bench_cpu.json").read_text())
    text = (ROOT / "README.md").read_text()
    rules = ("adamx", "adams", "alphaadam", "cadamw")
    for key, label in (("many_tensors", "200 tensors of 1000"), ("model_tensors", "GPT-2 small")):
        row = next(line for line in text.splitlines() if line.startswith(f"| {label}"))
        cells = [c.strip() for c in row.strip("|").split("|")[1:]]
        ratio = {(r["rule"], r["mode"]): r["speed_vs_torch_fused"]
                 for r in bench[key]["results"] if r["backend"] == "numba"}
        expected = [f"{ratio[(rule, 'step_')]:.2f}x / {ratio[(rule, 'step')]:.2f}x"
                    for rule in rules]
        assert cells == expected, (label, cells, expected)
