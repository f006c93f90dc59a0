"""`opsworks-trail`: the command line over the same core the Lambda function runs."""

from __future__ import annotations

import argparse
import sys

from cli import backfill, demo, failures, ingest, query, report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="opsworks-trail",
                                     description="Audit trail of AWS OpsWorks Stacks and OpsWorks CM calls.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    ingest.add_parser(commands)
    backfill.add_parser(commands)
    failures.add_parsers(commands)
    query.add_parser(commands)
    report.add_parser(commands)
    demo.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except BrokenPipeError:  # `opsworks-trail ... | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
