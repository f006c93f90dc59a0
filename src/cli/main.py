"""`opsworks-trail`: the command line over the same core the Lambda function runs.

Failures end in one line on stderr naming the cause and the fix, and a documented exit code
(cli.errors.Exit, docs/commands.md "Errors and exit codes"); --debug adds the traceback.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any, NoReturn

from botocore.exceptions import BotoCoreError, ClientError

from cli import backfill, failures, ingest, local, query, report, sweep, verify
from cli.errors import CliError, Exit, Where, explain

COMMANDS: dict[str, Callable[[Any], None]] = {
    "ingest": ingest.add_parser,
    "backfill": backfill.add_parser,
    "failures": failures.add_parsers,
    "retry-failures": failures.add_parsers,
    "query": query.add_parser,
    "report": report.add_parser,
    "verify": verify.add_parser,
    "local": local.add_parser,
    "sweep": sweep.add_parser,
}
"""Each command and the function that adds its parser (one adds two)."""

DISTRIBUTION = "opsworks-trail"
"""The installed distribution whose metadata --version reads (pyproject.toml's [project] name)."""


def installed_version(distribution: str = DISTRIBUTION) -> str:
    """The version pip recorded when it installed ``distribution``; a clear error when it is not installed
    (the modules run from a source folder on PYTHONPATH)."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError as exc:
        raise CliError(f"the {distribution} distribution is not installed, so it has no version "
                       "(install it with pip: pip install . or the wheel)", Exit.CONFIG) from exc


class _VersionAction(argparse.Action):
    """``--version``: reads the metadata only when asked, so other commands do not pay the look-up."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                 default: str = argparse.SUPPRESS, help: str | None = None) -> None:
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: str | Sequence[Any] | None, option_string: str | None = None) -> NoReturn:
        try:
            line = f"{parser.prog} {installed_version()}"
        except CliError as exc:
            parser.exit(int(exc.code), f"{parser.prog}: {exc.message}\n")
        print(line)
        parser.exit(0)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; given the arguments, only the named command's (building every command's arguments
    costs about a millisecond, a few percent of ingesting a 64 MB file). --help lists every command."""
    parser = argparse.ArgumentParser(prog="opsworks-trail",
                                     description="Audit trail of AWS OpsWorks Stacks and OpsWorks CM calls.")
    parser.add_argument("--debug", action="store_true", help="show the traceback of a failure")
    parser.add_argument("--version", action=_VersionAction, help="print the installed version and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    named = next((a for a in argv or [] if not a.startswith("-")), None)
    adders = [COMMANDS[named]] if named in COMMANDS else list(dict.fromkeys(COMMANDS.values()))
    for add in adders:
        add(commands)
    for sub in commands.choices.values():  # --debug after the command too, as the AWS CLI takes it
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                         help="show the traceback of a failure")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    try:
        return int(args.run(args))
    except BrokenPipeError:  # `opsworks-trail ... | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("opsworks-trail: interrupted", file=sys.stderr)
        return int(Exit.INTERRUPTED)
    except CliError as exc:
        return _say(exc.message, exc.code, args.debug)
    except (ClientError, BotoCoreError) as exc:
        found = explain(exc, Where(table=getattr(args, "table", None), endpoint=getattr(args, "endpoint_url", None)))
        assert found is not None
        return _say(found.message, found.code, args.debug)
    except Exception as exc:
        return _say(f"unexpected {type(exc).__name__}: {exc} (run again with --debug for the traceback)",
                    Exit.PARTIAL, args.debug)


def _say(message: str, code: Exit, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    print(f"opsworks-trail: {message}", file=sys.stderr)
    return int(code)


if __name__ == "__main__":
    raise SystemExit(main())
