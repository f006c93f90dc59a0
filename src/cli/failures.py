"""`opsworks-trail failures` and `opsworks-trail retry-failures`: the operator's side of permanent failures.

A log file that cannot be ingested (corrupt, over the size cap, unreadable for lack of permission) is
acknowledged, never retried by the trigger, and recorded as its file-state item with `status=failed`.
`failures` lists those; after a fix (IAM, a raised cap, a new release) `retry-failures` runs the same
pipeline over them again, and a success overwrites the failure state, so the list only shrinks.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cli.common import (
    add_selection_arguments,
    add_table_arguments,
    dynamodb_client,
    megabytes,
    s3_client,
    selection_from,
    to_json,
)
from cli.present.safe_text import for_terminal
from cli.present.tables import aligned_columns
from core.ingest.pipeline import Pipeline
from core.ingest.sinks import DryRunSink, Sink, TableSink
from core.ingest.sources import S3Source
from core.ingest.store import EventStore
from core.model import ObjectRef, Outcome, Status

COLUMNS = ("at", "bucket", "key", "reason")


def add_parsers(commands: Any) -> None:
    listing = commands.add_parser("failures", help="list the log files that failed permanently",
                                  description="List the log files that failed permanently, oldest first.")
    listing.add_argument("--format", choices=["table", "json"], default="table")
    add_table_arguments(listing)
    listing.set_defaults(run=run_failures)

    retry = commands.add_parser("retry-failures", help="ingest the permanently failed log files again",
                                description="Run the pipeline again over every permanently failed log file; "
                                            "a success replaces its failure state.")
    retry.add_argument("--dry-run", action="store_true",
                       help="read and check each file again, write nothing (the failures stay listed)")
    add_selection_arguments(retry)
    add_table_arguments(retry)
    retry.set_defaults(run=run_retry)


def failure_rows(store: EventStore) -> list[dict[str, Any]]:
    """One row per failed file, with only the fields an operator needs."""
    return [{"bucket": item.get("bucket"), "key": item.get("key"), "reason": item.get("reason", ""),
             "at": item.get("at"), **({"etag": item["etag"]} if item.get("etag") else {})}
            for item in store.failed_files()]


def run_failures(args: argparse.Namespace) -> int:
    rows = failure_rows(EventStore(dynamodb_client(args), args.table))
    if args.format == "json":
        print(to_json(rows, indent=2))
    else:
        print(render_table(rows))
    return 0


def render_table(rows: list[dict[str, Any]]) -> str:
    """Aligned columns, the reason last and unpadded (it is the long one)."""
    if not rows:
        return ("no permanent failures (of S3 objects: a local file that fails is reported by `ingest` "
                "when it fails, not recorded here)")
    cells = [[str(row.get(column) or "") for column in COLUMNS] for row in rows]
    return "\n".join(aligned_columns([c.upper() for c in COLUMNS], cells))


def run_retry(args: argparse.Namespace) -> int:
    selection = selection_from(args)
    store = EventStore(dynamodb_client(args), args.table)
    rows = failure_rows(store)  # read in full first: successes remove rows from the index being read
    sink: Sink = DryRunSink() if args.dry_run else TableSink(store, reread_failed=True)
    pipeline = Pipeline(open=S3Source(s3_client(args)).open, selection=selection, sink=sink,
                        max_decompressed_bytes=args.max_bytes)
    still_failing = 0
    for row in rows:
        outcome = pipeline.ingest(ObjectRef(row["bucket"], row["key"], etag=row.get("etag")))
        still_failing += outcome.status is Status.FAILED
        print(for_terminal(describe(outcome, dry_run=args.dry_run)))
    verb = "checked" if args.dry_run else "retried"
    print(f"{len(rows)} failed files {verb}, {len(rows) - still_failing} ok, {still_failing} still failing",
          file=sys.stderr)
    return 1 if still_failing else 0


def describe(outcome: Outcome, *, dry_run: bool) -> str:
    """One line per retried file: what became of it."""
    uri = outcome.ref.uri
    if outcome.status is Status.FAILED:
        kind = "permanent" if outcome.permanent else "transient, run again later"
        return f"still failing ({kind}): {uri}: {outcome.reason}"
    if outcome.status is Status.SKIPPED:
        return f"skipped: {uri}: {outcome.reason}"
    done = "would ingest" if dry_run else "ingested"
    return f"{done}: {uri}: {megabytes(outcome.bytes_read)} read, {outcome.matched} matched, {outcome.written} written"
