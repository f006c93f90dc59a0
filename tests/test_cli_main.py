"""The command line's parser: built for the named command only, complete for --help."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

import cli.main
from cli.errors import Exit
from cli.main import COMMANDS, build_parser, main

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])

    assert exited.value.code == 0
    listed = capsys.readouterr().out
    assert all(f"    {name}" in listed for name in COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_parses_its_own_arguments_when_built_alone(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([name, "--help"])

    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: opsworks-trail {name} ")


def test_a_parser_built_for_one_command_holds_only_that_command() -> None:
    parser = build_parser(["ingest", "FILE"])

    assert parser.parse_args(["ingest", "FILE"]).command == "ingest"
    with pytest.raises(SystemExit):
        parser.parse_args(["query", "--stack", "s-1"])


def test_an_unknown_command_is_refused_naming_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["bogus"])

    assert exited.value.code == 2
    assert "invalid choice: 'bogus' (choose from 'ingest', 'backfill'" in capsys.readouterr().err


def test_version_prints_the_installed_distributions_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])

    declared = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["version"]
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"opsworks-trail {declared}\n"


def test_the_installed_command_answers_version_from_its_metadata() -> None:
    command = Path(sys.executable).parent / "opsworks-trail"

    done = subprocess.run([str(command), "--version"], capture_output=True, text=True, timeout=60, check=False)

    assert (done.returncode, done.stdout, done.stderr) == (0, f"opsworks-trail {metadata.version('opsworks-trail')}\n",
                                                           "")


def test_version_without_an_installed_distribution_says_so_in_one_line(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def not_installed(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(cli.main.metadata, "version", not_installed)
    with pytest.raises(SystemExit) as exited:
        main(["--version"])

    err = capsys.readouterr().err
    assert exited.value.code == int(Exit.CONFIG)
    assert err.count("\n") == 1 and "opsworks-trail distribution is not installed" in err
