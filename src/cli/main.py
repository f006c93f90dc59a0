"""`opsworks-trail`: the command line over the same core the Lambda function runs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from cli import backfill, demo, failures, ingest, query, report, verify

COMMANDS: dict[str, Callable[[Any], None]] = {
    "ingest": ingest.add_parser,
    "backfill": backfill.add_parser,
    "failures": failures.add_parsers,
    "retry-failures": failures.add_parsers,
    "query": query.add_parser,
    "report": report.add_parser,
    "demo": demo.add_parser,
    "verify": verify.add_parser,
}
"""Each command and the function that adds its parser (one adds two)."""


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; given the arguments, only the named command's (building every command's arguments
    costs about a millisecond, a few percent of ingesting a 64 MB file). --help lists every command."""
    parser = argparse.ArgumentParser(prog="opsworks-trail",
                                     description="Audit trail of AWS OpsWorks Stacks and OpsWorks CM calls.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    named = argv[0] if argv else None
    adders = [COMMANDS[named]] if named in COMMANDS else list(dict.fromkeys(COMMANDS.values()))
    for add in adders:
        add(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    try:
        return int(args.run(args))
    except BrokenPipeError:  # `opsworks-trail ... | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
