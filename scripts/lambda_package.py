"""The built Lambda package, from outside: build it with make/lambda's recipe, run it as the runtime does, show it.

Used by the packaged-function tests (tests/package_plugin.py), `make bench` (bench/package_imports.py)
and `make package`:

    python scripts/lambda_package.py show [--arch aarch64|x86_64] [--dir DIR]

builds the package (by default for the template's arm64, into .cache/lambda-package-ARCH) and prints
what it holds and how big it is, unzipped and zipped as `sam deploy` uploads it.
"""

from __future__ import annotations

import argparse
import glob
import os
import platform
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "make" / "lambda" / "Makefile"
TARGET = "build-IngestFunction"
RUNTIME_VERSION = (3, 12)
"""template.yaml: Runtime python3.12."""
TEMPLATE_ARCH = "aarch64"
"""template.yaml: Architectures [arm64], as pip's platform tags name it."""

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lambda_requirements import RUNTIME_PROVIDED, canonical, project_requirements  # noqa: E402


class PackageUnavailable(Exception):
    """The package or its runtime cannot be made on this machine; the message says why."""


def runtime_python(environ: Mapping[str, str] = os.environ) -> Path | None:
    """A Python of the runtime's version: $RUNTIME_PYTHON, python3.12 on PATH, pyenv's, the system's."""
    home = Path(environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    wanted = "python{}.{}".format(*RUNTIME_VERSION)
    candidates = [environ.get("RUNTIME_PYTHON", ""), shutil.which(wanted, path=environ.get("PATH")) or "",
                  *sorted(glob.glob(str(home / "versions" / "{}.{}*".format(*RUNTIME_VERSION) / "bin" / wanted)),
                          reverse=True),
                  f"/usr/local/bin/{wanted}", f"/usr/bin/{wanted}"]
    probe = f"import sys; assert sys.version_info[:2] == {RUNTIME_VERSION!r}; print(sys.executable)"
    for candidate in filter(None, candidates):
        try:  # a pyenv shim exists on PATH but fails when that version is not selected: run each one
            found = subprocess.run([candidate, "-c", probe], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if found.returncode == 0 and found.stdout.strip():
            return Path(found.stdout.strip())
    return None


def local_arch() -> str:
    """This machine's architecture as manylinux tags name it (arm64 is aarch64)."""
    machine = platform.machine().lower()
    return {"arm64": "aarch64", "amd64": "x86_64"}.get(machine, machine)


def build(dest: Path, *, arch: str = TEMPLATE_ARCH, python: Path | None = None, sources: Path = ROOT / "src") -> Path:
    """Run the recipe as `sam build` does (make in a copy of src/, ARTIFACTS_DIR = dest, which must not exist).
    Returns dest. Raises PackageUnavailable with the recipe's own output when it fails."""
    python = python or runtime_python()
    if python is None:
        raise PackageUnavailable("no Python {}.{} found (set RUNTIME_PYTHON)".format(*RUNTIME_VERSION))
    with tempfile.TemporaryDirectory(prefix="lambda-scratch-") as scratch:
        source_copy = Path(scratch) / "src"
        shutil.copytree(sources, source_copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        made = subprocess.run(["make", "--no-print-directory", "-f", str(RECIPE), TARGET, f"ARTIFACTS_DIR={dest}",
                               f"LAMBDA_ARCH={arch}", f"RUNTIME_PYTHON={python}"],
                              cwd=source_copy, capture_output=True, text=True)
    if made.returncode != 0:
        output = "\n".join(line for line in (made.stdout + made.stderr).splitlines() if "is ignored" not in line)
        raise PackageUnavailable(f"make {TARGET} failed (exit {made.returncode}):\n{output[-4000:]}")
    return dest


def make_read_only(path: Path) -> None:
    """chmod -R a-w, as /var/task is."""
    for folder, dirs, files in os.walk(path):
        for name in [*files, *dirs]:
            entry = Path(folder, name)
            if not entry.is_symlink():
                entry.chmod(entry.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def make_writable(path: Path) -> None:
    """Undo make_read_only (before deleting the folder)."""
    for folder, dirs, _ in os.walk(path):
        for name in dirs:
            Path(folder, name).chmod(0o755)
    path.chmod(0o755)


def runtime_venv(dest: Path, *, python: Path | None = None) -> Path:
    """A fresh virtual environment of the runtime's Python holding boto3 and its dependencies only (no pip),
    as the Lambda runtime does. boto3's version range is pyproject's. Returns its interpreter."""
    python = python or runtime_python()
    if python is None:
        raise PackageUnavailable("no Python {}.{} found (set RUNTIME_PYTHON)".format(*RUNTIME_VERSION))
    boto3 = [r for r in project_requirements(ROOT / "pyproject.toml") if canonical(Requirement(r).name) == "boto3"]
    steps = [[str(python), "-m", "venv", "--without-pip", str(dest)],
             [sys.executable, "-m", "pip", "--disable-pip-version-check", "--python", str(dest / "bin" / "python"),
              "install", "--quiet", *(boto3 or ["boto3"])]]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            raise PackageUnavailable(f"{' '.join(step[:4])} ... failed: {done.stderr[-2000:]}")
    return dest / "bin" / "python"


def lambda_environment(package: Path, **variables: str) -> dict[str, str]:
    """The environment the python3.12 runtime gives a function, with fake credentials and no developer
    configuration (no profile, no ~/.aws), plus `variables` (the function's own)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "en_US.UTF-8", "TZ": ":UTC",
        "HOME": tempfile.gettempdir(), "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "LAMBDA_TASK_ROOT": str(package), "PYTHONPATH": str(package), "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python{}.{}".format(*RUNTIME_VERSION),
        "AWS_LAMBDA_FUNCTION_NAME": "opsworks-trail-ingest", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512", "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        **variables,
    }


# -- what is in it ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    name: str
    version: str
    """'' for the project's own code."""
    bytes: int


def parts(package: Path) -> list[Part]:
    """The package's distributions (from their RECORD files) and the project's own folders, with sizes."""
    owned: set[Path] = set()
    found = []
    for info in sorted(package.glob("*.dist-info")):
        meta = HeaderParser().parsestr((info / "METADATA").read_text(encoding="utf-8"))
        files = {package / line.split(",", 1)[0] for line in (info / "RECORD").read_text().splitlines() if line}
        files |= {f for f in package.rglob("*.pyc") if _source_of(f, package) in files}
        owned |= files
        found.append(Part(meta["Name"], meta["Version"], sum(f.stat().st_size for f in files if f.is_file())))
    for folder in ("handlers", "core"):
        size = sum(f.stat().st_size for f in (package / folder).rglob("*") if f.is_file())
        found.append(Part(f"{folder}/ (this project)", "", size))
    return found


def sizes(package: Path) -> tuple[int, int]:
    """Bytes unzipped, and zipped (deflated, as `sam deploy` zips the build folder)."""
    unzipped = sum(f.stat().st_size for f in _files(package))
    with tempfile.TemporaryDirectory() as folder:
        archive = Path(folder) / "package.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
            for file in _files(package):
                zipped.write(file, file.relative_to(package))
        return unzipped, archive.stat().st_size


def _files(package: Path) -> Iterator[Path]:
    return (f for f in sorted(package.rglob("*")) if f.is_file())


def _source_of(pyc: Path, package: Path) -> Path:
    """foo/__pycache__/bar.cpython-312.pyc -> foo/bar.py"""
    return pyc.parent.parent / (pyc.name.split(".", 1)[0] + ".py")


def show(package: Path) -> str:
    lines = [f"{'part':40s} {'version':>12s} {'unzipped':>10s}"]
    for part in sorted(parts(package), key=lambda p: -p.bytes):
        lines.append(f"{part.name:40s} {part.version:>12s} {part.bytes / 2**20:8.1f} MB")
    unzipped, zipped = sizes(package)
    pycs = sum(1 for _ in package.rglob("*.pyc"))
    lines.append(f"\n{package}: {unzipped / 2**20:.1f} MB unzipped, {zipped / 2**20:.1f} MB zipped; "
                 f"{pycs} precompiled modules (.pyc for Python {RUNTIME_VERSION[0]}.{RUNTIME_VERSION[1]})")
    lines.append(f"left out, the runtime's own: {', '.join(sorted(RUNTIME_PROVIDED))}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["show"])
    parser.add_argument("--arch", default=TEMPLATE_ARCH, help="aarch64 (the template's, default) or x86_64")
    parser.add_argument("--dir", type=Path, help="show this built package instead of building one")
    args = parser.parse_args(argv)
    package = args.dir
    if package is None:
        package = ROOT / ".cache" / f"lambda-package-{args.arch}"
        if package.exists():
            make_writable(package)
            shutil.rmtree(package)
        print(f"building {package} (make -f make/lambda/Makefile {TARGET} LAMBDA_ARCH={args.arch}) ...",
              file=sys.stderr)
        try:
            build(package, arch=args.arch)
        except PackageUnavailable as exc:
            raise SystemExit(f"lambda_package: {exc}") from None
    print(show(package))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
