"""`opsworks-trail query`: the audit questions from the command line (Query only, never Scan).

    opsworks-trail query --stack ID --since 7d
    opsworks-trail query --actor arn:aws:sts::111122223333:assumed-role/Deploy/gitlab-runner --format json
    opsworks-trail query --failed --writes --account 111122223333 --format csv
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterable
from typing import Any, TextIO

from cli.common import add_table_arguments, dynamodb_client, fail, to_json
from core.queries import BadTime, Event, EventFilter, EventQueries, parse_when
from core.report import aligned_columns

COLUMNS = ("time", "service", "action", "outcome", "actor", "source_ip", "resources")
CSV_COLUMNS = ("event_id", "event_time", "service", "event_name", "outcome", "error_code", "read_only",
               "account_id", "region", "actor_name", "actor_arn", "source_ip", "user_agent", "resources")


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("query", help="OpsWorks events by stack, server, resource, actor, account, time",
                                 description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    scope = parser.add_argument_group("what (combinable; the first given picks the Query)")
    scope.add_argument("--id", dest="event_id", help="one event by its CloudTrail eventID")
    scope.add_argument("--stack", metavar="ID", help="a stack and its layers, instances, apps, deployments...")
    scope.add_argument("--server", metavar="NAME", help="an OpsWorks CM server and its backups")
    scope.add_argument("--resource", metavar="TYPE/ID", help="one resource, e.g. instance/6f3c...")
    scope.add_argument("--actor", metavar="ARN",
                       help="a user, role (every session) or assumed-role session ARN, or a service name")
    scope.add_argument("--account", metavar="ID", help="one account")
    scope.add_argument("--failed", action="store_true", help="failed calls only")
    scope.add_argument("--writes", action="store_true", help="mutating calls only")
    scope.add_argument("--since", help="ISO 8601 (UTC unless a zone is given) or relative: 7d, 12h, 30m, 2w")
    scope.add_argument("--until", help="same forms as --since; inclusive")
    parser.add_argument("--limit", type=int, help="at most this many events (the oldest first)")
    parser.add_argument("--format", choices=["table", "json", "jsonl", "csv"], default="table")
    add_table_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        selection = filter_from(args)
    except (BadTime, ValueError) as exc:
        return fail(str(exc))
    queries = EventQueries(dynamodb_client(args), args.table)
    if args.event_id:
        found = queries.by_id(args.event_id)
        events: Iterable[Event] = [found] if found else []
    else:
        events = queries.search(selection, limit=args.limit)
    write(events, args.format, out)
    return 0


def filter_from(args: argparse.Namespace) -> EventFilter:
    resource = None
    if args.resource:
        rtype, sep, rid = args.resource.partition("/")
        if not sep or not rtype or not rid:
            raise ValueError(f"--resource {args.resource!r}: expected TYPE/ID, e.g. instance/6f3c...")
        resource = (rtype, rid)
    if args.limit is not None and args.limit < 1:
        raise ValueError("--limit must be at least 1")
    since = parse_when(args.since) if args.since else None
    until = parse_when(args.until) if args.until else None
    if since and until and since > until:
        raise ValueError(f"--since {since} is after --until {until}")
    return EventFilter(stack=args.stack, server=args.server, resource=resource, actor=args.actor,
                       account=args.account, since=since, until=until, failed=args.failed, writes=args.writes)


def write(events: Iterable[Event], form: str, out: TextIO) -> None:
    """json is one list (JSON numbers, not strings); jsonl and csv stream; table aligns columns."""
    if form == "jsonl":
        for event in events:
            out.write(to_json(event) + "\n")
    elif form == "json":
        out.write(to_json(list(events), indent=2) + "\n")
    elif form == "csv":
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for event in events:
            writer.writerow(csv_row(event))
    else:
        write_table([table_row(e) for e in events], COLUMNS, out)


def table_row(event: Event) -> list[str]:
    outcome = event.get("outcome", "")
    if event.get("error_code"):
        outcome = f"{outcome} ({event['error_code']})"
    actor = event.get("actor", {})
    return [event["event_time"], event.get("service", ""), event.get("event_name", ""), outcome,
            str(actor.get("name") or actor.get("arn") or ""), event.get("source_ip", ""), resources_text(event)]


def csv_row(event: Event) -> list[str]:
    actor = event.get("actor", {})
    read_only = event.get("read_only")
    return [event["event_id"], event["event_time"], event.get("service", ""), event.get("event_name", ""),
            event.get("outcome", ""), event.get("error_code", ""), "" if read_only is None else str(read_only).lower(),
            event.get("account_id", ""), event.get("region", ""), str(actor.get("name", "")),
            str(actor.get("arn", "")), event.get("source_ip", ""), event.get("user_agent", ""), resources_text(event)]


def resources_text(event: Event) -> str:
    return " ".join(f"{r['type']}/{r['id']}" for r in event.get("resources", []))


def write_table(rows: list[list[str]], header: Iterable[str], out: TextIO) -> None:
    """Aligned columns; the last (resources, which can be long) is not padded."""
    for line in aligned_columns([h.replace("_", " ") for h in header], rows):
        out.write(line + "\n")
    if not rows:
        out.write("(no events)\n")
