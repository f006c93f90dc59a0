"""`opsworks-trail query`: the audit questions from the command line (Query only, never Scan).

    opsworks-trail query --stack web-prod --since 7d               # a stack by name or id
    opsworks-trail query --actor bob@example.com --order desc --limit 20
    opsworks-trail query --actor arn:aws:sts::111122223333:assumed-role/Deploy/gitlab-runner --format json
    opsworks-trail query --failed --writes --account 111122223333 --format csv

With --limit, a last line on stderr gives the --resume token for the next page (same options, same --order).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterable
from typing import Any, TextIO

from cli.common import add_table_arguments, dynamodb_client, fail, to_json
from cli.errors import CliError, Exit
from cli.present.safe_text import csv_cell
from cli.present.tables import aligned_columns
from core.event import Event
from core.read.actors import who
from core.read.queries import (
    BadTime,
    BadToken,
    EventFilter,
    EventQueries,
    UnknownName,
    parse_resume_token,
    parse_when,
    resume_token,
)

COLUMNS = ("time", "event id", "account", "region", "action", "resource", "caller", "outcome")
CSV_COLUMNS = ("event_id", "event_time", "service", "event_name", "outcome", "error_code", "error_message",
               "read_only", "account_id", "region", "caller", "actor_name", "actor_arn", "source_ip", "user_agent",
               "resources")
FIRST_KEYS = ("event_id", "event_time", "account_id", "region", "service", "event_source", "event_name",
              "outcome", "error_code", "error_message", "read_only", "actor", "resources", "source_ip",
              "user_agent")
"""JSON keys in this order, the rest (and every nested map) sorted: the same event prints the same."""


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("query", help="OpsWorks events by stack, server, resource, actor, account, time",
                                 description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    scope = parser.add_argument_group("what (combinable; the first given picks the Query)")
    scope.add_argument("--id", dest="event_id", help="one event by its CloudTrail eventID")
    scope.add_argument("--stack", metavar="NAME|ID",
                       help="a stack (by name or id) and its layers, instances, apps, deployments...")
    scope.add_argument("--server", metavar="NAME|ARN", help="an OpsWorks CM server and its backups")
    scope.add_argument("--resource", metavar="TYPE/ID", help="one resource, e.g. instance/6f3c...")
    scope.add_argument("--actor", metavar="WHO",
                       help="a person's name or e-mail (Identity Center user, IAM or federated user, session, "
                            "source identity), or a user, role (every session), session ARN or service name")
    scope.add_argument("--account", metavar="ID", help="one account")
    scope.add_argument("--failed", action="store_true", help="failed calls only")
    scope.add_argument("--writes", action="store_true", help="mutating calls only")
    scope.add_argument("--since", help="ISO 8601 (UTC unless a zone is given) or relative: 7d, 12h, 30m, 2w")
    scope.add_argument("--until", help="same forms as --since; inclusive")
    parser.add_argument("--order", choices=["asc", "desc"], default="asc",
                        help="asc: oldest first (default); desc: newest first")
    parser.add_argument("--limit", type=int, help="at most this many events; stderr then says how to resume")
    parser.add_argument("--resume", metavar="TOKEN", help="continue after the last event of a --limit page")
    parser.add_argument("--format", choices=["table", "json", "jsonl", "csv"], default="table")
    add_table_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        selection = filter_from(args)
    except (BadTime, BadToken, ValueError) as exc:
        return fail(str(exc))
    queries = EventQueries(dynamodb_client(args), args.table)
    if args.event_id:
        found = queries.by_id(args.event_id)
        write([found] if found else [], args.format, out)
        return 0
    try:
        events = queries.search(selection, limit=None if args.limit is None else args.limit + 1)
    except UnknownName as exc:
        raise CliError(f"{exc} (table {args.table})", Exit.NOTHING) from exc
    page = list(events) if args.limit is not None else events
    more = isinstance(page, list) and len(page) > args.limit
    if isinstance(page, list) and more:
        page = page[:args.limit]
    write(page, args.format, out)
    if more and isinstance(page, list):
        out.flush()
        print(f"more events: add --resume {resume_token(page[-1], selection.newest_first)}", file=sys.stderr)
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
    newest_first = args.order == "desc"
    resume_after = parse_resume_token(args.resume, newest_first) if args.resume else None
    return EventFilter(stack=args.stack, server=args.server, resource=resource, actor=args.actor,
                       account=args.account, since=since, until=until, failed=args.failed, writes=args.writes,
                       newest_first=newest_first, resume_after=resume_after)


def write(events: Iterable[Event], form: str, out: TextIO) -> None:
    """json is one list (JSON numbers, not strings); jsonl and csv stream; table aligns columns. Keys come
    in one fixed order (FIRST_KEYS, then sorted), so the same event always prints the same."""
    if form == "jsonl":
        for event in events:
            out.write(to_json(ordered(event)) + "\n")
    elif form == "json":
        out.write(to_json([ordered(e) for e in events], indent=2) + "\n")
    elif form == "csv":
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for event in events:
            writer.writerow([csv_cell(cell) for cell in csv_row(event)])
    else:
        write_table([table_row(e) for e in events], COLUMNS, out)


def ordered(value: Any, top: bool = True) -> Any:
    if isinstance(value, dict):
        first = [k for k in FIRST_KEYS if k in value] if top else []
        rest = sorted((k for k in value if k not in first), key=str)
        return {k: ordered(value[k], top=False) for k in [*first, *rest]}
    if isinstance(value, list):
        return [ordered(v, top=False) for v in value]
    return value


def table_row(event: Event) -> list[str]:
    """What CloudTrail users expect to see of a call: when, where, what, on what, who, and how it went."""
    outcome = "ok" if event.get("outcome") != "failure" else "FAILED"
    if event.get("error_code") or event.get("error_message"):
        message = " ".join(str(event.get("error_message", "")).split())
        outcome = f"FAILED {event.get('error_code', '')}: {message[:80]}{'...' if len(message) > 80 else ''}"
    resources = [f"{r['type']}/{r['id']}" for r in event.get("resources", [])]
    resource = resources[0] + (f" +{len(resources) - 1}" if len(resources) > 1 else "") if resources else "-"
    action = f"{event.get('service', '')}:{event.get('event_name', '')}"
    return [event["event_time"], event["event_id"], event.get("account_id", ""), event.get("region", ""), action,
            resource, who(event.get("actor", {})).short, outcome]


def csv_row(event: Event) -> list[str]:
    actor = event.get("actor", {})
    read_only = event.get("read_only")
    return [event["event_id"], event["event_time"], event.get("service", ""), event.get("event_name", ""),
            event.get("outcome", ""), event.get("error_code", ""), event.get("error_message", ""),
            "" if read_only is None else str(read_only).lower(), event.get("account_id", ""),
            event.get("region", ""), who(actor).label, str(actor.get("name", "")), str(actor.get("arn", "")),
            event.get("source_ip", ""), event.get("user_agent", ""), resources_text(event)]


def write_table(rows: list[list[str]], header: Iterable[str], out: TextIO) -> None:
    """Aligned columns; the last (the outcome, with a failure's message) is not padded."""
    for line in aligned_columns([h.replace("_", " ") for h in header], rows):
        out.write(line + "\n")
    if not rows:
        out.write("(no events)\n")


def resources_text(event: Event) -> str:
    return " ".join(f"{r['type']}/{r['id']}" for r in event.get("resources", []))
