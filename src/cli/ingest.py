"""`opsworks-trail ingest PATH|s3://bucket[/prefix] ...`: the pipeline over local files or an S3 prefix."""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import sys
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sized
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from cli.common import (
    add_selection_arguments,
    add_table_arguments,
    dynamodb_client,
    megabytes,
    s3_client,
    selection_from,
    to_json,
)
from cli.errors import CliError, Exit, Where, explain
from cli.listing import refs_under
from core.errors import IngestError
from core.ingest.pipeline import Pipeline
from core.ingest.sinks import CollectingSink, DryRunSink, Sink, TableSink
from core.ingest.sources import LocalSource, S3Source
from core.ingest.store import EventStore
from core.model import ObjectRef, Outcome, Status


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("ingest", help="ingest local trail files or folders, or an S3 prefix",
                                 description=__doc__)
    parser.add_argument("paths", nargs="+", metavar="PATH|s3://bucket[/prefix]")
    parser.add_argument("--dry-run", action="store_true", help="read, select and normalize; write nothing")
    parser.add_argument("--format", choices=["none", "jsonl"], default="none",
                        help="jsonl: print each normalized event as one JSON line on stdout")
    parser.add_argument("--json", action="store_true", help="print a summary object on stdout at the end")
    parser.add_argument("--workers", type=int, help="objects read in parallel (default: from the machine and the "
                        "source: one per core for local files, which cost CPU; more for S3, whose reads wait)")
    parser.add_argument("--count-records", action="store_true",
                        help="also count every record of every file (one more pass: ~15%% slower on files "
                             "without OpsWorks records)")
    add_selection_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    add_table_arguments(parser)
    parser.set_defaults(run=run)


@dataclass
class Summary:
    files: int = 0
    skipped: int = 0
    failed: int = 0
    bytes_read: int = 0
    records: int | None = None
    """None unless records were counted (--count-records)."""
    matched: int = 0
    written: int = 0
    skip_reasons: Counter[str] = field(default_factory=Counter)
    failures: list[dict[str, Any]] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        self.files += 1
        self.bytes_read += outcome.bytes_read
        if outcome.records is not None:
            self.records = (self.records or 0) + outcome.records
        self.matched += outcome.matched
        self.written += outcome.written
        if outcome.status is Status.SKIPPED:
            self.skipped += 1
            self.skip_reasons[outcome.reason.split(" at ")[0]] += 1
        elif outcome.status is Status.FAILED:
            self.failed += 1
            self.failures.append({"object": outcome.ref.uri, "reason": outcome.reason,
                                  "permanent": outcome.permanent})

    def read(self) -> str:
        """What was read, for people: '64.0 MB read' or '64.0 MB read (49,486 records)'."""
        counted = f" ({self.records:,} records)" if self.records is not None else ""
        return f"{megabytes(self.bytes_read)} read{counted}"

    def as_dict(self) -> dict[str, Any]:
        return {"files": self.files, "skipped_files": self.skipped, "failed_files": self.failed,
                "bytes_read": self.bytes_read, "records": self.records, "matched": self.matched,
                "written": self.written,
                "skip_reasons": dict(self.skip_reasons), "failures": self.failures}


def run(args: argparse.Namespace) -> int:
    selection = selection_from(args)
    local, s3 = LocalSource(), None
    if any(p.startswith("s3://") for p in args.paths):
        s3 = S3Source(s3_client(args))
    sink: Sink = DryRunSink() if args.dry_run else TableSink(EventStore(dynamodb_client(args, ingest=True), args.table))
    if args.format == "jsonl":
        sink = CollectingSink(then=sink)  # printed by ingest_all, file by file in the order listed

    def open_object(ref: ObjectRef) -> Any:
        return local.open(ref) if ref.is_local else _need(s3).open(ref)

    pipeline = Pipeline(open=open_object, selection=selection, sink=sink, max_decompressed_bytes=args.max_bytes,
                        json_lines=True, count_records=args.count_records)
    summary = Summary()
    refs: Iterable[ObjectRef] = list_objects(args.paths, local, s3, summary)
    if s3 is None:
        refs = list(refs)  # local files only: a list, so the progress bar has a total and an ETA
    ingest_all(pipeline, refs, summary, workers=args.workers or default_workers(args.paths),
               progress=not args.no_progress)
    if not summary.files and not summary.failed:
        raise CliError(f"no object under {' '.join(args.paths)}: check the path (CloudTrail writes under "
                       "AWSLogs/<account>/CloudTrail/<region>/<yyyy>/<mm>/<dd>/)", Exit.NOTHING)
    sys.stdout.flush()
    if args.json:
        print(to_json(summary.as_dict(), indent=2))
    elif args.format == "none":
        print(f"{summary.files} files ({summary.skipped} skipped, {summary.failed} failed), {summary.read()}, "
              f"{summary.matched} matched, {summary.written} written", file=sys.stderr)
    local_failures = [f for f in summary.failures if not str(f["object"]).startswith("s3://")]
    if local_failures and not args.dry_run:
        print(f"opsworks-trail: {len(local_failures)} local file(s) failed (listed above); `failures` lists only "
              "S3 objects, so these are not recorded: fix them and ingest them again", file=sys.stderr)
    if summary.failed:
        return int(Exit.PARTIAL)
    if summary.files == summary.skipped:
        raise CliError(f"no CloudTrail log file under {' '.join(args.paths)} ({summary.files} object(s), none a "
                       "log file): check the path; CloudTrail writes AWSLogs/<account>/CloudTrail/<region>/"
                       "<yyyy>/<mm>/<dd>/*.json.gz", Exit.NOTHING)
    return 0


