"""The packaged-function tier's own machinery: finding the runtime's Python, and failing rather than skipping on CI."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lambda_package import runtime_python
from package_plugin import _unavailable


def fake_python(folder: Path, name: str, script: str) -> Path:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)
    return path


def test_a_missing_runtime_fails_the_tier_on_ci_and_skips_it_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"CI=true makes that a failure: no Python 3\.12"):
        _unavailable("no Python 3.12")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="set CI=true to fail instead"):
        _unavailable("no Python 3.12")


def test_a_shim_that_cannot_run_is_passed_over_for_one_that_can(tmp_path: Path) -> None:
    """pyenv puts a python3.12 shim on PATH that fails unless 3.12 is selected: each candidate is run."""
    shims, versions = tmp_path / "shims", tmp_path / "pyenv" / "versions" / "3.12.9" / "bin"
    shims.mkdir()
    versions.mkdir(parents=True)
    fake_python(shims, "python3.12", "echo 'pyenv: python3.12: command not found' >&2; exit 127")
    real = fake_python(versions, "python3.12", f'exec {sys.executable} -c "print(\'{versions}/python3.12\')"')

    found = runtime_python({"PATH": str(shims), "PYENV_ROOT": str(tmp_path / "pyenv")})

    assert found == real


def test_an_interpreter_of_another_version_is_not_taken_for_the_runtimes(tmp_path: Path) -> None:
    assert sys.version_info[:2] != (3, 12)  # this suite runs on the development venv's 3.11

    found = runtime_python({"RUNTIME_PYTHON": sys.executable, "PATH": "/nonexistent", "PYENV_ROOT": str(tmp_path)})

    assert found != Path(sys.executable)
    assert found is None or found.name == "python3.12"
