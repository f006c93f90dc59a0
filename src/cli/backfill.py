"""`opsworks-trail backfill s3://bucket[/prefix]`: hand existing log files to the deployed function.

Two engines:

- `--batch-operations`: an S3 Batch Operations job invokes the function once per object. The command
  lists nothing: S3 generates the manifest from the trail bucket (the trail's prefixes, `.json.gz`, created
  within --since / --until: log files and digests, so the history is verified as it is read), or reads
  the S3 Inventory report given with `--inventory`. It prints an estimate first (objects, bytes, requests,
  list-price dollars, hours); a run over THRESHOLD_DOLLARS or THRESHOLD_OBJECTS needs `--yes`.
  `--estimate` prints it and starts nothing; `--status JOB_ID` (or `--watch` after a start) follows the job
  (cli.backfill_jobs, cli.backfill_estimate, cli.backfill_status).
- `--queue-url`: lists the log files and digest files under the prefix (Insights files and other keys
  left out, by name), keeps those whose delivery date, read from the key name
  (`..._YYYYMMDDTHHMMZ_...`), lies within --since / --until (whole UTC days, inclusive; a digest up to
  the day after, as the last hour's digest comes after midnight; no object is read), and enqueues one
  message per file on the ingest queue, 10 per SendMessageBatch. The function verifies each digest as it
  reads it, in any order. The body is the EventBridge "Object Created" event S3 itself would send (key
  URL-encoded), so a backfilled file takes exactly the path of a live one. The queue path and the dry
  run list in parallel by the trail's own prefixes (accounts, Regions, one prefix per day within --since
  / --until; cli.listing) and stream what they find: memory stays flat whatever the count. The progress
  of a --queue-url run is kept in a small state file; an interrupted run says so, and the same command
  with `--resume` continues it. The greatest key handed over is printed; `--start-after KEY` leaves out
  every key up to it.

Re-running is safe either way: the function skips a file whose ledger entry says it is ingested and a
digest already verified, so nothing is stored twice.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

from cli import backfill_estimate, backfill_jobs, backfill_status
from cli.errors import CliError, Exit, Where, explain
from cli.listing import (
    Listing,
    ListingCounts,
    ListingState,
    Parallelism,
    ResumeError,
    listing_client,
    state_path,
)
from cli.listing import delivery_day as delivery_day  # where the tests and callers found them
from cli.listing import select as select
from core.errors import IngestError
from core.ingest.triggers import eventbridge_object_created
from core.model import ObjectRef

SQS_BATCH = 10
_ACCOUNT = re.compile(r"(?:^|/)AWSLogs/(?:o-[a-z0-9]+/)?(\d{12})/")
_REGION = re.compile(r"/CloudTrail/([a-z0-9-]+)/\d{4}/")
THRESHOLD_DOLLARS = 50.0
THRESHOLD_OBJECTS = 10_000_000
"""A Batch Operations run estimated over either starts only with --yes."""
DEFAULT_CONCURRENCY = 1000
"""An account's default concurrency limit: the function's ceiling when it reserves none."""
DEFAULT_MEMORY_MB = 512
"""The stack's MemorySize (template.yaml Globals)."""


