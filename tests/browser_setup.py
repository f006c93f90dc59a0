"""The browser tier's Chromium: the machine's own when it has one, else a headless Chromium fetched once from npm.

`make browser` runs this (``make test`` and ``.ci/run`` through it), the way DynamoDB Local is fetched:
the npm package ``@sparticuz/chromium`` (pinned, integrity checked) carries a brotli-compressed headless
Chromium for x86_64 Linux with its own NSS libraries and a font, unpacked with Node's zlib into
``~/.cache/opsworks-trail/chromium/<package>-<version>/`` (``$OPSWORKS_TRAIL_CACHE`` moves it). It needs
``npm`` and ``node`` once, no root and no browser download by a test tool (those fail on a closed network).
On another architecture (that package has no arm64 binary) Debian's ``chromium`` is installed with apt
when this runs as root or with password-less sudo.

When no browser can be had, it prints one line saying why and exits 0 (the tier then skips), or 1 when
CI=true (the tier must not pass silently). ``browser_plugin`` finds the browser with :func:`chromium_path`.
"""

from __future__ import annotations

import os
import platform
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from xml.sax.saxutils import escape

from cli.npm_install import NpmInstallFailed, cache_home, extract_folder, extract_safely, install_pinned, tail

CHROMIUM_PACKAGE = "@sparticuz/chromium@153.0.0"
"""Chromium 153 as a headless shell; Playwright drives it over CDP with ``--no-sandbox``."""
CHROMIUM_INTEGRITY = "sha512-jiGWqSvPMdu4+P9TilYqAR7yEGPEHINx+lCvE/NqNO/EHYzF/x1hUiI5T6ioVIt7dEy7n88byyT0vk+dnsgQwA=="
"""``npm view @sparticuz/chromium@153.0.0 dist.integrity``."""
PACKAGED_MACHINES = frozenset({"x86_64", "amd64"})
"""The architectures the npm package ships a binary for (its README: x64 only)."""
SYSTEM_NAMES = ("chromium", "chromium-browser")
WRAPPER = "chromium"
"""The fetched browser's entry point: a shell script that points it at its own libraries and fonts."""
_BINARY = "headless_shell"
_NODE_TIMEOUT_S = 300.0
_APT_TIMEOUT_S = 900.0
_CI_TRUE = frozenset({"true", "1", "yes"})


def fetched_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Where the fetched browser lives: one folder per pinned package version under the project's cache."""
    return cache_home(environ) / "chromium" / CHROMIUM_PACKAGE.lstrip("@").replace("/", "-").replace("@", "-")


def chromium_path(environ: Mapping[str, str] = os.environ) -> str | None:
    """The browser to drive: ``$CHROMIUM``, else a ``chromium`` on ``PATH``, else the fetched one, else None."""
    if environ.get("CHROMIUM"):
        return environ["CHROMIUM"]
    for name in SYSTEM_NAMES:
        found = shutil.which(name, path=environ.get("PATH"))
        if found:
            return found
    wrapper = fetched_dir(environ) / WRAPPER
    return str(wrapper) if _is_complete(wrapper.parent) else None


def _is_complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in (WRAPPER, _BINARY, "fonts.conf")) and (folder / "lib").is_dir()


def install(target: Path) -> Path:
    """Fetch and unpack the pinned package into ``target`` (once; see :func:`cli.npm_install.install_pinned`);
    returns the wrapper's path. Raises :class:`NpmInstallFailed` naming what failed."""
    def unpack(tarball: Path, staging: Path) -> None:
        _unpack_chromium(tarball, staging, final=target)

    return install_pinned(CHROMIUM_PACKAGE, CHROMIUM_INTEGRITY, target, unpack, _is_complete) / WRAPPER


