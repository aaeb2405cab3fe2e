"""MkDocs hooks for refopt's documentation site (see mkdocs.yml).

The site mirrors the repository: every page keeps its repository path (``README.md`` is the home
page, ``refopt/verify/PORTING.md`` stays there), so a relative link resolves on the site exactly
as it does in the repository, and a link to a missing file or heading is a strict-mode failure.

* :func:`on_files` replaces the files MkDocs found under ``docs/`` by :data:`PAGES` (globs over
  the repository) plus every repository file a page links to (figures, sources), copied as is.
"""
from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

#: The repository (REFOPT_DOCS_ROOT overrides it: tests/test_docs_site.py builds a broken tree).
ROOT = Path(os.environ.get("REFOPT_DOCS_ROOT") or Path(__file__).resolve().parents[2])

#: The documents of the site, as globs relative to the repository root.
PAGES = (
    "README.md",
    "docs/*.md",
    "refopt/verify/PORTING.md",
    "refopt/golden/FORMAT.md",
    "proofs/*.md",
    "proofs/spec/*.md",
    "notebooks/README.md",
    "notebooks/0*.py",
    "examples/c/README.md",
)

_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _page_paths() -> list[str]:
    seen: dict[str, None] = {}
    for pattern in PAGES:
        for path in sorted(ROOT.glob(pattern)):
            rel = path.relative_to(ROOT).as_posix()
            if path.is_file() and not path.name.startswith("_"):
                seen[rel] = None
    return list(seen)


def _linked_files(page: str) -> set[str]:
    """Repository files (not pages) that the Markdown page links to by a relative path."""
    if not page.endswith(".md"):
        return set()
    found = set()
    for target in _LINK.findall((ROOT / page).read_text(encoding="utf-8")):
        target = target.split("#", 1)[0]
        if not target or "://" in target or target.startswith(("/", "mailto:")):
            continue
        rel = posixpath.normpath(posixpath.join(posixpath.dirname(page), target))
        if not rel.startswith("..") and (ROOT / rel).is_file():
            found.add(rel)
    return found


@event_priority(100)  # before mkdocs-jupyter's on_files, which wraps the notebooks
def on_files(files: Files, config) -> Files:
    pages = _page_paths()
    extra = set().union(*map(_linked_files, pages)) - set(pages)
    new = Files([])
    for rel in pages + sorted(extra):
        new.append(File(rel, str(ROOT), config["site_dir"], config["use_directory_urls"]))
    # The theme's own assets (CSS, JavaScript) that MkDocs listed; docs/ itself is re-added above.
    for f in files:
        if not f.src_uri.endswith(".md") and f.abs_src_path and not str(
                Path(f.abs_src_path)).startswith(str(ROOT / "docs")):
            new.append(f)
    return new
