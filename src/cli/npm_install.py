"""One-time installs of the local tools from pinned npm packages: DynamoDB Local's jar (and, through
:func:`install_pinned`, the test suite's Chromium: ``tests/browser_setup.py``).

DynamoDB Local comes from the npm package ``amplify-dynamodb-simulator`` (pinned below, tarball integrity
checked), whose folder ``package/emulator/`` holds ``DynamoDBLocal.jar`` and ``DynamoDBLocal_lib/``. The
download needs ``npm`` once; :mod:`cli.dynamodb_local` launches what is installed here.

Python use::

    from cli.npm_install import ensure_installed

    emulator_dir = ensure_installed()    # ~/.cache/opsworks-trail/dynamodb-local/<package>-<version>
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

__all__ = [
    "DEFAULT_CACHE_DIR",
    "NPM_INTEGRITY",
    "NPM_PACKAGE",
    "DynamoDBLocalUnavailable",
    "NpmInstallFailed",
    "cache_home",
    "ensure_installed",
    "extract_folder",
    "extract_safely",
    "install_pinned",
]

log = logging.getLogger(__name__)

#: The npm package that carries DynamoDB Local 1.25.1 (checked with ``npm view``).
NPM_PACKAGE = "amplify-dynamodb-simulator@2.9.30"
#: ``npm view amplify-dynamodb-simulator@2.9.30 dist.integrity``; checked after the download.
NPM_INTEGRITY = "sha512-xTeeRLvzEfqyd5lh3bH4c0kHvSHHmmhD5ZDsHFKAQ5g2Zl6JqlFdutaQhCLHzxEp6Ry1o7TB6niIoXuQAnSewQ=="


def cache_home(environ: Mapping[str, str] = os.environ) -> Path:
    """Where the jar, the persistent server's data and its state live, whatever folder the command runs
    from: ``$OPSWORKS_TRAIL_CACHE``, else ``$XDG_CACHE_HOME/opsworks-trail``, else ``~/.cache/opsworks-trail``.
    One place per user, so `make demo` and ``.venv/bin/opsworks-trail query --local`` find the same server."""
    if environ.get("OPSWORKS_TRAIL_CACHE"):
        return Path(environ["OPSWORKS_TRAIL_CACHE"]).expanduser()
    return Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "opsworks-trail"


#: One subfolder per pinned package version, and the persistent server's ``data/`` and ``server.json``.
DEFAULT_CACHE_DIR = cache_home() / "dynamodb-local"

JAR = "DynamoDBLocal.jar"
LIB = "DynamoDBLocal_lib"
_MEMBER_PREFIX = "package/emulator/"
_NPM_TIMEOUT_S = 600.0


class NpmInstallFailed(RuntimeError):
    """A pinned npm package could not be downloaded, checked or unpacked; the message says which and why."""


class DynamoDBLocalUnavailable(RuntimeError):
    """DynamoDB Local cannot be installed or started; the message names what is missing or failed."""


def tail(text: str, lines: int = 15) -> str:
    """The last ``lines`` lines of a tool's output, for an error message."""
    return "\n".join(text.strip().splitlines()[-lines:])


# ------------------------------------------------------------------------------- any pinned package


def install_pinned(package: str, integrity: str, target: Path,
                   unpack: Callable[[Path, Path], None], is_installed: Callable[[Path], bool]) -> Path:
    """Return ``target``, filled the first time from the npm ``package`` (``name@version``).

    ``npm pack`` downloads the tarball, checked against ``integrity`` (``npm view <package> dist.integrity``);
    ``unpack(tarball, staging)`` fills a temporary folder that is renamed into place, so a half-finished
    install is never seen; ``is_installed(folder)`` says whether a folder is complete. A file lock beside
    ``target`` serialises concurrent installs (two pytest runs at once). Raises :class:`NpmInstallFailed`.
    """
    if is_installed(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(target.parent / ".install.lock"):
        if is_installed(target):  # another process finished while we waited
            return target
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=".install-", dir=target.parent) as tmp:
            tarball = _npm_pack(package, Path(tmp))
            _check_integrity(package, tarball, integrity)
            staging = Path(tmp) / "staging"
            unpack(tarball, staging)
            if not is_installed(staging):
                raise NpmInstallFailed(f"download of {package} lacks the files it should carry")
            if target.exists():  # a broken earlier install
                shutil.rmtree(target)
            staging.rename(target)
        log.info("installed %s into %s in %.1f s", package, target, time.monotonic() - started)
    return target


def extract_folder(package: str, tarball: Path, prefix: str, dest: Path) -> None:
    """Extract the members of ``tarball`` under ``prefix`` (such as ``package/bin/``) into ``dest``, without
    the prefix, safely: nothing outside ``dest``, no device files (tarfile's ``data`` filter, or the same
    checks by hand on a Python without it, such as Debian 12's 3.11.2)."""
    dest.mkdir(parents=True)
    with tarfile.open(tarball, "r:gz") as archive:
        members = []
        for member in archive.getmembers():
            if not member.name.startswith(prefix) or member.name == prefix:
                continue
            member.name = member.name.removeprefix(prefix)
            members.append(member)
        extract_safely(package, archive, members, dest)


