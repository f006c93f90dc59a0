"""`opsworks-trail demo`: the main job on a local default, end to end, with nothing to configure.

Generates a realistic trail bucket (hundreds of files of mixed services, OpsWorks and OpsWorks CM
events among them, digest files signed with a demo key), starts DynamoDB Local, creates the events
table from template.yaml's own key schema, ingests the bucket through the pipeline the Lambda function
runs (digests verified as it verifies them), prints what it found, read back from the table with
Queries, and ends with what the digests prove: every delivered log file read, none altered.
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
from cli.sample_digests import DirectoryBucket
from cli.verify import coverage_line
from core.pipeline import Pipeline
from core.proof import DigestCheck
from core.publickeys import KeyRing, keys_from_list
from core.queries import EventQueries
from core.report import add_coverage_html, build_report, render_coverage_text, render_html, render_text
from core.selection import Selection
from core.settings import DEFAULT_EVENT_SOURCES, DEFAULT_MAX_DECOMPRESSED_BYTES
from core.store import EventStore
from core.verify import Verifier

BUCKET = "demo-bucket"
"""The bucket the generated folder stands for (what its digests and the table's file items name)."""


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
    manifest = write_sample_bucket(root, files=args.files, bucket=BUCKET)
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
        bucket = DirectoryBucket(root, BUCKET, manifest.digest_metadata)
        keys = KeyRing(keys_from_list(manifest.public_keys))
        pipeline = Pipeline(open=bucket.open, selection=Selection(frozenset(DEFAULT_EVENT_SOURCES)),
                            store=store, max_decompressed_bytes=DEFAULT_MAX_DECOMPRESSED_BYTES, count_records=True,
                            digests=DigestCheck(bucket.fetch, keys, store))
        summary = ingest_all(pipeline, bucket.refs(), Summary(), progress=not args.no_progress)
        print(f"Ingested {summary.files} objects: {summary.skipped} skipped ({_reasons(summary)}), "
              f"{summary.failed} failed; {summary.read()}, {summary.matched} OpsWorks records matched.")
        queries = EventQueries(client, table)
        events = list(queries.all_events())
        print(f"The table holds {len(events)} distinct events (redelivered events are stored once).\n")
        report = build_report(events)
        print(render_text(report))
        print_callers_and_failures(events, list(queries.failed()))
        proof = Verifier(bucket.list, bucket.fetch, keys, store, open=bucket.open).run(BUCKET)
        html = root.with_name(root.name + ".report.html")
        html.write_text(add_coverage_html(render_html(report), proof.sorted()), encoding="utf-8")
        print(f"\nThe same inventory as a page with timelines: {html}")
        print("Ask more with opsworks-trail query / report against your own table, e.g. "
              "`opsworks-trail query --stack ID --since 30d`.\n")
        print(render_coverage_text(proof.sorted()), end="")
        print(coverage_line(proof))
    finally:
        server.stop()
    return 1 if summary.failed or proof.findings else 0


def _reasons(summary: Summary) -> str:
    return ", ".join(f"{count} {reason}" for reason, count in summary.skip_reasons.most_common())


def print_callers_and_failures(events: list[dict[str, Any]], failures: list[dict[str, Any]]) -> None:
    """Who called what, and which calls failed: the two questions a retirement review asks first."""
    print("Who called what")
    calls: dict[str, Counter[str]] = defaultdict(Counter)
    for event in events:
        actor = event.get("actor", {})
        who = f"{actor.get('name', '?')} ({actor.get('type', '?')})"
        calls[who][f"{event['service']}:{event['event_name']}"] += 1
    for who, actions in sorted(calls.items(), key=lambda kv: -sum(kv[1].values())):
        listed = ", ".join(f"{name} x{n}" if n > 1 else name for name, n in actions.most_common(5))
        more = f", +{len(actions) - 5} more" if len(actions) > 5 else ""
        print(f"  {who:<40} {sum(actions.values()):>4} calls: {listed}{more}")
    print(f"\nFailed calls ({len(failures)}, from the failed-calls index)")
    for event in failures:
        actor = event.get("actor", {}).get("name", "?")
        print(f"  {event['event_time']}  {event['event_name']:<24} {actor[:30]:<30} "
              f"{event.get('error_code', '')}: {str(event.get('error_message', ''))[:50]}")
