"""`make browser`: which Chromium the browser tier drives, and the one fetched from npm when the machine has none.

The fetch is exercised on a small package built here in the real one's shape (brotli files under
package/bin/), handed over by a fake npm: no network. The real download is `make browser` itself.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

import browser_setup
from cli.npm_install import NpmInstallFailed

NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node (which comes with npm) unpacks the brotli files")

FAKE_BROWSER = (b'#!/bin/sh\necho "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"\n'
                b'echo "FONTCONFIG_FILE=$FONTCONFIG_FILE"\necho "$@"\n')
"""Stands in for the headless shell: says what the wrapper gave it."""


def executable(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_chromium_is_chromium_env_then_one_on_path_then_the_fetched_one(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    environ = {"PATH": str(bin_dir), "OPSWORKS_TRAIL_CACHE": str(tmp_path / "cache")}
    assert browser_setup.chromium_path(environ) is None

    fetched = browser_setup.fetched_dir(environ)
    (fetched / "lib").mkdir(parents=True)
    for name in ("chromium", "headless_shell", "fonts.conf"):
        executable(fetched / name, "#!/bin/sh\n")
    assert browser_setup.chromium_path(environ) == str(fetched / "chromium")

    system = executable(bin_dir / "chromium", "#!/bin/sh\n")
    assert browser_setup.chromium_path(environ) == str(system)

    assert browser_setup.chromium_path({**environ, "CHROMIUM": "/opt/my/chrome"}) == "/opt/my/chrome"


def test_a_half_unpacked_fetch_is_not_taken_for_a_browser(tmp_path: Path) -> None:
    environ = {"PATH": str(tmp_path), "OPSWORKS_TRAIL_CACHE": str(tmp_path / "cache")}
    fetched = browser_setup.fetched_dir(environ)
    fetched.mkdir(parents=True)
    executable(fetched / "chromium", "#!/bin/sh\n")  # no binary, libraries or fonts.conf beside it

    assert browser_setup.chromium_path(environ) is None


@pytest.mark.parametrize(("ci", "code", "verdict"), [("", 0, "its tests will skip"),
                                                     ("true", 1, "CI=true makes that a failure")])
def test_without_npm_make_browser_says_why_in_one_line_and_fails_only_on_ci(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        ci: str, code: int, verdict: str) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # neither npm nor chromium
    monkeypatch.setattr(browser_setup.platform, "machine", lambda: "x86_64")
    environ = {"PATH": str(tmp_path), "OPSWORKS_TRAIL_CACHE": str(tmp_path / "cache"), "CI": ci}

    assert browser_setup.main(environ) == code

    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"browser tier: no Chromium ({verdict}): npm is not on PATH")


def _brotli(data: bytes) -> bytes:
    assert NODE is not None
    script = "process.stdout.write(require('zlib').brotliCompressSync(require('fs').readFileSync(0)))"
    return subprocess.run([NODE, "-e", script], input=data, capture_output=True, check=True, timeout=60).stdout


def _tar(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _fake_package(path: Path, al2023: dict[str, bytes]) -> str:
    """A package shaped like @sparticuz/chromium at ``path``; returns its npm integrity string."""
    bins = {"chromium.br": _brotli(FAKE_BROWSER), "al2023.tar.br": _brotli(_tar(al2023)),
            "fonts.tar.br": _brotli(_tar({"fonts.conf": b"<fontconfig/>", "fonts/Sans/Sans.ttf": b"ttf"})),
            "swiftshader.tar.br": _brotli(_tar({"libGLESv2.so": b"gl"}))}
    with tarfile.open(path, "w:gz") as archive:
        for name, data in {"package/package.json": b"{}", **{f"package/bin/{k}": v for k, v in bins.items()}}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


def _npm_that_hands_over(tarball: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    executable(bin_dir / "npm", f'#!/bin/sh\ncp "{tarball}" "$4/sparticuz-chromium-0.0.0.tgz"\n')
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


@needs_node
def test_the_fetched_browser_runs_through_a_wrapper_naming_its_own_libraries_and_fonts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tarball = tmp_path / "package.tgz"
    monkeypatch.setattr(browser_setup, "CHROMIUM_INTEGRITY",
                        _fake_package(tarball, {"lib/libnss3.so": b"nss", "lib/libnspr4.so": b"nspr"}))
    _npm_that_hands_over(tarball, tmp_path, monkeypatch)
    target = tmp_path / "a cache with $HOME & 'quotes'" / "chromium"

    wrapper = browser_setup.install(target)
    ran = subprocess.run([str(wrapper), "--headless", "--no-sandbox"], capture_output=True, text=True, check=True,
                         env={"PATH": os.environ["PATH"], "LD_LIBRARY_PATH": "/elsewhere"}, timeout=30)

    assert ran.stdout.splitlines() == [f"LD_LIBRARY_PATH={target / 'lib'}:/elsewhere",
                                       f"FONTCONFIG_FILE={target / 'fonts.conf'}", "--headless --no-sandbox"]
    assert sorted(p.name for p in (target / "lib").iterdir()) == ["libnspr4.so", "libnss3.so"]
    assert f"<dir>{target / 'fonts'}</dir>".replace("&", "&amp;") in (target / "fonts.conf").read_text(encoding="utf-8")
    assert (target / "fonts" / "Sans" / "Sans.ttf").read_bytes() == b"ttf"
    assert not (target / "libGLESv2.so").exists()  # --disable-gpu: the GL libraries stay packed


@needs_node
def test_a_fetched_package_with_an_entry_escaping_its_folder_is_refused_and_nothing_installed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tarball = tmp_path / "package.tgz"
    monkeypatch.setattr(browser_setup, "CHROMIUM_INTEGRITY",
                        _fake_package(tarball, {"lib/libnss3.so": b"nss", "../../escaped": b"x"}))
    _npm_that_hands_over(tarball, tmp_path, monkeypatch)
    target = tmp_path / "cache" / "chromium"

    with pytest.raises(NpmInstallFailed, match="unsafe entry"):
        browser_setup.install(target)
    assert not target.exists() and not list(tmp_path.rglob("escaped"))


def test_a_fetched_package_that_is_not_the_pinned_one_is_refused(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    tarball = tmp_path / "package.tgz"
    tarball.write_bytes(b"not the pinned package")
    _npm_that_hands_over(tarball, tmp_path, monkeypatch)

    with pytest.raises(NpmInstallFailed, match="integrity"):
        browser_setup.install(tmp_path / "cache" / "chromium")


def _fake_apt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, install: str) -> tuple[Path, Path]:
    """apt-get (and sudo, for a run that is not root) on a PATH of their own; returns (bin, the log of calls)."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "apt-calls"
    bin_dir.mkdir()
    executable(bin_dir / "apt-get", f'#!/bin/sh\necho "$@" >> "{calls}"\n'
                                    f'if [ "$1" = install ]; then {install}; fi\n')
    executable(bin_dir / "sudo", '#!/bin/sh\n[ "$1" = -n ] && shift\nexec "$@"\n')
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setattr(browser_setup.platform, "machine", lambda: "aarch64")
    return bin_dir, calls


def test_where_npm_has_no_binary_debians_chromium_is_installed_with_apt(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir, calls = _fake_apt(tmp_path, monkeypatch, f'printf "#!/bin/sh\\n" > "{tmp_path}/bin/chromium"; '
                                                      f'{shutil.which("chmod")} +x "{tmp_path}/bin/chromium"')
    environ = {"PATH": str(bin_dir), "OPSWORKS_TRAIL_CACHE": str(tmp_path / "cache")}

    assert browser_setup.ensure_browser(environ) == str(bin_dir / "chromium")
    assert calls.read_text(encoding="utf-8").splitlines() == [
        "update -qq", "install -y -qq --no-install-recommends chromium"]
    assert not (tmp_path / "cache").exists()  # nothing fetched from npm


def test_a_failed_apt_install_is_named_with_its_exit_status(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir, _ = _fake_apt(tmp_path, monkeypatch, 'echo "E: Unable to locate package chromium" >&2; exit 100')

    with pytest.raises(NpmInstallFailed, match=r"no aarch64 binary.*exited with 100: E: Unable to locate"):
        browser_setup.ensure_browser({"PATH": str(bin_dir), "OPSWORKS_TRAIL_CACHE": str(tmp_path / "cache")})
