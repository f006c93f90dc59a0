"""`opsworks-trail`: the command line over the same core the Lambda function runs.

Failures end in one line on stderr naming the cause and the fix, and a documented exit code
(cli.errors.Exit, docs/commands.md "Errors and exit codes"); --debug adds the traceback.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cli import backfill, failures, ingest, local, query, report, verify
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
}
"""Each command and the function that adds its parser (one adds two)."""


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; given the arguments, only the named command's (building every command's arguments
    costs about a millisecond, a few percent of ingesting a 64 MB file). --help lists every command."""
    parser = argparse.ArgumentParser(prog="opsworks-trail",
                                     description="Audit trail of AWS OpsWorks Stacks and OpsWorks CM calls.")
    parser.add_argument("--debug", action="store_true", help="show the traceback of a failure")
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
