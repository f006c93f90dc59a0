"""`opsworks-trail verify s3://bucket[/prefix]`: prove from CloudTrail's digest files that every log file
delivered was ingested, and that none was altered.

    opsworks-trail verify s3://trail-bucket/ --since 30d
    opsworks-trail verify s3://trail-bucket/logs/ --account 111122223333 --region us-east-1 --format json
    opsworks-trail verify s3://copy-bucket/ --public-keys keys.json   # keys saved by
        aws cloudtrail list-public-keys --start-time 2024-01-01T00:00:00Z --output json > keys.json

Per account and Region: digests found / verified / failed, log files listed / ingested / missing /
altered / deleted, chain breaks, periods with no digest. Exits 1 on any finding, 0 when everything
listed is proven read and unaltered (an account and Region without digests is "not provable", not a
failure). Reads the digests and the ledger; re-reads log files only with --rehash.
"""

from __future__ import annotations

import argparse
import sys
from functools import cache
from pathlib import Path
from typing import Any, TextIO

import boto3

from cli.common import add_table_arguments, dynamodb_client, fail, s3_client, to_json
from cli.listing import refs_under
from cli.present.safe_text import for_terminal_lines
from cli.present.tables import aligned_columns
from core.errors import IngestError
from core.ingest.digests import BadPublicKey, parse_time
from core.ingest.proof import S3Objects
from core.ingest.publickeys import CloudTrailPublicKeys, PublicKeys, keys_from_files
from core.ingest.sources import S3Source
from core.ingest.store import EventStore
from core.read.queries import BadTime, parse_when
from core.read.verify import Verifier, VerifyReport


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
                        help="also re-read every listed log file and compare its SHA-256 now")
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
    try:
        keys: PublicKeys = (keys_from_files(args.public_keys) if args.public_keys else
                            CloudTrailPublicKeys(cache(lambda region: boto3.client("cloudtrail", region_name=region))))
    except BadPublicKey as exc:
        return fail(f"--public-keys: {exc}")
    s3 = s3_client(args)
    source = S3Source(s3)
    verifier = Verifier(list_objects=lambda name, under: refs_under(s3, name, under), fetch=S3Objects(s3).fetch,
                        keys=keys, store=EventStore(dynamodb_client(args), args.table), open=source.open)
    try:
        report = verifier.run(bucket, prefix, since=since, until=until, account=args.account, region=args.only_region,
                              rehash=args.rehash)
    except IngestError as exc:  # listing the bucket, reading a digest or asking for keys failed
        return fail(exc.reason)
    except BadPublicKey as exc:
        return fail(f"CloudTrail's public keys: {exc}")
    text = to_json(report.as_dict(), indent=2) + "\n" if args.format == "json" else for_terminal_lines(render(report))
    out.write(text)
    return 1 if report.findings else 0


def render(report: VerifyReport) -> str:
    span = f" from {report.since or 'the start'} to {report.until or 'now'}"
    lines = [f"Digests and ledger of {report.location}{span}", ""]
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
