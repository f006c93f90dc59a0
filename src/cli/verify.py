"""`opsworks-trail verify s3://bucket[/prefix]`: prove from CloudTrail's digest files that every log file
delivered was ingested, and that none was altered.

    opsworks-trail verify s3://trail-bucket/ --since 30d
    opsworks-trail verify s3://trail-bucket/logs/ --account 111122223333 --region us-east-1 --format json
    opsworks-trail verify s3://copy-bucket/ --public-keys keys.json   # keys saved by
        aws cloudtrail list-public-keys --start-time 2024-01-01T00:00:00Z --output json > keys.json

Per account and Region: digests found / verified / failed, log files listed / ingested / missing /
altered / deleted, chain breaks, periods with no digest. Exits 1 on any finding, 0 when everything
listed is proven read and unaltered (an account and Region without digests is "not provable", not a
failure).

Where the function verified the digests as they arrived (live, or handed over by a backfill), the answer
comes from the verdicts it stored: a Query per account and Region, no digest read again (deleted objects
are looked for only in the bucket). --recheck reads and checks every digest in the bucket again, with the
ledger; --rehash also re-reads the log files. With no stored verdict in the range, the bucket is read.

With --events, also re-reads the log files that held OpsWorks records, checks each against the digest's
hash, and compares the events it re-derives with the table (docs/event-proof.md): a stored event missing,
altered or unbacked is a finding naming its event id and file.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, TextIO

import boto3
from botocore.exceptions import ClientError

from cli.common import add_table_arguments, dynamodb_client, fail, s3_client, to_json
from cli.listing import refs_under
from cli.present.event_proof import render_event_proof
from cli.present.safe_text import for_terminal_lines
from cli.present.tables import aligned_columns
from core.errors import IngestError
from core.ingest.digests import BadPublicKey, parse_time
from core.ingest.proof import S3Objects
from core.ingest.publickeys import CloudTrailPublicKeys, PublicKeys, keys_from_files
from core.ingest.selection import Selection
from core.ingest.sources import S3Source
from core.ingest.store import EventStore
from core.model import ObjectRef
from core.read.event_proof import EventProof, EventProofReport, RecordingBucket
from core.read.queries import BadTime, parse_when
from core.read.verify import Verifier, VerifyReport, stored_verdicts
from core.settings import DEFAULT_EVENT_SOURCES


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("verify", help="prove every delivered log file was ingested and none altered",
                                 description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("location", metavar="s3://bucket[/prefix]")
    parser.add_argument("--since", help="digests ending at or after (ISO 8601 or 7d, 12h); default: all")
    parser.add_argument("--until", help="digests ending by this time (plus the hour that digests it)")
    parser.add_argument("--account", metavar="ID", help="one account")
    parser.add_argument("--region", dest="only_region", metavar="REGION", help="one Region")
    parser.add_argument("--public-keys", type=Path, action="append", metavar="FILE",
                        help="CloudTrail public keys saved by `aws cloudtrail list-public-keys --output json` "
                             "(repeat per Region); default: ask CloudTrail (cloudtrail:ListPublicKeys)")
    parser.add_argument("--rehash", action="store_true",
                        help="also re-read every listed log file and compare its SHA-256 now (implies --recheck)")
    parser.add_argument("--recheck", action="store_true",
                        help="read and check every digest in the bucket again, not the verdicts the function stored")
    add_events_arguments(parser)
    parser.add_argument("--format", choices=["table", "json"], default="table")
    add_table_arguments(parser, region=False)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    if not args.location.startswith("s3://") or not args.location[5:].split("/")[0]:
        return fail(f"{args.location!r} is no s3://bucket[/prefix] location")
    bucket, _, prefix = args.location.removeprefix("s3://").partition("/")
    try:
        since = parse_time(parse_when(args.since)) if args.since else None
        until = parse_time(parse_when(args.until)) if args.until else None
    except BadTime as exc:
        return fail(str(exc))
    if not (args.recheck or args.rehash or args.events or args.events_every_file):  # --events reads the files
        stored = stored_report(args, bucket, prefix, since, until)
        if stored.total("digests"):
            out.write(to_json(stored.as_dict(), indent=2) + "\n" if args.format == "json"
                      else for_terminal_lines(render(stored)))
            return 1 if stored.findings else 0
        print(f"no digest verdict stored by the function for s3://{bucket}/{prefix}: reading the bucket",
              file=sys.stderr)
    try:
        keys: PublicKeys = (keys_from_files(args.public_keys) if args.public_keys else
                            CloudTrailPublicKeys(cache(lambda region: boto3.client("cloudtrail", region_name=region))))
    except BadPublicKey as exc:
        return fail(f"--public-keys: {exc}")
    s3 = s3_client(args)
    source = S3Source(s3)
    store = EventStore(dynamodb_client(args), args.table)
    def listed(name: str, under: str) -> Iterator[ObjectRef]:
        return refs_under(s3, name, under)  # in parallel by the trail's own prefixes (cli.listing)

    bucket_seen = RecordingBucket(listed, S3Objects(s3).fetch) if args.events or args.events_every_file else None
    verifier = Verifier(list_objects=bucket_seen.list if bucket_seen else listed,
                        fetch=bucket_seen.fetch if bucket_seen else S3Objects(s3).fetch, keys=keys,
                        store=store, open=source.open)
    try:
        report = verifier.run(bucket, prefix, since=since, until=until, account=args.account, region=args.only_region,
                              rehash=args.rehash)
        prover = EventProof(store, source.open, keys, Selection(frozenset(DEFAULT_EVENT_SOURCES)),
                            every_file=args.events_every_file)
        events = prove_events(args, prover, bucket_seen, bucket, prefix, since, until) if bucket_seen else None
    except IngestError as exc:  # listing the bucket, reading a digest or asking for keys failed
        return fail(exc.reason)
    except BadPublicKey as exc:
        return fail(f"CloudTrail's public keys: {exc}")
    if args.format == "json":
        result = report.as_dict() if events is None else dict(report.as_dict(), events=events.as_dict())
        out.write(to_json(result, indent=2) + "\n")
    else:
        out.write(for_terminal_lines(render(report) + ("" if events is None else "\n" + render_event_proof(events))))
    return 1 if report.findings or (events is not None and events.findings) else 0


# -- --events: the stored events re-derived from the verified log files (core.read.event_proof) -------------

def add_events_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", action="store_true",
                        help="also re-read the log files that held OpsWorks records and prove every stored event "
                             "of the range against them (missing, altered, unbacked); the result is recorded "
                             "in the table for the report")
    parser.add_argument("--events-every-file", action="store_true",
                        help="with --events, re-read every listed log file, not only those the ledger says held "
                             "OpsWorks records (the ledger is in the table too: this catches a deleted event "
                             "whose file's count was changed with it)")


def prove_events(args: argparse.Namespace, prover: EventProof, bucket_seen: RecordingBucket, bucket: str,
                 prefix: str, since: datetime | None, until: datetime | None) -> EventProofReport:
    """Run the events check over what the verifier listed and fetched, and record its result; a table that
    refuses the record (a verifier's read-only role) is said, not a failure of the proof."""
    report = prover.run(bucket, bucket_seen, prefix, since=since, until=until, account=args.account,
                        region=args.only_region, record=False)
    try:
        prover.record(report)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("AccessDeniedException", "AccessDenied"):
            raise
        report.recorded = (f"The result was not recorded in {args.table} (access denied: the report will not "
                           "count these events as re-derived).")
    return report


def stored_report(args: argparse.Namespace, bucket: str, prefix: str, since: datetime | None,
                  until: datetime | None) -> VerifyReport:
    """The verdicts the function stored for this location and range (Queries only)."""
    return stored_verdicts(EventStore(dynamodb_client(args), args.table), bucket=bucket, prefix=prefix, since=since,
                           until=until, account=args.account, region=args.only_region)


def render(report: VerifyReport) -> str:
    span = f" from {report.since or 'the start'} to {report.until or 'now'}"
    lines = [f"Digests and ledger of {report.location}{span}"]
    if report.answered_from == "stored":
        lines.append("Answered from the verdicts the function stored as the digests arrived (no digest read "
                     "again; deleted objects are looked for with --recheck).")
    lines.append("")
    header = ("account", "region", "status", "digests found/verified/failed",
              "log files listed/ingested/missing/altered/deleted", "chain breaks", "no-digest periods",
              "not covered", "hours proven")
    rows = [(s.account, s.region, s.status, f"{s.digests}/{s.verified}/{s.failed}",
             f"{s.listed}/{s.ingested}/{s.missing}/{s.altered}/{s.deleted}"
             + (f" (+{s.pending} pending)" if s.pending else ""),
             str(s.chain_breaks), str(len(s.no_digest)), str(s.uncovered), f"{s.hours_verified:,.0f}")
            for s in report.sorted()]
    lines += aligned_columns(header, rows) if rows else ["No CloudTrail digest or log file found there."]
    for s in report.sorted():
        if s.status == "not provable":
            lines.append(f"{s.account} {s.region}: not provable: {s.log_files} log file(s) and no digest file "
                         "(log file validation off, or the digests deleted)")
        for start, end in s.no_digest:
            lines.append(f"{s.account} {s.region}: no digest from {start} to {end} "
                         "(logging or log file validation was off)")
        if s.unhashed:
            lines.append(f"{s.account} {s.region}: {s.unhashed} log file(s) ingested before the ledger kept "
                         "hashes: read, not proven unaltered (--rehash compares them now)")
    findings = report.findings
    lines += ["", f"Findings ({len(findings)}):" if findings else "No findings."]
    lines += [f"  {f}" for f in findings]
    return "\n".join(lines) + "\n"


def coverage_line(report: VerifyReport) -> str:
    """One line for the end of `make demo`: how much of the trail is proven read and unaltered."""
    streams = report.sorted()
    listed, ingested = report.total("listed"), report.total("ingested")
    state = "VERIFIED" if not report.findings else f"{len(report.findings)} FINDING(S)"
    since = min((s.first for s in streams if s.first), default="-")
    last = max((s.last for s in streams if s.last), default="-")
    return (f"Coverage {state}: {report.total('verified')}/{report.total('digests')} digests verified, "
            f"{ingested}/{listed} listed log files ingested unaltered ({report.total('missing')} missing, "
            f"{report.total('altered')} altered, {report.total('deleted')} deleted), "
            f"{report.total('chain_breaks')} chain breaks; {len(streams)} account-Regions, "
            f"{sum(s.hours_verified for s in streams):,.0f} hours proven from {since} to {last}.")
