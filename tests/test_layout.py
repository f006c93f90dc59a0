"""The package's layout: folders that show the flow, import directions that keep them so, and a function
package that ships exactly the folders the function may import."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "src"
CORE = SRC / "core"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
CONTRACTS = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]["contracts"]
CORE_FOLDERS = sorted(p.name for p in CORE.iterdir() if (p / "__init__.py").is_file())
PACKAGES = ("core", "handlers", "cli")
"""The top level of src/: the two doors and what they share."""


def _lint_imports(root: Path, *contract: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{root / 'src'}{os.pathsep}{root}"}
    only = [arg for name in contract for arg in ("--contract", name)]
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--config", str(root / "pyproject.toml"), *only],
                          cwd=root, env=env, capture_output=True, text=True, timeout=120)


def test_every_import_direction_contract_is_kept() -> None:
    done = _lint_imports(REPO)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in done.stdout


@pytest.mark.parametrize(("module", "planted", "contract"), [
    ("core/ingest/normalize.py", "from core.read import queries", "layers"),
    ("core/model.py", "from core.ingest import store", "layers"),
    ("core/read/queries.py", "from cli.present import tables", "doors"),
    ("handlers/ingest.py", "from cli import main", "doors"),
    ("cli/main.py", "import handlers.ingest", "doors"),
    ("handlers/ingest.py", "from core.read import queries", "function-ships"),
    ("core/read/queries.py", "import moto", "no-workshop"),
    ("cli/present/report.py", "import workshop.synthetic", "no-workshop"),
    ("core/read/actors.py", "import aws_lambda_powertools", "no-lambda-types"),
    ("core/ingest/trailfile.py", "import boto3", "pure-steps"),
])
def test_a_planted_import_against_the_flow_breaks_its_contract(tmp_path: Path, module: str, planted: str,
                                                               contract: str) -> None:
    for part in ("src", "workshop"):
        shutil.copytree(REPO / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "src" / module
    assert _lint_imports(tmp_path, contract).returncode == 0, "the contract is broken before the planted import"
    target.write_text(target.read_text(encoding="utf-8") + f"\n{planted}  # noqa\n", encoding="utf-8")

    done = _lint_imports(tmp_path, contract)

    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    assert "1 broken" in done.stdout


def test_the_function_package_leaves_out_exactly_the_folders_the_function_may_not_import() -> None:
    recipe = (REPO / "make" / "lambda" / "Makefile").read_text(encoding="utf-8")
    left_out = re.search(r"^NOT_IN_FUNCTION\s*:=\s*(.+)$", recipe, re.M)
    assert left_out is not None
    shipped = next(c for c in CONTRACTS if c["id"] == "function-ships")

    assert {name.replace("/", ".") for name in left_out.group(1).split()} | {"cli"} == set(shipped["forbidden_modules"])
    assert set(shipped["source_modules"]) == {"handlers", "core.ingest"}


def _named(contract_id: str) -> set[str]:
    layers = next(c for c in CONTRACTS if c["id"] == contract_id)["layers"]
    return {name.strip() for layer in layers for name in re.split(r"[|:]", layer)}


def test_src_holds_exactly_the_two_doors_and_the_core_and_the_doors_contract_names_them() -> None:
    tops = {p.name for p in SRC.iterdir() if (p / "__init__.py").is_file()}

    assert tops == set(PACKAGES)
    assert _named("doors") == set(PACKAGES)


def test_the_layers_contract_names_every_folder_and_module_of_the_core() -> None:
    named = _named("layers")

    assert set(CORE_FOLDERS) <= named
    assert {p.stem for p in CORE.glob("*.py") if p.stem != "__init__"} <= named


@pytest.mark.parametrize("folder", ["core", "handlers", "cli", *(f"core/{f}" for f in CORE_FOLDERS), "cli/present"])
def test_each_folder_says_what_it_owns_and_what_it_may_import(folder: str) -> None:
    doc = ast.get_docstring(ast.parse((SRC / folder / "__init__.py").read_text(encoding="utf-8")))

    assert doc, f"src/{folder}/__init__.py has no docstring"
    assert re.search(r"\b[Mm]ay import\b", doc), f"src/{folder}'s docstring does not say what it may import"


def test_the_ingest_folder_map_names_each_of_its_modules_and_no_other() -> None:
    doc = ast.get_docstring(ast.parse((CORE / "ingest" / "__init__.py").read_text(encoding="utf-8"))) or ""
    listed = {name for line in doc.splitlines() if line.startswith("    ")
              for name in line.strip().split("  ")[0].split(", ")}

    assert listed == {p.stem for p in (CORE / "ingest").glob("*.py") if p.stem != "__init__"}
