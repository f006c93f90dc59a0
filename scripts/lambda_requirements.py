"""The Lambda package's third-party contents, derived from pyproject.toml: the one list of runtime dependencies.

make/lambda/Makefile (what `sam build` runs) uses it in two steps around pip:

    lambda_requirements.py project pyproject.toml   # [project.dependencies], one requirement a line
    pip install --dry-run --report - ... -r -       # pip resolves them with their own dependencies
    lambda_requirements.py bundle < report.json     # name==version of each, the runtime's own left out

What the Lambda runtime already ships (boto3 and everything it depends on) is left out, so the runtime's
matching boto3/botocore pair is the one imported: the package sits first on sys.path, and a second
botocore or urllib3 there would shadow the runtime's. Everything else, including what another
dependency needs (Powertools' jmespath is the runtime's; its typing-extensions is not), is bundled.
Standard library only: it runs under the runtime's Python before anything is installed.
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python-dateutil", "six"})
"""boto3 and its dependency closure: what the Lambda Python runtime ships, and what a virtual environment
holding only boto3 holds (tests/test_package.py checks that against a fresh one)."""


def canonical(name: str) -> str:
    """A distribution name as PyPI compares them (PEP 503): `Python_Dateutil` is `python-dateutil`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def project_requirements(pyproject: Path) -> list[str]:
    """[project.dependencies] of a pyproject.toml, as written there."""
    with pyproject.open("rb") as stream:
        project = tomllib.load(stream).get("project", {})
    dependencies = project.get("dependencies")
    if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
        raise SystemExit(f"{pyproject}: [project] dependencies is not a list of requirement strings")
    return dependencies


def bundled_pins(report: Mapping[str, Any]) -> list[str]:
    """`name==version` of every distribution pip's installation report resolved, but the runtime's own."""
    pins = []
    for item in report.get("install", []):
        metadata = item["metadata"]
        if canonical(metadata["name"]) not in RUNTIME_PROVIDED:
            pins.append(f"{canonical(metadata['name'])}=={metadata['version']}")
    return sorted(pins)


def main(argv: Iterable[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["project"] and len(args) == 2:
        print("\n".join(project_requirements(Path(args[1]))))
        return 0
    if args == ["bundle"]:
        text = sys.stdin.read()
        try:
            report = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SystemExit(f"lambda_requirements bundle: stdin is not pip's JSON report ({exc}): "
                             f"{text[:200]!r}") from None
        pins = bundled_pins(report)
        if not pins:
            raise SystemExit("lambda_requirements bundle: pip resolved nothing to bundle")
        print("\n".join(pins))
        return 0
    raise SystemExit("usage: lambda_requirements.py project PYPROJECT | bundle < PIP_REPORT_JSON")


if __name__ == "__main__":
    raise SystemExit(main())
