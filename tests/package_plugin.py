"""pytest plugin: the built Lambda package and a runtime to run it in, once per test session.

Registered from ``tests/conftest.py``. Fixtures:

- ``lambda_package`` (session): the package, built by make/lambda's recipe (the target `sam build` runs,
  scripts/lambda_package.py) for this machine's architecture into a clean folder, then made read-only.
- ``lambda_runtime`` (session): the interpreter of a fresh Python 3.12 virtual environment holding only
  boto3 and its dependencies, as the Lambda runtime does.

When Python 3.12 is missing the tests that use them are skipped, or fail when ``CI=true``. A recipe that
fails is a failure everywhere: it is the product that failed.

``run_handler`` runs a handler on a list of events in a child interpreter, through tests/package_runner.py.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

from ddb_local_plugin import _ci_enabled
from lambda_package import (
    PackageUnavailable,
    build,
    local_arch,
    make_read_only,
    make_writable,
    runtime_python,
    runtime_venv,
)

RUNNER = Path(__file__).resolve().parent / "package_runner.py"


def _unavailable(reason: str) -> NoReturn:
    if _ci_enabled(os.environ):
        pytest.fail(f"the packaged-function tier cannot run, and CI=true makes that a failure: {reason}", pytrace=False)
    pytest.skip(f"the packaged-function tier cannot run (set CI=true to fail instead): {reason}")


@pytest.fixture(scope="session")
def runtime_interpreter() -> Path:
    """A Python 3.12 on this machine (the runtime's version)."""
    python = runtime_python()
    if python is None:
        _unavailable("no Python 3.12 found (python3.12 on PATH, pyenv's, or RUNTIME_PYTHON=...)")
    return python


@pytest.fixture(scope="session")
def lambda_package(runtime_interpreter: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The function package as `sam build` makes it, for this machine's architecture, read-only."""
    package = tmp_path_factory.mktemp("lambda") / "package"
    try:
        build(package, arch=local_arch(), python=runtime_interpreter)
    except PackageUnavailable as exc:
        pytest.fail(f"the Lambda package did not build: {exc}", pytrace=False)
    make_read_only(package)
    yield package
    make_writable(package)


@pytest.fixture(scope="session")
def lambda_runtime(runtime_interpreter: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The interpreter of a fresh 3.12 environment with boto3 (and its dependencies) only."""
    try:
        return runtime_venv(tmp_path_factory.mktemp("runtime") / "venv", python=runtime_interpreter)
    except PackageUnavailable as exc:
        _unavailable(str(exc))


@dataclass
class Run:
    results: list[dict[str, Any]]
    """Per invocation: {"name", "response"} or {"name", "error": {"type", "message"}}."""
    output: str
    """The child's stdout and stderr (the function's logs), for failure messages."""

    def by_name(self) -> dict[str, dict[str, Any]]:
        return {result["name"]: result for result in self.results}


def run_handler(python: Path, code: Path, handler: str, invocations: list[dict[str, Any]],
                environment: Mapping[str, str]) -> Run:
    """Run `handler` (module.function) with each {"name", "event"} in one child interpreter, whose working
    directory is `code` (the package, or src/), as Lambda runs it in /var/task."""
    with tempfile.TemporaryDirectory(prefix="lambda-run-") as folder:
        calls, answers = Path(folder) / "invocations.json", Path(folder) / "results.json"
        calls.write_text(json.dumps({"handler": handler, "invocations": invocations}), encoding="utf-8")
        done = subprocess.run([str(python), "-P", str(RUNNER), str(calls), str(answers)], cwd=code,
                              env=dict(environment), capture_output=True, text=True, timeout=600)
        output = done.stdout + done.stderr
        if done.returncode != 0 or not answers.exists():
            raise AssertionError(f"{python} {RUNNER.name} exited {done.returncode}:\n{output[-4000:]}")
        return Run(json.loads(answers.read_text(encoding="utf-8")), output)


def imports_of(*code: Path) -> set[str]:
    """Every import statement of the code, anywhere (in functions too), as `module` or `module:name` (from
    module import name), but those only type checkers read (under `if TYPE_CHECKING:`) and relative ones."""
    found: set[str] = set()
    for path in (file for folder in code for file in folder.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and ast.unparse(block.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
                   for stmt in block.body for node in ast.walk(stmt)}
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found |= {f"{node.module}:{alias.name}" for alias in node.names}
    return {name for name in found if not name.startswith("__future__")}
