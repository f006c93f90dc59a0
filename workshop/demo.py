"""`make demo` (`python -m workshop.demo`): the main job on a local default, end to end, with nothing to configure.

Generates a realistic trail bucket (hundreds of files of mixed services, OpsWorks and OpsWorks CM
events among them, digest files signed with a demo key), starts the persistent DynamoDB Local
(`opsworks-trail local start`; data on disk under .cache, it keeps running after the demo), creates the
table opsworks-trail-demo afresh from template.yaml's own key schema, ingests the bucket through the
pipeline the Lambda function runs (digests verified as it verifies them), prints what it found, read back
from the table with Queries, and ends with what the digests prove: every delivered log file read, none
altered. `query --local` and `report --local` ask the same table afterwards.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter, defaultdict
from pathlib import Path

import boto3

from cli.common import LOCAL_TABLE
from cli.errors import CliError, Exit
from cli.ingest import Summary, ingest_all
from cli.present.report import (
    add_coverage_html,
    build_report,
    render_coverage_text,
    render_html,
    render_text,
)
from cli.verify import coverage_line
from core.event import Event
from core.ingest.pipeline import Pipeline
from core.ingest.proof import DigestCheck
from core.ingest.publickeys import KeyRing, keys_from_list
from core.ingest.selection import Selection
from core.ingest.sinks import TableSink
from core.ingest.store import EventStore
from core.read.actors import who
from core.read.queries import EventQueries
from core.read.verify import Verifier
from core.settings import DEFAULT_EVENT_SOURCES, DEFAULT_MAX_DECOMPRESSED_BYTES
from workshop.sample_digests import DirectoryBucket

BUCKET = "demo-bucket"
"""The bucket the generated folder stands for (what its digests and the table's file items name)."""


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m workshop.demo", description=__doc__)
    parser.add_argument("--bucket-dir", type=Path, default=Path("demo-bucket"),
                        help="where the sample trail bucket is generated (default: demo-bucket/)")
    parser.add_argument("--files", type=int, default=300, help="log files in the sample bucket (default 300)")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    """The demo, with the command line's one-line errors and exit codes."""
    try:
        return run(parser().parse_args(argv))
    except CliError as exc:
        print(f"demo: {exc.message}", file=sys.stderr)
        return int(exc.code)


def run(args: argparse.Namespace) -> int:
    from cli.dynamodb_local import DynamoDBLocalUnavailable, client_kwargs, start_persistent
    from workshop.synthetic import write_sample_bucket
    from workshop.template import table_definition_from_template

    root: Path = args.bucket_dir
    manifest = write_sample_bucket(root, files=args.files, bucket=BUCKET)
    print(f"Sample trail bucket: {root}/ ({manifest.files} log files, {len(manifest.skipped_keys)} other "
          f"objects, {manifest.records:,} records of which {manifest.opsworks_records} OpsWorks)")
    try:
        server, started = start_persistent()
    except DynamoDBLocalUnavailable as exc:
        raise CliError(f"DynamoDB Local could not start: {exc}", Exit.CONFIG) from exc
    client = boto3.client("dynamodb", **client_kwargs(server["endpoint_url"]))
    table = LOCAL_TABLE
    if table in client.list_tables()["TableNames"]:
        client.delete_table(TableName=table)  # each demo starts from an empty table
    client.create_table(TableName=table, **table_definition_from_template())
    print(f"DynamoDB Local at {server['endpoint_url']} ({'started' if started else 'already running'}, data in "
          f"{server['data']}), table {table} (key schema from template.yaml)\n")
    store = EventStore(client, table)
    bucket = DirectoryBucket(root, BUCKET, manifest.digest_metadata)
    keys = KeyRing(keys_from_list(manifest.public_keys))
    pipeline = Pipeline(open=bucket.open, selection=Selection(frozenset(DEFAULT_EVENT_SOURCES)),
                        sink=TableSink(store), max_decompressed_bytes=DEFAULT_MAX_DECOMPRESSED_BYTES,
                        count_records=True, digests=DigestCheck(bucket.fetch, keys, store))
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
    stack = next((t.name for t in report.targets if t.kind == "stack" and t.name), "STACK-NAME")
    command = _command()
    print(f"\nThe same inventory as a page with timelines: {html}\n")
    print(render_coverage_text(proof.sorted()), end="")
    print(coverage_line(proof))
    print(f"\nDynamoDB Local keeps running with the table; ask it now, e.g.\n"
          f"  {command} query --local --stack {stack} --order desc --limit 10\n"
          f"  {command} report --local --html report.html\n"
          f"and stop it with `{command} local stop` (the data stay in {server['data']}).")
    return 1 if summary.failed or proof.findings else 0


def _command() -> str:
    """How the person who ran the demo runs the CLI: `.venv/bin/opsworks-trail` under `make demo`."""
    program = Path(sys.argv[0])
    if program.name != "opsworks-trail":
        return "opsworks-trail"
    try:
        return str(program.resolve().relative_to(Path.cwd()))
    except ValueError:
        return "opsworks-trail" if os.path.dirname(sys.argv[0]) == "" else str(program)


def _reasons(summary: Summary) -> str:
    return ", ".join(f"{count} {reason}" for reason, count in summary.skip_reasons.most_common())


def print_callers_and_failures(events: list[Event], failures: list[Event]) -> None:
    """Who called what, and which calls failed: the two questions a retirement review asks first. Callers
    are people or principals keyed by account (core.read.actors), never by a display name alone."""
    print("Who called what")
    calls: dict[str, Counter[str]] = defaultdict(Counter)
    labels: dict[str, str] = {}
    for event in events:
        caller = who(event.get("actor", {}))
        labels[caller.key] = caller.label
        calls[caller.key][f"{event['service']}:{event['event_name']}"] += 1
    for key, actions in sorted(calls.items(), key=lambda kv: (-sum(kv[1].values()), kv[0])):
        listed = ", ".join(f"{name} x{n}" if n > 1 else name for name, n in actions.most_common(3))
        more = f", +{len(actions) - 3} more" if len(actions) > 3 else ""
        print(f"  {labels[key]}\n      {sum(actions.values())} calls: {listed}{more}")
    print(f"\nFailed calls ({len(failures)}, from the failed-calls index)")
    for event in failures:
        name = who(event.get("actor", {})).name
        print(f"  {event['event_time']}  {event['event_id']}  {event['event_name']:<24} {name[:30]:<30} "
              f"{event.get('error_code', '')}: {str(event.get('error_message', ''))[:50]}")


if __name__ == "__main__":
    raise SystemExit(main())