def _unpack_chromium(tarball: Path, staging: Path, *, final: Path) -> None:
    """``package/bin/*.br`` of the tarball -> the binary, ``lib/`` (NSS) and ``fonts/`` in ``staging``, plus
    a ``fonts.conf`` and the wrapper that name ``final``, the folder ``staging`` is renamed to."""
    with tempfile.TemporaryDirectory(prefix=".br-", dir=staging.parent) as tmp:
        compressed = Path(tmp) / "bin"
        extract_folder(CHROMIUM_PACKAGE, tarball, "package/bin/", compressed)
        staging.mkdir()
        _brotli_decompress(compressed / "chromium.br", staging / _BINARY)
        (staging / _BINARY).chmod(0o755)
        for archive in ("al2023.tar.br", "fonts.tar.br"):  # lib/lib*.so (NSS, NSPR); fonts/ and a fonts.conf
            plain = Path(tmp) / archive.removesuffix(".br")
            _brotli_decompress(compressed / archive, plain)
            with tarfile.open(plain) as members:
                extract_safely(f"{archive} of {CHROMIUM_PACKAGE}", members, members.getmembers(), staging)
    # The package's fonts.conf names Lambda's /tmp/fonts: name this folder's fonts and the system's instead.
    (staging / "fonts.conf").write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n'
        "  <dir>/usr/share/fonts</dir>\n  <dir>/usr/local/share/fonts</dir>\n"
        f"  <dir>{escape(str(final / 'fonts'))}</dir>\n  <cachedir>{escape(str(final / 'fonts-cache'))}</cachedir>\n"
        "</fontconfig>\n",
        encoding="utf-8")
    wrapper = staging / WRAPPER
    wrapper.write_text(
        "#!/bin/sh\n"
        f"# {CHROMIUM_PACKAGE}'s headless Chromium with its own NSS libraries and fonts (tests/browser_setup.py).\n"
        f'export LD_LIBRARY_PATH={shlex.quote(str(final / "lib"))}"${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}"\n'
        f'export FONTCONFIG_FILE={shlex.quote(str(final / "fonts.conf"))}\n'
        f'exec {shlex.quote(str(final / _BINARY))} "$@"\n',
        encoding="utf-8")
    wrapper.chmod(0o755)


_BROTLI_SCRIPT = """
const fs = require("fs"), zlib = require("zlib"), {pipeline} = require("stream");
pipeline(fs.createReadStream(process.argv[1]), zlib.createBrotliDecompress(), fs.createWriteStream(process.argv[2]),
         (error) => { if (error) { console.error(String(error)); process.exit(1); } });
"""


def _brotli_decompress(source: Path, dest: Path) -> None:
    """Python's standard library has no brotli; Node's zlib does, and npm brought Node."""
    node = shutil.which("node")
    if node is None:
        raise NpmInstallFailed(f"node is not on PATH; it is needed once to unpack {CHROMIUM_PACKAGE}")
    try:
        done = subprocess.run([node, "-e", _BROTLI_SCRIPT, str(source), str(dest)], capture_output=True, text=True,
                              timeout=_NODE_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise NpmInstallFailed(f"unpacking {source.name} of {CHROMIUM_PACKAGE} with node failed: {error}") from error
    if done.returncode != 0:
        raise NpmInstallFailed(f"unpacking {source.name} of {CHROMIUM_PACKAGE} with node failed: {tail(done.stderr)}")


def _apt_install(environ: Mapping[str, str]) -> str:
    """Debian's chromium, for the architectures the npm package lacks; root or password-less sudo only."""
    apt = shutil.which("apt-get")
    if apt is None:
        raise NpmInstallFailed(f"{CHROMIUM_PACKAGE} has no {platform.machine()} binary, and there is no apt-get")
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in ([*prefix, apt, "update", "-qq"],
                    [*prefix, apt, "install", "-y", "-qq", "--no-install-recommends", "chromium"]):
        try:
            done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=_APT_TIMEOUT_S,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise NpmInstallFailed(f"`{' '.join(command)}` failed: {error}") from error
        if done.returncode != 0:
            raise NpmInstallFailed(f"{CHROMIUM_PACKAGE} has no {platform.machine()} binary, and "
                                   f"`{' '.join(command)}` exited with {done.returncode}: {tail(done.stderr, 3)}")
    found = chromium_path(environ)
    if found is None:
        raise NpmInstallFailed("apt-get installed chromium, yet no chromium is on PATH")
    return found


def ensure_browser(environ: Mapping[str, str] = os.environ) -> str:
    """The browser's path, fetched (or installed with apt) the first time; raises NpmInstallFailed."""
    found = chromium_path(environ)
    if found is not None:
        return found
    if platform.machine().lower() in PACKAGED_MACHINES:
        return str(install(fetched_dir(environ)))
    return _apt_install(environ)


def main(environ: Mapping[str, str] = os.environ) -> int:
    """`make browser`: one line saying which browser the tier will use, or why there is none."""
    started = time.monotonic()
    try:
        path = ensure_browser(environ)
    except NpmInstallFailed as error:
        ci = environ.get("CI", "").strip().lower() in _CI_TRUE
        verdict = "CI=true makes that a failure" if ci else "its tests will skip"
        print(f"browser tier: no Chromium ({verdict}): {str(error).splitlines()[0]}", file=sys.stderr)
        return 1 if ci else 0
    print(f"browser tier: Chromium at {path} ({time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
