"""`opsworks-trail demo`: the main job on a local default, end to end, with nothing to configure.

Generates a realistic trail bucket (hundreds of files of mixed services, OpsWorks and OpsWorks CM
events among them), starts DynamoDB Local, creates the events table from template.yaml's own key
schema, ingests the bucket through the pipeline the Lambda function runs, and prints what it found,
read back from the table with Queries.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import boto3

from cli.ingest import Summary, ingest_all
from core.model import ObjectRef
from core.pipeline import Pipeline
from core.selection import Selection
from core.settings import DEFAULT_EVENT_SOURCES, DEFAULT_MAX_DECOMPRESSED_BYTES
from core.sources import LocalSource
from core.store import EventStore


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("demo", help="ingest a generated trail bucket into DynamoDB Local and report",
                                 description=__doc__)
    parser.add_argument("--bucket-dir", type=Path, default=Path("demo-bucket"),
                        help="where the sample trail bucket is generated (default: demo-bucket/)")
    parser.add_argument("--files", type=int, default=300, help="log files in the sample bucket (default 300)")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from cli.dynamodb_local import DynamoDBLocal, DynamoDBLocalUnavailable, client_kwargs
    from cli.synthetic import write_sample_bucket
    from cli.template import table_definition_from_template

    root: Path = args.bucket_dir
    manifest = write_sample_bucket(root, files=args.files)
    print(f"Sample trail bucket: {root}/ ({manifest.files} log files, {len(manifest.skipped_keys)} other "
          f"objects, {manifest.records:,} records of which {manifest.opsworks_records} OpsWorks)")
    try:
        server = DynamoDBLocal()
        server.start()
    except DynamoDBLocalUnavailable as exc:
        print(f"opsworks-trail demo: DynamoDB Local could not start: {exc}", file=sys.stderr)
        return 2
    try:
        client = boto3.client("dynamodb", **client_kwargs(server.endpoint_url))
        table = f"opsworks-trail-demo-{uuid.uuid4().hex[:6]}"
        client.create_table(TableName=table, **table_definition_from_template())
        print(f"DynamoDB Local at {server.endpoint_url}, table {table} (key schema from template.yaml)\n")
        store = EventStore(client, table)
        pipeline = Pipeline(open=LocalSource().open, selection=Selection(frozenset(DEFAULT_EVENT_SOURCES)),
                            store=store, max_decompressed_bytes=DEFAULT_MAX_DECOMPRESSED_BYTES)
        refs = [ObjectRef(None, str(path), path.stat().st_size) for path in sorted(root.rglob("*"))
                if path.is_file()]
        summary = ingest_all(pipeline, refs, Summary(), progress=not args.no_progress)
        print(f"Ingested {summary.files} objects: {summary.skipped} skipped ({_reasons(summary)}), "
              f"{summary.failed} failed; {summary.records:,} records read, {summary.matched} OpsWorks "
              f"records matched.")
        events = _events_by_account(store, manifest.accounts)
        print(f"The table holds {len(events)} distinct events (redelivered events are stored once).\n")
        print_activity(events)
    finally:
        server.stop()
    return 1 if summary.failed else 0


def _reasons(summary: Summary) -> str:
    return ", ".join(f"{count} {reason}" for reason, count in summary.skip_reasons.most_common())


def _events_by_account(store: EventStore, accounts: list[str]) -> list[dict[str, Any]]:
    """Every stored event of these accounts, read back with a Query on the by_account index."""
    from core.store import restore

    events = []
    for account in accounts:
        for item in store.query(IndexName="by_account", KeyConditionExpression="account_pk = :a",
                                ExpressionAttributeValues={":a": {"S": account}}):
            events.append(restore(item))
    return sorted(events, key=lambda e: (e["event_time"], e["event_id"]))


def print_activity(events: list[dict[str, Any]]) -> None:
    """Events per stack and server, who called what, and which calls failed."""
    per_resource: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        for resource in event.get("resources", []):
            if resource["type"] in ("stack", "server"):
                per_resource[(resource["type"], resource["id"])].append(event)
    print("Per stack and server")
    print(f"  {'resource':<48} {'events':>6} {'writes':>6} {'failed':>6}  first activity → last activity")
    for (rtype, rid), group in sorted(per_resource.items()):
        writes = sum(1 for e in group if e.get("read_only") is False)
        failed = sum(1 for e in group if e["outcome"] == "failure")
        print(f"  {rtype + ' ' + rid:<48} {len(group):>6} {writes:>6} {failed:>6}  "
              f"{group[0]['event_time']} → {group[-1]['event_time']}")
    print("\nWho called what")
    calls: dict[str, Counter[str]] = defaultdict(Counter)
    for event in events:
        actor = event.get("actor", {})
        who = f"{actor.get('name', '?')} ({actor.get('type', '?')})"
        calls[who][f"{event['service']}:{event['event_name']}"] += 1
    for who, actions in sorted(calls.items(), key=lambda kv: -sum(kv[1].values())):
        listed = ", ".join(f"{name} x{n}" if n > 1 else name for name, n in actions.most_common(6))
        more = f", +{len(actions) - 6} more" if len(actions) > 6 else ""
        print(f"  {who:<44} {sum(actions.values()):>4} calls: {listed}{more}")
    failures = [e for e in events if e["outcome"] == "failure"]
    print(f"\nFailed calls ({len(failures)})")
    for event in failures:
        actor = event.get("actor", {}).get("name", "?")
        print(f"  {event['event_time']}  {event['event_name']:<28} {actor:<22} "
              f"{event.get('error_code', '')}: {str(event.get('error_message', ''))[:60]}")