class BackfillError(Exception):
    """The backfill stopped; the message says where to resume."""


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("backfill", help="send existing log files to the deployed function "
                                 "(through an S3 Batch Operations job or its queue)", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("location", nargs="?", metavar="s3://bucket[/prefix]",
                        help="the trail bucket and prefix, e.g. s3://trail-bucket/AWSLogs/ (not with --status)")
    parser.add_argument("--since", type=_day, help="first delivery day kept, YYYY-MM-DD (UTC)")
    parser.add_argument("--until", type=_day, help="last delivery day kept, YYYY-MM-DD (UTC, inclusive)")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--batch-operations", action="store_true",
                        help="start an S3 Batch Operations job that invokes the function once per object")
    target.add_argument("--estimate", action="store_true",
                        help="print what a --batch-operations run would read, request, cost and take; start nothing")
    target.add_argument("--status", metavar="JOB_ID", help="a Batch Operations job's progress and the function's rates")
    target.add_argument("--queue-url", help="enqueue each log file on the ingest queue (stack output IngestQueueUrl)")
    jobs = parser.add_argument_group("S3 Batch Operations (--batch-operations, --estimate, --status)")
    jobs.add_argument("--inventory", metavar="s3://…/manifest.json",
                      help="an S3 Inventory report (CSV) of the trail bucket, instead of a manifest S3 generates")
    jobs.add_argument("--accounts", type=_names, default=(), metavar="ID,…",
                      help="only these accounts' folders (the location ends at AWSLogs/ or AWSLogs/o-ORGID/)")
    jobs.add_argument("--regions", type=_names, default=(), metavar="REGION,…", help="only these Regions' folders")
    jobs.add_argument("--account-id", help="the account that runs the job (stack output AccountId)")
    jobs.add_argument("--role-arn", help="role Batch Operations assumes (stack output BatchOperationsRoleArn)")
    jobs.add_argument("--function-arn", help="the ingest function's ARN (stack output IngestFunctionArn)")
    jobs.add_argument("--report-bucket", help="bucket of the completion report and the generated manifest "
                      "(stack output BackfillBucketName)")
    jobs.add_argument("--manifest-prefix", default="opsworks-trail/backfill/",
                      help="key prefix of the report and generated manifest (default: opsworks-trail/backfill/)")
    jobs.add_argument("--region", default=os.environ.get("AWS_REGION") or None,
                      help="the Region of the job and the function (default: $AWS_REGION, then the profile's)")
    jobs.add_argument("--yes", action="store_true",
                      help=f"start a job estimated over ${THRESHOLD_DOLLARS:,.0f} or {THRESHOLD_OBJECTS:,} objects")
    jobs.add_argument("--again", action="store_true",
                      help="start a new job even if the same request started one (after a failed or cancelled job)")
    jobs.add_argument("--no-check-role", dest="check_role", action="store_false",
                      help="skip checking the role with IAM's policy simulator before the start")
    jobs.add_argument("--concurrency", type=int, help="the function's concurrency for the hours estimate (default: "
                      f"its reserved concurrency, else {DEFAULT_CONCURRENCY})")
    jobs.add_argument("--memory-mb", type=int, help=f"the function's memory (default: its own, else "
                      f"{DEFAULT_MEMORY_MB})")
    jobs.add_argument("--watch", action="store_true", help="after the start (or with --status), follow the job "
                      "until it ends")
    jobs.add_argument("--interval", type=float, default=60.0, help="seconds between --watch updates (default: 60)")
    jobs.add_argument("--dlq-url", help="the dead-letter queue to show (stack output DeadLetterQueueUrl)")
    queue = parser.add_argument_group("the queue (--queue-url, --dry-run)")
    queue.add_argument("--start-after", default="", metavar="KEY",
                       help="leave out every key up to this one (the last key a previous run printed)")
    queue.add_argument("--resume", action="store_true",
                       help="continue an interrupted --queue-url run of the same listing from its saved state")
    queue.add_argument("--state", type=Path, metavar="FILE",
                       help="where the listing's progress is kept (default: ~/.cache/opsworks-trail/backfill/)")
    queue.add_argument("--list-processes", type=int, metavar="N",
                       help="processes listing the bucket (default: one per core; 0: threads of this one)")
    parser.add_argument("--dry-run", action="store_true", help="the queue: list and count, send nothing; Batch "
                        "Operations: print the CreateJob request, start nothing")
    parser.set_defaults(run=run)


