"""`opsworks-trail backfill s3://bucket[/prefix]`: hand existing log files to the deployed function.

Lists the log files under the prefix (digests, Insights files and other non-log keys left out, by
name), keeps those whose delivery date, read from the key name (`..._YYYYMMDDTHHMMZ_...`), lies within
--since / --until (whole UTC days, inclusive; no object is read), and either

- `--queue-url`: enqueues one message per file on the ingest queue, 10 per SendMessageBatch. The body
  is the EventBridge "Object Created" event S3 itself would send (key URL-encoded), so a backfilled file
  takes exactly the path of a live one; or
- `--batch-operations`: writes an S3 Batch Operations CSV manifest (`bucket,key`, key URL-encoded as
  the manifest format requires) and starts a LambdaInvoke job, InvocationSchemaVersion 2.0, with a
  completion report of the failed tasks.

The queue path and the dry run list in parallel by the trail's own prefixes (accounts, Regions, one
prefix per day within --since / --until; cli.listing) and stream what they find: memory stays flat
whatever the count. The progress of a --queue-url run is kept in a small state file; an interrupted
run says so, and the same command with `--resume` continues it. Re-running is safe: the function skips
a file whose marker says it is ingested, so nothing is stored twice. The greatest key handed over is
printed; `--start-after KEY` leaves out every key up to it.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import re
import sys
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from cli.listing import (
    Listing,
    ListingCounts,
    ListingState,
    Parallelism,
    ResumeError,
    listing_client,
    select,
    state_path,
)
from cli.listing import delivery_day as delivery_day  # where the tests and callers found it
from core.errors import IngestError
from core.ingest.sources import S3Source
from core.ingest.triggers import eventbridge_object_created
from core.model import ObjectRef

SQS_BATCH = 10
_ACCOUNT = re.compile(r"(?:^|/)AWSLogs/(?:o-[a-z0-9]+/)?(\d{12})/")
_REGION = re.compile(r"/CloudTrail/([a-z0-9-]+)/\d{4}/")


class BackfillError(Exception):
    """The backfill stopped; the message says where to resume."""


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("backfill", help="send existing log files to the deployed function "
                                 "(through its queue or an S3 Batch Operations job)", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("location", metavar="s3://bucket[/prefix]")
    parser.add_argument("--since", type=_day, help="first delivery day kept, YYYY-MM-DD (UTC)")
    parser.add_argument("--until", type=_day, help="last delivery day kept, YYYY-MM-DD (UTC, inclusive)")
    parser.add_argument("--start-after", default="", metavar="KEY",
                        help="leave out every key up to this one (the last key a previous run printed)")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted --queue-url run of the same listing from its saved state")
    parser.add_argument("--state", type=Path, metavar="FILE",
                        help="where the listing's progress is kept (default: ~/.cache/opsworks-trail/backfill/)")
    parser.add_argument("--list-processes", type=int, metavar="N",
                        help="processes listing the bucket (default: one per core; 0: threads of this one)")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--queue-url", help="the ingest queue (stack output IngestQueueUrl)")
    target.add_argument("--batch-operations", action="store_true",
                        help="start an S3 Batch Operations job that invokes the function once per file")
    jobs = parser.add_argument_group("S3 Batch Operations (with --batch-operations)")
    jobs.add_argument("--account-id", help="the account that runs the job")
    jobs.add_argument("--role-arn", help="role Batch Operations assumes (lambda:InvokeFunction, manifest read)")
    jobs.add_argument("--function-arn", help="the ingest function's ARN")
    jobs.add_argument("--report-bucket", help="bucket for the completion report (and the manifest)")
    jobs.add_argument("--manifest-bucket", help="bucket for the manifest (default: --report-bucket)")
    jobs.add_argument("--manifest-prefix", default="opsworks-trail/backfill/",
                      help="key prefix of the manifest and report (default: opsworks-trail/backfill/)")
    parser.add_argument("--dry-run", action="store_true", help="list and count; send or start nothing")
    parser.set_defaults(run=run)


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


# -- S3 Batch Operations ---------------------------------------------------------------------------


def manifest_csv(refs: Iterable[ObjectRef]) -> bytes:
    """`bucket,key` lines, keys URL-encoded (`%20` for space, `%2B` for plus, `%2C` for a comma)."""
    return "".join(f"{ref.bucket},{quote(ref.key, safe='/')}\n" for ref in refs).encode()


@dataclass
class Job:
    job_id: str
    manifest_uri: str
    files: int
    last_key: str
    request: dict[str, Any] = field(repr=False)


def start_batch_job(s3: Any, s3control: Any, refs: list[ObjectRef], *, account_id: str, role_arn: str,
                    function_arn: str, report_bucket: str, manifest_bucket: str, prefix: str) -> Job:
    """Write the manifest, then create the job; the same manifest never starts a second job."""
    body = manifest_csv(refs)
    digest = hashlib.sha256(body).hexdigest()
    key = f"{prefix}manifest-{digest[:16]}.csv"
    try:
        put = s3.put_object(Bucket=manifest_bucket, Key=key, Body=body, ContentType="text/csv")
    except (ClientError, BotoCoreError) as exc:
        raise BackfillError(f"writing the manifest s3://{manifest_bucket}/{key} failed: {exc}") from exc
    request = {
        "AccountId": account_id,
        "ConfirmationRequired": False,
        "Operation": {"LambdaInvoke": {"FunctionArn": function_arn, "InvocationSchemaVersion": "2.0"}},
        "Manifest": {
            "Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
            "Location": {"ObjectArn": f"arn:aws:s3:::{manifest_bucket}/{key}", "ETag": put["ETag"].strip('"')},
        },
        "Report": {"Bucket": f"arn:aws:s3:::{report_bucket}", "Format": "Report_CSV_20180820", "Enabled": True,
                   "Prefix": prefix.rstrip("/"), "ReportScope": "FailedTasksOnly"},
        "Priority": 10,
        "RoleArn": role_arn,
        # Idempotent: a re-run over the same files (same manifest) returns the job already created.
        "ClientRequestToken": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{function_arn}#{digest}")),
        "Description": f"opsworks-trail backfill of {len(refs)} files",
    }
    try:
        response = s3control.create_job(**request)
    except (ClientError, BotoCoreError) as exc:
        raise BackfillError(f"CreateJob failed (manifest s3://{manifest_bucket}/{key} is written): {exc}") from exc
    return Job(response["JobId"], f"s3://{manifest_bucket}/{key}", len(refs), refs[-1].key, request)


# -- the command -----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    if not args.location.startswith("s3://"):
        raise SystemExit(f"opsworks-trail backfill: {args.location!r} is not s3://bucket[/prefix]")
    if args.since and args.until and args.since > args.until:
        raise SystemExit("opsworks-trail backfill: --since is after --until")
    if args.batch_operations:
        missing = [f"--{n.replace('_', '-')}" for n in ("account_id", "role_arn", "function_arn", "report_bucket")
                   if not getattr(args, n)]
        if missing:
            raise SystemExit(f"opsworks-trail backfill: --batch-operations needs {', '.join(missing)}")
    bucket, _, prefix = args.location.removeprefix("s3://").partition("/")
    try:
        if args.dry_run or args.queue_url:
            return _list_and_send(args, bucket, prefix)
        s3 = boto3.client("s3")
        counts = ListingCounts()
        chosen = list(select(S3Source(s3).list(bucket, prefix, args.start_after), args.since, args.until, counts))
        if not chosen:
            _report(counts, 0, "", "no file to send: no job started")
            return 0
        job = start_batch_job(s3, boto3.client("s3control"), chosen, account_id=args.account_id,
                              role_arn=args.role_arn, function_arn=args.function_arn,
                              report_bucket=args.report_bucket,
                              manifest_bucket=args.manifest_bucket or args.report_bucket,
                              prefix=args.manifest_prefix)
        _report(counts, job.files, job.last_key, f"in Batch Operations job {job.job_id} ({job.manifest_uri})")
        return 0
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
    listing = Listing(bucket, prefix, args.since, args.until, start_after=args.start_after)
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
    print(f"{files} log files {what}; listed {counts.listed} keys: {counts.not_log_files} not log files, "
          f"{counts.outside_dates} outside the dates, {counts.undated} without a date in their name",
          file=sys.stderr)
    if last_key:
        print(f"last key: {last_key}")
