"""The docs and docstrings name only files and modules that exist, so a newcomer following them never
lands on nothing: README.md, CONTRACTS.md, docs/, and every module docstring of src/ and workshop/."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
from pathlib import Path

import pytest

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
