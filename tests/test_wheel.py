"""The wheel a user installs: built from the project, installed in a clean virtual environment, its command
run from an empty folder (issue 16).

Once per session the project's package inputs (pyproject.toml, README.md, src/) are copied to a temporary
folder, so no stale build/ of the checkout can slip into the wheel, and built with pip; a fresh virtual
environment (no system site-packages, no checkout on sys.path) gets the wheel and its dependencies from the
package index, without the `cli` extra, as `pip install opsworks-trail` does. The installed `opsworks-trail`
then runs from an empty folder, HOME a new temporary folder, no OPSWORKS_TRAIL_CACHE and no PYTHONPATH:
`--help`, `ingest --dry-run` on a log file, and `ingest` then `query` against a table on a loopback moto
server. When the index cannot be reached the tier is skipped, or fails when CI=true; a wheel that does not
build or install for any other reason fails everywhere.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path
from typing import Any, NoReturn

import boto3
import pytest
from workshop.template import table_definition_from_template

from cli.dynamodb_local import client_kwargs
from cli.errors import Exit
from cli.main import COMMANDS, main
from conftest import REPO
from ddb_local_plugin import _ci_enabled
from package_plugin import imports_of

PACKAGE_INPUTS = ("pyproject.toml", "README.md", "src")
"""What the build reads: pyproject names README.md as the long description and finds the package in src/."""
OPTIONAL_IMPORTS = frozenset({"tqdm"})
"""Imported by the installed package only when present (the `cli` extra): a plain install lacks them."""
PACKAGES = ("core", "handlers", "cli")
"""The wheel's top-level packages."""
INDEX_UNREACHABLE = ("Could not find a version that satisfies", "No matching distribution found",
                     "NewConnectionError", "Max retries exceeded", "Temporary failure in name resolution")
"""pip's words when the package index cannot be reached: the tier cannot run, the product did not fail."""
ACCOUNT = "123456789012"
REGION = "us-east-1"


def _unavailable(reason: str) -> NoReturn:
    if _ci_enabled(os.environ):
        pytest.fail(f"the wheel tier cannot run, and CI=true makes that a failure: {reason}", pytrace=False)
    pytest.skip(f"the wheel tier cannot run (set CI=true to fail instead): {reason}")


def _pip(*args: str) -> None:
    """pip of the development environment (so the new venv needs none), failing or skipping as the module
    docstring says."""
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode == 0:
        return
    said = done.stdout[-3000:] + done.stderr[-3000:]
    if any(words in said for words in INDEX_UNREACHABLE):
        _unavailable(f"pip {args[0]} could not reach the package index:\n{said}")
    pytest.fail(f"pip {' '.join(args)} failed (exit {done.returncode}):\n{said}", pytrace=False)


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from a copy of the working tree's package inputs."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "project"
    source.mkdir()
    for name in PACKAGE_INPUTS:
        original = REPO / name
        if original.is_dir():
            shutil.copytree(original, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
        else:
            shutil.copy2(original, source / name)
    _pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(root / "dist"), str(source))
    built = sorted((root / "dist").glob("*.whl"))
    assert len(built) == 1, f"pip wheel made {built}"
    return built[0]