def extract_safely(package: str, archive: tarfile.TarFile, members: list[tarfile.TarInfo], dest: Path) -> None:
    """``archive.extractall`` of ``members`` into ``dest``, refusing an entry that would land outside it."""
    if HAS_DATA_FILTER:
        try:
            archive.extractall(dest, members=members, filter="data")
        except tarfile.FilterError as error:
            raise NpmInstallFailed(f"download of {package} holds an unsafe entry: {error}") from error
        return
    root = dest.resolve()
    for member in members:
        problem = _unsafe(member, root)
        if problem:
            raise NpmInstallFailed(f"download of {package} holds an unsafe entry: {member.name!r} {problem}")
        member.name = member.name.lstrip("/")
        member.mode &= 0o755  # as the data filter: no setuid, setgid, sticky or group/other write bits
    archive.extractall(dest, members=members)


HAS_DATA_FILTER = hasattr(tarfile, "data_filter")
"""Python 3.11.4+ (and 3.12+) filter what an archive may extract; older 3.11 releases do not."""


def _unsafe(member: tarfile.TarInfo, root: Path) -> str | None:
    """Why ``member`` may not be extracted under ``root``, or None: the data filter's rules (a leading ``/``
    of a name is dropped, as the filter drops it; a link must be relative and stay inside)."""
    if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
        return "is a device, a FIFO or another special file"
    name = member.name.lstrip("/")
    if not (root / name).resolve().is_relative_to(root):
        return "would be written outside the destination"
    if member.issym() or member.islnk():
        if member.linkname.startswith("/"):
            return f"links to the absolute path {member.linkname!r}"
        base = root / os.path.dirname(name) if member.issym() else root
        if not (base / member.linkname).resolve().is_relative_to(root):
            return f"links to {member.linkname!r}, outside the destination"
    return None


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _npm_pack(package: str, dest: Path) -> Path:
    """Download the pinned package tarball into ``dest`` and return its path."""
    npm = shutil.which("npm")
    if npm is None:
        raise NpmInstallFailed(f"npm is not on PATH; it is needed once to download {package}")
    command = [npm, "pack", "--silent", "--pack-destination", str(dest), package]
    try:
        done = subprocess.run(command, cwd=dest, capture_output=True, text=True, timeout=_NPM_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise NpmInstallFailed(f"download of {package} with npm failed: {error}") from error
    if done.returncode != 0:  # stderr may also carry harmless npm config warnings: judge by exit status
        raise NpmInstallFailed(
            f"download of {package} failed: `npm pack` exited with {done.returncode}: "
            f"{tail(done.stderr) or tail(done.stdout)}"
        )
    tarballs = sorted(dest.glob("*.tgz"))
    if len(tarballs) != 1:
        raise NpmInstallFailed(
            f"download of {package} failed: expected one .tgz from `npm pack`, found {len(tarballs)}"
        )
    return tarballs[0]


def _check_integrity(package: str, tarball: Path, integrity: str) -> None:
    algorithm, _, expected = integrity.partition("-")
    digest = hashlib.new(algorithm)
    with tarball.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    actual = base64.b64encode(digest.digest()).decode("ascii")
    if actual != expected:
        raise NpmInstallFailed(
            f"download of {package} failed: integrity {algorithm}-{actual} is not the pinned {integrity}"
        )


# ------------------------------------------------------------------------------------ DynamoDB Local


def _emulator_dir(cache_dir: Path) -> Path:
    return cache_dir / NPM_PACKAGE.replace("@", "-")


def _is_installed(emulator_dir: Path) -> bool:
    return (emulator_dir / JAR).is_file() and (emulator_dir / LIB).is_dir()


def ensure_installed(cache_dir: Path = DEFAULT_CACHE_DIR) -> Path:
    """Return the folder holding ``DynamoDBLocal.jar``, downloading it with npm the first time.

    The download (``npm pack``, ~57 MB) is checked against the pinned integrity; only
    ``package/emulator/**`` is extracted (see :func:`install_pinned`). Raises
    :class:`DynamoDBLocalUnavailable` when npm is missing or the download fails.
    """
    try:
        return install_pinned(NPM_PACKAGE, NPM_INTEGRITY, _emulator_dir(cache_dir), _extract_emulator, _is_installed)
    except NpmInstallFailed as error:
        raise DynamoDBLocalUnavailable(str(error)) from error


def _extract_emulator(tarball: Path, dest: Path) -> None:
    """Extract ``package/emulator/**`` of ``tarball`` into ``dest`` (safely: ``filter="data"``)."""
    try:
        extract_folder(NPM_PACKAGE, tarball, _MEMBER_PREFIX, dest)
    except NpmInstallFailed as error:
        raise DynamoDBLocalUnavailable(str(error)) from error
    if not _is_installed(dest):
        raise DynamoDBLocalUnavailable(
            f"download of {NPM_PACKAGE} has no {_MEMBER_PREFIX}{JAR} and {_MEMBER_PREFIX}{LIB}/"
        )