S3_READS_PER_CORE = 8
"""Objects read at once per core from S3: a GetObject waits tens of milliseconds before its bytes arrive."""


def default_workers(paths: list[str]) -> int:
    """Objects read at once when --workers is not given. Local files are CPU-bound: more threads than cores
    only add contention (four threads on two cores cost a quarter more CPU per file, bench/bench.py). S3
    reads wait on the network, so more are in flight."""
    cores = os.cpu_count() or 1
    return cores * S3_READS_PER_CORE if any(p.startswith("s3://") for p in paths) else cores


def ingest_all(pipeline: Pipeline, refs: Iterable[ObjectRef], summary: Summary, *, workers: int = 4,
               progress: bool = True) -> Summary:
    """Run the pipeline over objects in parallel into `summary`; events handed back (a CollectingSink) go to
    stdout as JSON lines.

    A single object is read in this thread: starting a pool for it costs more than a millisecond. Given a
    list, the progress bar knows the total and shows an ETA; failure lines are written above the bar.
    Objects are taken from `refs` as the workers free up (a few ahead), so a listing streamed in stays
    streamed: memory does not grow with the count.
    """
    total = len(refs) if isinstance(refs, Sized) else None
    refs = iter(refs)
    head = list(itertools.islice(refs, 2))
    pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 and len(head) > 1 else None
    with _progress(progress, total) as bar, pool or contextlib.nullcontext():
        objects = itertools.chain(head, refs)
        outcomes = _in_order(pool, pipeline.ingest, objects, 2 * workers) if pool else map(pipeline.ingest, objects)
        for outcome in outcomes:
            summary.add(outcome)
            for event in outcome.items:
                print(to_json(event), flush=False)
            if outcome.status is Status.FAILED:
                bar.write(f"failed: {outcome.ref.uri}: {outcome.reason}", file=sys.stderr)
            bar.update(1)
            bar.set_postfix(matched=summary.matched, failed=summary.failed, refresh=False)
    return summary


def _in_order(pool: ThreadPoolExecutor, ingest: Callable[[ObjectRef], Outcome], refs: Iterable[ObjectRef],
              window: int) -> Iterator[Outcome]:
    """pool.map with at most `window` objects taken ahead (Executor.map takes them all first)."""
    pending: deque[Future[Outcome]] = deque()
    for ref in refs:
        pending.append(pool.submit(ingest, ref))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def list_objects(paths: list[str], local: LocalSource, s3: S3Source | None, summary: Summary) -> Iterator[ObjectRef]:
    """Every object under the paths, streamed: an S3 prefix is listed in parallel by the trail's own
    prefixes (cli.listing), never held whole. A path holding nothing is said; a listing that fails for a
    reason no retry fixes (no bucket, access denied, no credentials) stops the command."""
    found = False
    empty: list[str] = []
    for path in paths:
        count = 0
        try:
            if path.startswith("s3://"):
                bucket, _, prefix = path.removeprefix("s3://").partition("/")
                for ref in refs_under(_need(s3).client, bucket, prefix):
                    count += 1
                    yield ref
            else:
                for ref in local.list(Path(path)):
                    count += 1
                    yield ref
        except IngestError as exc:
            _stop_if_fatal(exc, path)
            summary.failed += 1
            summary.failures.append({"object": path, "reason": exc.reason, "permanent": exc.permanent})
            print(f"failed: {path}: {exc.reason}", file=sys.stderr)
            continue
        found = found or count > 0
        if not count:
            empty.append(path)
    for path in empty if found else []:
        print(f"opsworks-trail: warning: no object under {path}", file=sys.stderr)


def _stop_if_fatal(exc: IngestError, path: str) -> None:
    bucket = path.removeprefix("s3://").partition("/")[0] if path.startswith("s3://") else None
    cause = exc.__cause__
    found = explain(cause, Where("S3", bucket=bucket)) if cause is not None else None
    if found is not None and found.code != Exit.PARTIAL:
        raise found from exc


def _need(s3: S3Source | None) -> S3Source:
    assert s3 is not None, "an s3:// path creates the S3 source"
    return s3


def _progress(enabled: bool, total: int | None, unit: str = " files") -> Any:
    """tqdm's bar on stderr when the `cli` extra installed tqdm; without it, no bar (lines still written)."""
    try:
        from tqdm import tqdm
    except ImportError:  # `pip install opsworks-trail` without [cli]: progress bars are the extra's only gift
        return _NoBar()
    return tqdm(total=total, unit=unit, file=sys.stderr, disable=None if enabled else True,
                dynamic_ncols=True, mininterval=0.5, leave=total is not None)


class _NoBar(contextlib.AbstractContextManager["_NoBar"]):
    """The part of tqdm's interface the commands use, showing nothing but the lines written above the bar."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, **values: Any) -> None:
        pass

    def write(self, line: str, file: TextIO | None = None) -> None:
        print(line, file=file or sys.stderr)

    def __exit__(self, *exc_info: object) -> None:
        return None