@pytest.fixture(scope="session")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean virtual environment holding the wheel and its dependencies, not the `cli` extra."""
    venv = tmp_path_factory.mktemp("venv") / "venv"
    done = subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], capture_output=True,
                          text=True, timeout=300, check=False)
    if done.returncode != 0:
        _unavailable(f"python -m venv failed: {done.stderr[-2000:]}")
    _pip("--python", str(venv / "bin" / "python"), "install", "--quiet", str(wheel))
    return venv


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str


@dataclass
class User:
    """Someone who ran `pip install` and now types the command in a folder of their own."""

    venv: Path
    folder: Path
    home: Path

    def environment(self, **extra: str) -> dict[str, str]:
        """Only what a shell gives: PATH with the venv's bin first (as `activate` does), a HOME of its own
        (no ~/.aws, no ~/.cache), AWS credentials in the environment; no OPSWORKS_TRAIL_CACHE, no PYTHONPATH,
        no Region unless given."""
        return {"PATH": f"{self.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin", "HOME": str(self.home),
                "LANG": "C.UTF-8", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", **extra}

    def run(self, *args: str, **extra: str) -> Ran:
        done = subprocess.run([str(self.venv / "bin" / "opsworks-trail"), *args], cwd=self.folder,
                              env=self.environment(**extra), capture_output=True, text=True, timeout=300,
                              check=False)
        return Ran(done.returncode, done.stdout, done.stderr)

    def python(self, code: str, *args: str, **extra: str) -> str:
        done = subprocess.run([str(self.venv / "bin" / "python"), "-c", code, *args], cwd=self.folder,
                              env=self.environment(**extra), capture_output=True, text=True, timeout=300,
                              check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout


@pytest.fixture
def user(venv: Path, tmp_path: Path) -> Iterator[User]:
    folder, home = tmp_path / "empty-folder", tmp_path / "home"
    folder.mkdir()
    home.mkdir()
    yield User(venv, folder, home)
    assert not any(folder.iterdir()), f"the command wrote into the folder it ran from: {list(folder.iterdir())}"


def record(source: str, name: str, **fields: Any) -> dict[str, Any]:
    return {"eventVersion": "1.09", "eventSource": source, "eventName": name, "eventTime": "2026-03-04T05:06:07Z",
            "eventID": str(uuid.uuid4()), "awsRegion": REGION, "eventType": "AwsApiCall",
            "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "accountId": ACCOUNT,
                             "arn": f"arn:aws:iam::{ACCOUNT}:user/alice", "userName": "alice"},
            "sourceIPAddress": "192.0.2.10", "userAgent": "aws-cli/2.15.0", "requestID": str(uuid.uuid4()),
            "recipientAccountId": ACCOUNT, "managementEvent": True, "eventCategory": "Management", **fields}


@dataclass
class LogFile:
    path: Path
    opsworks_event_id: str
    other_event_id: str


@pytest.fixture
def log_file(tmp_path: Path) -> LogFile:
    """A CloudTrail log file, outside the user's folder: one OpsWorks Stacks record and one EC2 record."""
    opsworks = record("opsworks.amazonaws.com", "DescribeStacks", readOnly=True,
                      requestParameters={"stackIds": [str(uuid.uuid4())]}, responseElements=None)
    other = record("ec2.amazonaws.com", "DescribeInstances", readOnly=True, requestParameters=None,
                   responseElements=None)
    folder = tmp_path / "logs" / "AWSLogs" / ACCOUNT / "CloudTrail" / REGION / "2026" / "03" / "04"
    folder.mkdir(parents=True)
    path = folder / f"{ACCOUNT}_CloudTrail_{REGION}_20260304T0510Z_{uuid.uuid4().hex[:16]}.json.gz"
    path.write_bytes(gzip.compress(json.dumps({"Records": [opsworks, other]}).encode()))
    return LogFile(path, opsworks["eventID"], other["eventID"])


@pytest.fixture
def events_table(moto_endpoint: str) -> str:
    """A table on the moto server with the template's own key schema and indexes."""
    name = f"events-{uuid.uuid4().hex[:8]}"
    client = boto3.client("dynamodb", **client_kwargs(moto_endpoint))
    client.create_table(TableName=name, **table_definition_from_template())
    return name


# -- what the wheel holds -----------------------------------------------------------------------------------


@pytest.mark.wheel
def test_the_wheel_holds_the_package_and_its_catalog_only(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    dist_info = {top for top in tops if top.endswith(".dist-info")}
    assert len(dist_info) == 1, dist_info
    assert tops - dist_info == set(PACKAGES), f"top-level entries besides the packages: {tops - dist_info}"
    assert "core/ingest/catalog.json" in names
    assert not [n for n in names if "/workshop/" in n or "/tests/" in n or n.endswith(("conftest.py", ".pyc"))]


@pytest.mark.wheel
def test_the_cli_extra_adds_progress_bars_only(wheel: Path) -> None:
    """pyyaml read template.yaml in a checkout; the installed package never reads YAML, so no extra needs it."""
    with zipfile.ZipFile(wheel) as archive:
        metadata_name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(metadata_name).decode())
    extras = {}
    for requirement in metadata.get_all("Requires-Dist") or []:
        found = re.search(r"""extra\s*==\s*["']([^"']+)["']""", requirement)
        if found:
            extras.setdefault(found.group(1), []).append(re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0])
    assert extras.get("cli") == ["tqdm"], extras
    assert "opsworks-trail = cli.main:main" in \
        zipfile.ZipFile(wheel).read(metadata_name.replace("METADATA", "entry_points.txt")).decode()


