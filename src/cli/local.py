"""`opsworks-trail local start|stop|status`: a DynamoDB Local that stays, with its data on disk.

    opsworks-trail local start     # background server, data in ~/.cache/opsworks-trail/dynamodb-local/data,
                                   # and the table opsworks-trail-demo (the stack's key schema) if missing
    opsworks-trail ingest --local ./trail-logs/   # or, in a checkout, `make demo` loads a sample trail
    opsworks-trail query --local --stack web-prod --order desc --limit 5
    opsworks-trail local stop      # the data stay for the next start

--local on query, report, failures, ingest finds the server (its port is kept in dynamodb-local/server.json
under $OPSWORKS_TRAIL_CACHE, default ~/.cache/opsworks-trail, whatever folder the command runs from)
and uses local credentials, so nothing of a real AWS profile is needed or used.
"""

from __future__ import annotations

import argparse
from typing import Any

import boto3

from cli.common import LOCAL_TABLE
from cli.errors import CliError, Exit
from core.keys import table_definition


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("local", help="start, stop or show the persistent DynamoDB Local",
                                 description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("--port", type=int, default=8000, help="port to try first (default 8000)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from cli.dynamodb_local import (
        DynamoDBLocalUnavailable,
        client_kwargs,
        data_dir,
        persistent_server,
        start_persistent,
        stop_persistent,
    )

    if args.action == "start":
        try:
            state, started = start_persistent(args.port)
        except DynamoDBLocalUnavailable as exc:
            raise CliError(f"DynamoDB Local could not start: {exc}", Exit.CONFIG) from exc
        verb = "started" if started else "already running"
        print(f"DynamoDB Local {verb} at {state['endpoint_url']} (pid {state['pid']}), data in {state['data']}")
        client = boto3.client("dynamodb", **client_kwargs(state["endpoint_url"]))
        made = ensure_table(client, LOCAL_TABLE)
        print(f"  table {LOCAL_TABLE}: {'created, empty' if made else 'kept as it was'}")
        print("  load it: opsworks-trail ingest --local PATH (in a checkout: make demo);  "
              "ask it: opsworks-trail query --local ...;  stop it: opsworks-trail local stop")
    elif args.action == "stop":
        stopped = stop_persistent()
        print(f"DynamoDB Local stopped (data kept in {data_dir()})" if stopped else "DynamoDB Local was not running")
    else:
        running = persistent_server()
        if running is None:
            print(f"DynamoDB Local is not running (data in {data_dir()}); start it: opsworks-trail local start")
            return int(Exit.CONFIG)
        print(f"DynamoDB Local at {running['endpoint_url']} (pid {running['pid']}), data in {running['data']}")
    return 0


def ensure_table(client: Any, table: str) -> bool:
    """Create the events table with the stack's key schema unless it exists; True when it was created."""
    try:
        client.create_table(TableName=table, **table_definition())
    except client.exceptions.ResourceInUseException:
        return False
    client.get_waiter("table_exists").wait(TableName=table)
    return True
