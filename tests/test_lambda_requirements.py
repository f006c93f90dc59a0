"""The Lambda package's dependencies come from pyproject.toml alone (scripts/lambda_requirements.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from packaging.requirements import Requirement

from conftest import REPO
from lambda_requirements import RUNTIME_PROVIDED, bundled_pins, canonical, project_requirements

SCRIPT = REPO / "scripts" / "lambda_requirements.py"
RECIPE = REPO / "make" / "lambda"


def report(*distributions: tuple[str, str]) -> dict[str, object]:
    """pip's installation report (--report) naming these distributions."""
    return {"version": "1", "install": [{"metadata": {"name": name, "version": version}, "requested": False}
                                        for name, version in distributions]}


def test_the_package_requirements_are_pyprojects_runtime_dependencies_as_written() -> None:
    import tomllib

    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]

    assert project_requirements(REPO / "pyproject.toml") == declared


def test_a_dependency_added_to_pyproject_is_in_the_list_with_no_other_edit(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text((REPO / "pyproject.toml").read_text().replace(
        "dependencies = [\n", 'dependencies = [\n    "msgspec>=0.18",\n    "cryptography>=42",\n', 1))

    listed = subprocess.run([sys.executable, str(SCRIPT), "project", str(pyproject)], capture_output=True, text=True,
                            check=True).stdout.splitlines()

    assert listed[:2] == ["msgspec>=0.18", "cryptography>=42"]
    assert listed[2:] == project_requirements(REPO / "pyproject.toml")


def test_what_pip_resolves_is_bundled_pinned_but_the_runtimes_own() -> None:
    resolved = report(("aws_lambda_powertools", "3.37.0"), ("boto3", "1.40.0"), ("botocore", "1.40.0"),
                      ("jmespath", "1.1.0"), ("cffi", "2.1.1"), ("pycparser", "3.12"), ("Typing_Extensions", "4.16.0"))

    assert bundled_pins(resolved) == ["aws-lambda-powertools==3.37.0", "cffi==2.1.1", "pycparser==3.12",
                                      "typing-extensions==4.16.0"]


@given(st.sampled_from(sorted(RUNTIME_PROVIDED)), st.lists(st.sampled_from("-_."), min_size=1, max_size=3),
       st.booleans())
def test_the_runtimes_own_distributions_are_left_out_however_the_report_spells_them(
        name: str, separators: list[str], upper: bool) -> None:
    spelled = "".join(part + separators[i % len(separators)] for i, part in enumerate(name.split("-")))[:-1]
    spelled = spelled.upper() if upper else spelled

    assert canonical(spelled) == name
    assert bundled_pins(report((spelled, "1.0"), ("isal", "1.9.1"))) == ["isal==1.9.1"]


def test_bundle_reads_pips_report_from_stdin_and_refuses_anything_else() -> None:
    pins = subprocess.run([sys.executable, str(SCRIPT), "bundle"], input=json.dumps(report(("ijson", "3.6.0"))),
                          capture_output=True, text=True, check=True)
    refused = subprocess.run([sys.executable, str(SCRIPT), "bundle"], input="ERROR: no matching distribution",
                             capture_output=True, text=True)

    assert pins.stdout.split() == ["ijson==3.6.0"]
    assert refused.returncode != 0 and "is not pip's JSON report" in refused.stderr


def test_no_hand_kept_requirements_file_sits_beside_the_recipe() -> None:
    assert sorted(p.name for p in RECIPE.iterdir()) == ["Makefile"]


def test_pyproject_declares_nothing_the_package_leaves_out_but_boto3() -> None:
    """boto3 is declared (the CLI and tests need it) and left out for the runtime's; a runtime dependency
    declared because the code imports it (urllib3, say) would go missing from the package unseen."""
    declared = {canonical(Requirement(r).name) for r in project_requirements(REPO / "pyproject.toml")}

    assert declared & RUNTIME_PROVIDED == {"boto3"}
