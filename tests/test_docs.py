"""The docs and docstrings name only files and modules that exist, so a newcomer following them never
lands on nothing: README.md, CONTRACTS.md, docs/, and every module docstring of src/ and workshop/. Every
link between the pages lands on a page and a heading, and the README links every page of docs/."""

from __future__ import annotations

import ast
import importlib
import posixpath
import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parent.parent
TOP = ("src", "tests", "workshop", "scripts", "make", "bench", "docs", "events", ".ci")
PATH = re.compile(r"(?<![\w./-])((?:" + "|".join(re.escape(t) for t in TOP) + r")/[\w./*-]*[\w*/])")
FILE_NAME = re.compile(r"(?<![\w./$-])([\w-]+\.(?:py|md|yaml|toml|json|mk))\b")
MODULE = re.compile(r"(?<![\w./-])(?:core|handlers|cli)(?:\.(?!py\b|md\b)\w+)+")
OUTSIDE = {"keys.json"}
"""A user's file in the examples (`aws cloudtrail list-public-keys ... > keys.json`)."""
PLACEHOLDER = re.compile(r"[A-Z]{3,}")
"""`events/NAME.json`: a name to fill in."""


def _tracked() -> list[str]:
    listed = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=False)
    if listed.returncode != 0:  # not a git checkout (an unpacked sdist): every file on disk
        return [str(p.relative_to(REPO)) for p in REPO.rglob("*") if p.is_file()]
    return listed.stdout.split()


TRACKED = _tracked()
NAMES = {Path(path).name for path in TRACKED}


def _texts() -> list[tuple[str, str]]:
    texts = [(name, (REPO / name).read_text(encoding="utf-8"))
             for name in ("README.md", "CONTRACTS.md", *sorted(p for p in TRACKED if p.startswith("docs/")))]
    for path in sorted(p for p in TRACKED if p.endswith(".py") and p.startswith(("src/", "workshop/"))):
        doc = ast.get_docstring(ast.parse((REPO / path).read_text(encoding="utf-8")))
        if doc:
            texts.append((path, doc))
    return texts


TEXTS = _texts()
PAGES = [(name, text) for name, text in TEXTS if name.endswith(".md")]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~)")


def _exists(path: str) -> bool:
    path = path.rstrip("/.")
    if "*" in path:
        return any(REPO.glob(path))
    return (REPO / path).exists() or any(p == path or p.startswith(path + "/") for p in TRACKED)


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(found, name):
                return False
            found = getattr(found, name)
        return True
    return False


def test_the_texts_checked_include_the_readme_contracts_and_the_package_docstrings() -> None:
    names = [name for name, _ in TEXTS]

    assert {"README.md", "CONTRACTS.md", "src/core/__init__.py", "workshop/__init__.py"} <= set(names)


@pytest.mark.parametrize(("where", "text"), TEXTS, ids=[name for name, _ in TEXTS])
def test_every_path_named_exists(where: str, text: str) -> None:
    missing = sorted({m for m in PATH.findall(text) if "<" not in m and not PLACEHOLDER.search(m) and not _exists(m)})

    assert not missing, f"{where} names paths that do not exist: {missing}"


@pytest.mark.parametrize(("where", "text"), TEXTS, ids=[name for name, _ in TEXTS])
def test_every_file_name_named_is_a_file_of_the_project(where: str, text: str) -> None:
    missing = sorted({m for m in FILE_NAME.findall(text) if m not in NAMES and m not in OUTSIDE})

    assert not missing, f"{where} names files the project does not have: {missing}"


@pytest.mark.parametrize(("where", "text"), TEXTS, ids=[name for name, _ in TEXTS])
def test_every_module_named_resolves(where: str, text: str) -> None:
    missing = sorted({m for m in MODULE.findall(text) if not _resolves(m)})

    assert not missing, f"{where} names modules or attributes that do not exist: {missing}"


def _outside_code_blocks(text: str) -> list[str]:
    """The lines of a page that are not in a fenced code block (where `#` starts a shell comment)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def anchors(text: str) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as hyphens,
    a repeated heading numbered."""
    found: set[str] = set()
    for line in _outside_code_blocks(text):
        heading = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not heading:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading[1].lower()).replace(" ", "-")
        anchor, repeat = slug, 0
        while anchor in found:
            repeat += 1
            anchor = f"{slug}-{repeat}"
        found.add(anchor)
    return found


def links(text: str) -> list[str]:
    """The relative link targets of a page (web addresses left to the reader)."""
    targets = [m for line in _outside_code_blocks(text) for m in LINK.findall(line)]
    return [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def test_anchors_are_the_ones_github_gives_the_headings() -> None:
    page = ("# Table design\n## Access pattern -> Query\n```bash\n# a comment\n```\n"
            "## Failed calls without `--account`\n## Items\n## Items\n")

    assert anchors(page) == {"table-design", "access-pattern---query", "failed-calls-without---account", "items",
                             "items-1"}


@given(st.lists(st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=30), max_size=8))
def test_every_heading_gets_its_own_anchor_without_spaces_or_capitals(titles: list[str]) -> None:
    page = "".join(f"## {title}\n" for title in titles)

    found = anchors(page)

    assert len(found) == len(titles)
    assert not any(" " in anchor or anchor != anchor.lower() for anchor in found)


def test_links_are_the_relative_targets_outside_code() -> None:
    page = "[a](docs/x.md#y) [b](https://example.com) [c](#z)\n```\n[d](nowhere.md)\n```\n"

    assert links(page) == ["docs/x.md#y", "#z"]


@pytest.mark.parametrize(("where", "text"), PAGES, ids=[name for name, _ in PAGES])
def test_every_link_lands_on_a_page_and_a_heading(where: str, text: str) -> None:
    broken = []
    for target in links(text):
        path, _, anchor = target.partition("#")
        page = posixpath.normpath(posixpath.join(posixpath.dirname(where), path)) if path else where
        if page not in TRACKED and not (REPO / page).is_file():
            broken.append(f"{target} (no file {page})")
        elif anchor and page.endswith(".md") and anchor not in anchors((REPO / page).read_text(encoding="utf-8")):
            broken.append(f"{target} (no heading #{anchor} in {page})")

    assert not broken, f"{where} links to nothing: {broken}"


def test_the_readme_links_every_page_of_docs() -> None:
    readme = dict(TEXTS)["README.md"]
    linked = {target.partition("#")[0] for target in links(readme)}
    pages = {path for path in TRACKED if path.startswith("docs/") and path.endswith(".md")}

    assert len(pages) > 5, f"docs/ holds too few pages to be the project's documentation: {sorted(pages)}"
    assert not pages - linked, f"add to README's 'Where to read on' a line for {sorted(pages - linked)}"
