"""The command line's parser: built for the named command only, complete for --help."""

from __future__ import annotations

import pytest

from cli.main import COMMANDS, build_parser, main


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