@pytest.mark.wheel
def test_every_import_of_the_installed_package_resolves_in_a_plain_install(user: User) -> None:
    """Every module the installed code imports, even inside a function, is installed by `pip install
    opsworks-trail`, except the `cli` extra's (guarded); the package comes from the venv, not a checkout,
    and every module of it imports."""
    site = Path(user.python("import core; print(core.__file__)").strip()).parent.parent
    assert site.is_relative_to(user.venv), f"core imported from {site}"
    wanted = sorted({name.split(":")[0].split(".")[0] for name in imports_of(*(site / top for top in PACKAGES))})
    missing = json.loads(user.python(
        "import importlib.util, json, sys; print(json.dumps([n for n in sys.argv[1:] "
        "if importlib.util.find_spec(n) is None]))", *wanted))
    assert set(missing) == OPTIONAL_IMPORTS, f"imported by the package but not installed: {missing}"
    modules = user.python(
        "import importlib, pkgutil\n"
        f"for top in {PACKAGES!r}:\n"
        "    for m in pkgutil.walk_packages(importlib.import_module(top).__path__, top + '.'):\n"
        "        importlib.import_module(m.name); print(m.name)\n"
        "for gone in ('workshop', 'moto', 'yaml', 'pytest', 'hypothesis'):\n"
        "    assert importlib.util.find_spec(gone) is None, gone\n",
        AWS_DEFAULT_REGION=REGION,  # the handler module creates its clients at import, as Lambda runs it
    ).split()
    assert "cli.main" in modules and "handlers.ingest" in modules


# -- the commands, from an empty folder ---------------------------------------------------------------------


@pytest.mark.wheel
def test_help_lists_every_command(user: User) -> None:
    ran = user.run("--help")
    assert ran.code == 0, ran.stderr
    listed = set(re.findall(r"^\s{4}([a-z][a-z-]+)", ran.stdout, flags=re.MULTILINE))
    assert set(COMMANDS) <= listed, f"--help lists {sorted(listed)}"


@pytest.mark.wheel
def test_version_names_the_installed_distribution(user: User) -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]

    ran = user.run("--version")

    assert ran.code == 0, ran.stderr
    assert ran.stdout.strip() == f"opsworks-trail {version}"


@pytest.mark.wheel
def test_a_dry_run_reads_a_log_file_and_keeps_its_opsworks_record(user: User, log_file: LogFile) -> None:
    ran = user.run("ingest", "--dry-run", str(log_file.path))
    assert ran.code == 0, ran.stderr
    assert re.search(r"^1 files \(0 skipped, 0 failed\), .* read, 1 matched, 0 written$", ran.stderr,
                     flags=re.MULTILINE), ran.stderr
    lines = user.run("ingest", "--dry-run", "--format", "jsonl", str(log_file.path))
    assert lines.code == 0, lines.stderr
    assert [json.loads(line)["event_id"] for line in lines.stdout.splitlines()] == [log_file.opsworks_event_id]


@pytest.mark.wheel
def test_ingest_then_query_a_table(user: User, log_file: LogFile, moto_endpoint: str, events_table: str) -> None:
    table = ("--endpoint-url", moto_endpoint, "--table", events_table, "--region", REGION)
    ingested = user.run("ingest", str(log_file.path), "--json", *table)
    assert ingested.code == 0, ingested.stderr
    summary = json.loads(ingested.stdout)
    assert (summary["files"], summary["matched"], summary["written"], summary["failed_files"]) == (1, 1, 1, 0)
    queried = user.run("query", "--account", ACCOUNT, "--format", "json", *table)
    assert queried.code == 0, queried.stderr
    events = json.loads(queried.stdout)
    assert [(e["event_id"], e["event_name"], e["account_id"]) for e in events] == \
        [(log_file.opsworks_event_id, "DescribeStacks", ACCOUNT)]
    by_id = user.run("query", "--id", log_file.other_event_id, "--format", "json", *table)
    assert (by_id.code, json.loads(by_id.stdout)) == (0, []), by_id.stderr


def test_without_tqdm_ingest_shows_no_bar_but_still_names_each_failed_file(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], log_file: LogFile) -> None:
    """The plain install's path, in process: no progress bar, the failure lines and the summary as ever."""
    monkeypatch.setitem(sys.modules, "tqdm", None)  # `import tqdm` raises ImportError, as when it is absent
    damaged = log_file.path.with_name(log_file.path.name.replace("_2026", "_2027", 1))
    damaged.write_bytes(log_file.path.read_bytes()[:40])
    code = main(["ingest", "--dry-run", str(log_file.path.parent)])
    err = capsys.readouterr().err
    assert code == Exit.PARTIAL, err
    assert re.search(rf"^failed: {re.escape(str(damaged))}: .+$", err, flags=re.MULTILINE), err
    assert "2 files (0 skipped, 1 failed)" in err and ", 1 matched, 0 written" in err, err