def _names(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError("give one name or more, comma-separated")
    return names


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


# -- the queue -------------------------------------------------------------------------------------


def message_body(ref: ObjectRef) -> str:
    """The EventBridge Object Created event for a file, with the account and region its key names."""
    account = _ACCOUNT.search(ref.key)
    region = _REGION.search(ref.key)
    event = eventbridge_object_created(ref, account=account.group(1) if account else "000000000000",
                                       region=region.group(1) if region else "us-east-1",
                                       time=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    return json.dumps(event, separators=(",", ":"))


@dataclass
class Sent:
    files: int = 0
    last_key: str = ""


def enqueue(sqs: Any, queue_url: str, refs: Iterable[ObjectRef], sent: Sent) -> Sent:
    """SendMessageBatch in tens; `sent.last_key` is always a key up to which everything was accepted."""
    batch: list[ObjectRef] = []
    for ref in refs:
        batch.append(ref)
        if len(batch) == SQS_BATCH:
            _send(sqs, queue_url, batch, sent)
            batch = []
    if batch:
        _send(sqs, queue_url, batch, sent)
    return sent


def _send(sqs: Any, queue_url: str, batch: list[ObjectRef], sent: Sent) -> None:
    entries = [{"Id": str(i), "MessageBody": message_body(ref)} for i, ref in enumerate(batch)]
    for _attempt in range(3):
        try:
            response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        except (ClientError, BotoCoreError) as exc:
            raise BackfillError(f"SendMessageBatch to {queue_url} failed: {exc}{_resume(sent)}") from exc
        failed = {f["Id"]: f for f in response.get("Failed", [])}
        if not failed:
            break
        if any(f.get("SenderFault") for f in failed.values()):
            first = next(iter(failed.values()))
            raise BackfillError(f"the queue refused a message: {first.get('Code')}: {first.get('Message')}"
                                f"{_resume(sent)}")
        entries = [e for e in entries if e["Id"] in failed]  # throttled or internal: send those again
    else:
        raise BackfillError(f"{len(entries)} messages still refused after 3 attempts{_resume(sent)}")
    sent.files += len(batch)
    sent.last_key = batch[-1].key


def _resume(sent: Sent) -> str:
    return f"; {sent.files} files were sent before" if sent.files else "; nothing was sent"



def run_queue(args: argparse.Namespace, bucket: str, prefix: str) -> int:
    """The queue path and its dry run (cli.listing lists); one line for what stops it."""
    try:
        return _list_and_send(args, bucket, prefix)
    except IngestError as exc:
        print(f"opsworks-trail backfill: listing {args.location} failed: {exc.reason}", file=sys.stderr)
        return 1
    except BackfillError as exc:
        print(f"opsworks-trail backfill: {exc}", file=sys.stderr)
        return 1
    except ResumeError as exc:
        print(f"opsworks-trail backfill: --resume: {exc}", file=sys.stderr)
        return 1


def _list_and_send(args: argparse.Namespace, bucket: str, prefix: str) -> int:
    """The queue path and the dry run: list in parallel by the trail's prefixes (cli.listing), hand each
    chunk over whole (sent, or counted), and keep the progress so an interrupted run resumes."""
    listing = Listing(bucket, prefix, args.since, args.until, digests=True, start_after=args.start_after)
    path = args.state or state_path(listing, "backfill")
    state = ListingState.load(path, listing.plan_id) if args.resume else ListingState(plan_id=listing.plan_id)
    parallelism = (Parallelism(args.list_processes) if args.list_processes is not None
                   else Parallelism.for_machine())
    region = getattr(args, "region", None)
    sqs = None if args.dry_run else boto3.client("sqs")
    counts, sent, greatest = ListingCounts(), Sent(), ""
    save = None if args.dry_run else state.save_to(path)
    chunks = listing.chunks(listing_client(region), listing_client(region), parallelism=parallelism, state=state,
                            save=save)
    try:
        with contextlib.closing(chunks):
            for chunk in chunks:
                counts.add(chunk.counts)
                if chunk.entries:
                    greatest = max(greatest, chunk.entries[-1][0])
                    if sqs is None:
                        sent.files += len(chunk.entries)
                    else:
                        enqueue(sqs, args.queue_url, chunk.refs(), sent)
    except (IngestError, BackfillError, KeyboardInterrupt):
        if sqs is not None:
            print(f"opsworks-trail backfill: stopped; {sent.files} files sent. Resume with the same command and "
                  f"--resume (state: {path})", file=sys.stderr)
        raise
    if sqs is None:
        _report(counts, sent.files, greatest, "would be sent (dry run)")
    else:
        path.unlink(missing_ok=True)
        _report(counts, sent.files, greatest, f"enqueued on {args.queue_url}")
    return 0


def _report(counts: ListingCounts, files: int, last_key: str, what: str) -> None:
    print(f"{files} files {what} ({files - counts.digests} log files, {counts.digests} digests); listed "
          f"{counts.listed} keys: {counts.not_log_files} neither log files nor digests, "
          f"{counts.outside_dates} outside the dates, {counts.undated} without a date in their name",
          file=sys.stderr)
    if last_key:
        print(f"last key: {last_key}")


# -- S3 Batch Operations ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Clients:
    """The AWS clients a Batch Operations run uses, made once (tests pass stubbed ones)."""

    s3: Any
    s3control: Any
    iam: Any
    lambda_: Any
    cloudwatch: Any
    sqs: Any
    sts: Any


def make_clients(region: str | None) -> Clients:
    try:
        return Clients(*(boto3.client(name, region_name=region)
                         for name in ("s3", "s3control", "iam", "lambda", "cloudwatch", "sqs", "sts")))
    except NoRegionError as exc:
        found = explain(exc, Where("S3 Batch Operations"))
        assert found is not None
        raise found from exc


def run(args: argparse.Namespace) -> int:
    if not (args.batch_operations or args.estimate or args.status or args.queue_url):
        raise CliError("backfill: say how: --batch-operations (or --estimate first), --status JOB_ID or "
                       "--queue-url URL", Exit.USAGE)
    if args.status:
        return run_status(args, make_clients(args.region))
    if not args.location or not args.location.startswith("s3://"):
        raise CliError(f"backfill: {args.location!r} is not s3://bucket[/prefix]", Exit.USAGE)
    if args.since and args.until and args.since > args.until:
        raise CliError("backfill: --since is after --until", Exit.USAGE)
    bucket, _, prefix = args.location.removeprefix("s3://").partition("/")
    if args.queue_url:
        return run_queue(args, bucket, prefix)
    return run_batch_operations(args, bucket, prefix, make_clients(args.region))


def _target(args: argparse.Namespace, *, needed: bool) -> backfill_jobs.JobTarget | None:
    names = ("account_id", "role_arn", "function_arn", "report_bucket")
    missing = [f"--{n.replace('_', '-')}" for n in names if not getattr(args, n)]
    if missing and needed:
        raise CliError(f"backfill: --batch-operations needs {', '.join(missing)} (the stack's outputs: "
                       "BackfillWithBatchOperationsCommand has them all)", Exit.USAGE)
    if missing:
        return None
    prefix = args.manifest_prefix if args.manifest_prefix.endswith("/") else args.manifest_prefix + "/"
    return backfill_jobs.JobTarget(args.account_id, args.role_arn, args.function_arn, args.report_bucket, prefix)


def run_batch_operations(args: argparse.Namespace, bucket: str, prefix: str, clients: Clients,
                         *, today: date | None = None, sleep: Callable[[float], None] = time.sleep) -> int:
    """Estimate, then (unless --estimate) check and start the job; nothing is listed but the estimate's sample."""
    if args.start_after:
        raise CliError("backfill: --start-after is the queue path's; a Batch Operations job is re-run whole (the "
                       "function skips what it has ingested) or narrowed with --since/--accounts/--regions",
                       Exit.USAGE)
    target = _target(args, needed=args.batch_operations)
    if target is not None:
        backfill_jobs.check_same_region(target.function_arn, clients.s3control.meta.region_name)
    inventory = None
    selection = None
    if args.inventory:
        if args.since or args.until or args.accounts or args.regions:
            raise CliError("backfill: an inventory is handed over whole (S3 cannot filter it by date, account or "
                           "Region): drop --since/--until/--accounts/--regions, or drop --inventory and let S3 "
                           "generate the manifest", Exit.USAGE)
        inventory = backfill_jobs.read_inventory(clients.s3, args.inventory, bucket)
        volume = backfill_estimate.count_inventory(clients.s3, inventory, prefix)
    else:
        selection = backfill_jobs.trail_selection(bucket, prefix, accounts=args.accounts, regions=args.regions,
                                                  since=args.since, until=args.until)
        volume = backfill_estimate.sample_trail(clients.s3, selection, today=today or datetime.now(UTC).date())
    concurrency, memory_mb, limits = function_limits(clients.lambda_, args)
    prices, note = backfill_estimate.prices_for(clients.s3control.meta.region_name)
    found = backfill_estimate.estimate(volume, prices, concurrency=concurrency, memory_mb=memory_mb,
                                       generated=inventory is None, prices_note=note)
    for line in backfill_estimate.render(found):
        print(line)
    print(f"  ({limits})")
    over = found.total_dollars > THRESHOLD_DOLLARS or volume.objects > THRESHOLD_OBJECTS
    if args.estimate:
        if over:
            print(f"over the threshold (${THRESHOLD_DOLLARS:,.0f} or {THRESHOLD_OBJECTS:,} objects): "
                  "--batch-operations will ask for --yes")
        return 0
    assert target is not None
    if over and not args.yes:
        raise CliError(f"backfill: estimated ${found.total_dollars:,.2f} for {volume.objects:,} objects, over the "
                       f"threshold (${THRESHOLD_DOLLARS:,.0f} or {THRESHOLD_OBJECTS:,} objects): run again with "
                       "--yes to start it (nothing started)", Exit.USAGE)
    if args.check_role:
        unchecked = backfill_jobs.check_role(clients.iam, target.role_arn, backfill_jobs.role_needs(
            target, source_bucket=bucket if inventory is None else None, inventory=inventory))
        if unchecked:
            print(f"note: {unchecked}", file=sys.stderr)
    again = f"#{time.time_ns()}" if args.again else ""
    if inventory is not None:
        request = backfill_jobs.inventory_request(target, inventory, again=again)
    else:
        assert selection is not None
        request = backfill_jobs.generated_manifest_request(target, selection, again=again)
    if args.dry_run:
        print("the CreateJob request (--dry-run: not sent):")
        print(json.dumps(request, default=_json_value, indent=2))
        return 0
    job_id = backfill_jobs.create_job(clients.s3control, request)
    print(f"job {job_id} started: reports under s3://{target.report_bucket}/{target.prefix}job-{job_id}/")
    print(f"watch it: opsworks-trail backfill --status {job_id} --account-id {target.account_id} "
          f"--region {clients.s3control.meta.region_name}")
    if args.watch:
        return watch(args, clients, target.account_id, job_id, sleep=sleep)
    return 0


def _json_value(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def function_limits(lambda_: Any, args: argparse.Namespace) -> tuple[int, int, str]:
    """Concurrency and memory for the estimate: given, else the function's own, else the defaults; and whence."""
    concurrency, memory = args.concurrency, args.memory_mb
    said = []
    if (concurrency is None or memory is None) and args.function_arn:
        try:
            if concurrency is None:
                reserved = lambda_.get_function_concurrency(FunctionName=args.function_arn)
                if "ReservedConcurrentExecutions" in reserved:
                    concurrency = int(reserved["ReservedConcurrentExecutions"])
                    said.append("concurrency: the function's reserved concurrency")
            if memory is None:
                memory = int(lambda_.get_function_configuration(FunctionName=args.function_arn)["MemorySize"])
                said.append("memory: the function's")
        except (ClientError, BotoCoreError) as exc:
            said.append(f"the function's settings unread ({type(exc).__name__})")
    if concurrency is None:
        concurrency = DEFAULT_CONCURRENCY
        said.append(f"concurrency: {DEFAULT_CONCURRENCY}, the account default (pass --concurrency)")
    if memory is None:
        memory = DEFAULT_MEMORY_MB
        said.append(f"memory: {DEFAULT_MEMORY_MB} MB, the stack's")
    return concurrency, memory, "; ".join(said) or "concurrency and memory as given"


def _account_id(args: argparse.Namespace, clients: Clients) -> str:
    if args.account_id:
        return str(args.account_id)
    return str(clients.sts.get_caller_identity()["Account"])


def run_status(args: argparse.Namespace, clients: Clients, *, sleep: Callable[[float], None] = time.sleep) -> int:
    return watch(args, clients, _account_id(args, clients), args.status, sleep=sleep, once=not args.watch)


def watch(args: argparse.Namespace, clients: Clients, account_id: str, job_id: str, *,
          sleep: Callable[[float], None], once: bool = False) -> int:
    """The job's progress, the function's rates and the dead letters; again every --interval until it ends."""
    while True:
        job = backfill_jobs.describe_job(clients.s3control, account_id, job_id)
        rates = backfill_status.function_rates(clients.cloudwatch, datetime.now(UTC))
        depth = backfill_status.dead_letter_depth(clients.sqs, args.dlq_url) if args.dlq_url else None
        for line in backfill_status.render(job, rates, depth):
            print(line, flush=True)
        if once:
            return int(Exit.PARTIAL) if job.status == "Failed" else 0
        if job.status in backfill_status.FINAL_STATES:
            return int(Exit.PARTIAL) if job.status != "Complete" or job.failed else 0
        sleep(args.interval)

