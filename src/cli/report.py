"""`opsworks-trail report`: the inventory for retiring OpsWorks, per stack and per server.

    opsworks-trail report                      # table in the terminal
    opsworks-trail report --html report.html   # a self-contained page with timelines
    opsworks-trail report --format json --account 111122223333

Reads every event with Queries on the by_account index, one account at a time (never Scan).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from cli.common import add_table_arguments, dynamodb_client, fail, to_json
from cli.present.report import (
    add_coverage_html,
    as_dict,
    build_report,
    render_coverage_text,
    render_html,
    render_text,
)
from core.read.event_proof import events_re_derived, latest_event_proofs
from core.read.queries import BadTime, EventFilter, EventQueries, parse_when
from core.read.verify import coverage_from_table


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("report", help="inventory for retiring OpsWorks: stacks, servers, callers",
                                 description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--account", metavar="ID", help="one account (default: every account seen)")
    parser.add_argument("--since", help="ISO 8601 or relative (7d, 12h); default: the whole trail")
    parser.add_argument("--until", help="ISO 8601 or relative; inclusive")
    parser.add_argument("--html", type=Path, metavar="FILE", help="also write the report as one HTML page")
    parser.add_argument("--format", choices=["table", "json"], default="table", help="what goes to stdout")
    add_table_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        since = parse_when(args.since) if args.since else None
        until = parse_when(args.until) if args.until else None
    except BadTime as exc:
        return fail(str(exc))
    queries = EventQueries(dynamodb_client(args), args.table)
    events = list(queries.search(EventFilter(account=args.account, since=since, until=until)))
    report = build_report(events)
    coverage = [s for s in coverage_from_table(queries.store)
                if args.account in (None, s.account)]
    shown = {(str(e["account_id"]), str(e["region"])) for e in events if e.get("account_id") and e.get("region")}
    proven = events_re_derived(events, latest_event_proofs(queries.store, sorted(shown)))
    if args.html:
        args.html.write_text(add_coverage_html(render_html(report), coverage, proven), encoding="utf-8")
        print(f"wrote {args.html}", file=sys.stderr)
    if args.format == "json":
        out.write(to_json(dict(as_dict(report), coverage=[s.as_dict() for s in coverage],
                               events_proven=[p.as_dict() for p in proven]), indent=2) + "\n")
    else:
        out.write(render_text(report) + "\n" + render_coverage_text(coverage, proven))
    return 0
