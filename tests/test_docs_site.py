"""The documentation site (mkdocs.yml) builds in strict mode: a warning, a broken internal link or
heading anchor, or a docstring that mkdocstrings cannot render fails the build. Needs the `docs`
extra (skipped with the reason otherwise). The whole build takes about 5-8 s here."""
import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MISSING = [m for m in ("mkdocs", "mkdocstrings", "mkdocstrings_handlers.python", "mkdocs_jupyter",
                       "material") if importlib.util.find_spec(m.split(".")[0]) is None]
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"the docs extra is not installed "
                                f"(missing {', '.join(MISSING)}): pip install -e '.[docs]'")


def _build(config: Path, site: Path, root: Path | None = None):
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    if root is not None:
        env["REFOPT_DOCS_ROOT"] = str(root)
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f",
                           str(config), "-d", str(site)], capture_output=True, text=True,
                          env=env, timeout=300)


def test_site_builds_strict_with_every_page(tmp_path):
    site = tmp_path / "site"
    done = _build(ROOT / "mkdocs.yml", site)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    home = (site / "index.html").read_text()
    assert "Set-up: two commands" in home and "I want to check my port" in home
    kernels = (site / "docs" / "kernels.html").read_text()
    assert "roofline" in kernels and "<table>" in kernels
    api = (site / "docs" / "api.html").read_text()
    for name in ("get_rule", "trajectory", "AdamX", "AlphaAdam", "verify_rule", "assert_conforms",
                 "save_state"):
        assert name in api, name
    for page in ("refopt/verify/PORTING.html", "refopt/golden/FORMAT.html",
                 "docs/conformance.html", "docs/reliability.html", "docs/usage.html",
                 "proofs/adamx.html", "proofs/spec/adams.html", "docs/cli.html"):
        assert (site / page).is_file(), page
    for nb in sorted((ROOT / "notebooks").glob("0*.py")):  # rendered from the jupytext source
        html = (site / "notebooks" / (nb.stem + ".html")).read_text()
        assert "jp-Notebook" in html or "jupyter" in html.lower(), nb.name
    assert (site / "docs" / "extending.html").is_file()
    assert not (ROOT / ".cache" / "mkdocs-jupyter").exists()  # nothing written into the tree


def _broken_tree(tmp_path: Path, readme: str) -> Path:
    """A repository of two pages built with the real hooks and the real validation settings."""
    import yaml

    real = (ROOT / "mkdocs.yml").read_text()
    validation = real[real.index("validation:"):].split("\nnav:")[0]
    tree = tmp_path / "repo"
    (tree / "docs").mkdir(parents=True)
    (tree / "docs" / "usage.md").write_text("# Usage\n\n## Options\n\ntext\n")
    (tree / "README.md").write_text(readme)
    config = tree / "mkdocs.yml"
    config.write_text(textwrap.dedent(f"""\
        site_name: t
        docs_dir: docs
        use_directory_urls: false
        hooks: [{ROOT / 'docs' / '_site' / 'hooks.py'}]
        nav: [README.md, docs/usage.md]
        """) + validation + "\n")
    yaml.safe_load(config.read_text())
    return config


@pytest.mark.parametrize("link, message", [
    ("[gone](docs/missing.md)", "docs/missing.md"),
    ("[bad anchor](docs/usage.md#no-such-heading)", "no-such-heading"),
])
def test_broken_internal_link_fails_the_build(tmp_path, link, message):
    config = _broken_tree(tmp_path, f"# Home\n\nSee {link}.\n")
    done = _build(config, tmp_path / "site", root=config.parent)
    assert done.returncode != 0
    assert message in done.stdout + done.stderr


def test_working_links_pass(tmp_path):
    config = _broken_tree(tmp_path, "# Home\n\nSee [usage](docs/usage.md#options).\n")
    done = _build(config, tmp_path / "site", root=config.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site" / "docs" / "usage.html").is_file()
