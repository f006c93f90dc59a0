"""`opsworks-trail sweep`: does anything still call OpsWorks? CloudTrail Event history (the last 90 days of
management events, trail or no trail) of every enabled Region of this account, or of every account of an
organization, read for opsworks.amazonaws.com and opsworks-cm.amazonaws.com.

Each event's record takes the path a trail record takes (core.ingest.records: selection, normalize with its
redaction, the same items), so a later backfill of the trail stores nothing twice. An account or Region that
cannot be read is listed with the reason and the sweep goes on; the exit code is then 1.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from cli.common import add_table_arguments, dynamodb_client, to_json
from cli.errors import CliError, Exit
from cli.present.tables import aligned_columns
from core.event import Event
from core.ingest.history import CLIENT_CONFIG, REQUESTS_PER_SECOND, RETENTION_DAYS, Lookup, TokenBucket, error_code
from core.ingest.records import RecordIngest
from core.ingest.selection import Selection
from core.ingest.store import EventStore
from core.ingest.triggers import records_origin
from core.settings import DEFAULT_EVENT_SOURCES

EVENT_SOURCES = tuple(sorted(DEFAULT_EVENT_SOURCES))
ENABLED = ("opt-in-not-required", "opted-in")
"""describe_regions' OptInStatus of a Region the account can use."""


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("sweep", help="read CloudTrail Event history (90 days) of every account and Region "
                                 "for OpsWorks calls", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--since", default=str(RETENTION_DAYS), metavar="DAYS|YYYY-MM-DD",
                        help=f"how far back: a number of days or a date, at most {RETENTION_DAYS} days "
                             f"(default {RETENTION_DAYS})")
    parser.add_argument("--regions", default="", help="comma-separated Regions (default: every Region the account "
                                                      "has enabled, from ec2:DescribeRegions)")
    parser.add_argument("--role-name", default="",
                        help="role assumed in each account: every account organizations:ListAccounts lists, or "
                             "those of --accounts (this account is read with the current credentials)")
    parser.add_argument("--accounts", type=Path, metavar="FILE",
                        help="account ids, one a line (# comments), instead of the organization's list")
    parser.add_argument("--dry-run", action="store_true", help="read and normalize; write nothing")
    parser.add_argument("--format", choices=["table", "json", "jsonl"], default="table",
                        help="table: per account and Region; json: the summary object; jsonl: each event")
    parser.add_argument("--workers", type=int, default=8,
                        help=f"account-Regions read in parallel (each within LookupEvents' "
                             f"{REQUESTS_PER_SECOND:g} requests a second; default 8)")
    parser.add_argument("--no-progress", action="store_true", help="no progress lines on stderr")
    add_table_arguments(parser)
    parser.set_defaults(run=run)


# -- what is swept ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One account, with the boto3 session that reads it."""

    account_id: str
    session: Any


@dataclass(frozen=True)
class Skipped:
    """An account (region "*") or account-Region that could not be read, and why."""

    account_id: str
    region: str
    reason: str


@dataclass
class PairResult:
    """What one account-Region's Event history held."""

    account_id: str
    region: str
    calls: int = 0
    failed: int = 0
    written: int = 0
    last: Event | None = None
    requests: int = 0
    retries: int = 0
    events: list[Event] = field(default_factory=list, repr=False)
    problems: list[str] = field(default_factory=list)
    """Records normalize refused, events without a readable record, DynamoDB failures: named, exit 1."""

    def as_dict(self) -> dict[str, Any]:
        last: Event | dict[str, Any] = self.last or {}
        return {"account": self.account_id, "region": self.region, "calls": self.calls, "failed_calls": self.failed,
                "written": self.written, "last_call": _last_call(last) if last else None,
                "requests": self.requests, "retries": self.retries, "problems": self.problems}


def _last_call(event: Event | dict[str, Any]) -> dict[str, Any]:
    actor = event.get("actor", {})
    return {"time": event.get("event_time"), "event_name": event.get("event_name"),
            "caller": actor.get("arn") or actor.get("name") or actor.get("invoked_by"),
            "source_ip": event.get("source_ip"), "user_agent": event.get("user_agent")}


def _quiet(line: str) -> None:
    return None


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


CloudTrailFactory = Callable[[Target, str], Any]


def cloudtrail_client(target: Target, region: str) -> Any:
    """A CloudTrail client of the account in the Region; retries are core.ingest.history's."""
    return target.session.client("cloudtrail", region_name=region, config=CLIENT_CONFIG)


@dataclass
class Sweep:
    """Reads account-Regions in parallel, each within its own token bucket, into `ingest`."""

    ingest: RecordIngest
    start: datetime
    end: datetime
    cloudtrail: CloudTrailFactory = cloudtrail_client
    sleep: Callable[[float], None] = time.sleep
    say: Callable[[str], None] = _quiet
    """Progress, one line at a time (stderr)."""
    sources: tuple[str, ...] = EVENT_SOURCES
    rate: float = REQUESTS_PER_SECOND
    keep_events: bool = False
    """Keep each account-Region's events on its result (`--format jsonl`); else only counts and the last call,
    so memory does not grow with the calls found."""

    def run(self, pairs: list[tuple[Target, str]], workers: int = 8) -> tuple[list[PairResult], list[Skipped]]:
        results: list[PairResult] = []
        skipped: list[Skipped] = []
        done = 0
        lock = threading.Lock()

        def one(pair: tuple[Target, str]) -> None:
            nonlocal done
            target, region = pair
            try:
                result = self.pair(target, region)
            except (ClientError, BotoCoreError) as exc:
                with lock:
                    done += 1
                    skipped.append(Skipped(target.account_id, region, _reason(exc)))
                    self.say(f"[{done}/{len(pairs)}] {target.account_id} {region}: skipped: {_reason(exc)}")
                return
            with lock:
                done += 1
                results.append(result)
                new = "" if self.ingest.store is None else f", {result.written} new"
                self.say(f"[{done}/{len(pairs)}] {target.account_id} {region}: {result.calls} call(s){new}, "
                         f"{result.requests} request(s)")

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            list(pool.map(one, pairs))  # re-raises what no account-Region may hide
        return sorted(results, key=_place), sorted(skipped, key=_place)

    def pair(self, target: Target, region: str) -> PairResult:
        """One account-Region: both event sources, page by page within its token bucket, into the table."""
        bucket = TokenBucket(self.rate, sleep=self.sleep)
        lookup = Lookup(self.cloudtrail(target, region), bucket,
                        on_retry=lambda code, attempt, pause: self.say(
                            f"{target.account_id} {region}: {code}, retry {attempt} in {pause:.1f} s"),
                        sleep=self.sleep)
        result = PairResult(target.account_id, region)
        origin = records_origin("lookup-events", target.account_id, region)
        for source in self.sources:
            for records in _chunks(lookup.records(source, self.start, self.end), CHUNK):
                outcome = self.ingest.ingest(origin, records)
                result.written += outcome.written
                if outcome.reason:
                    result.problems.append(outcome.reason)
                result.calls += len(outcome.items)
                result.failed += sum(1 for event in outcome.items if event.get("outcome") == "failure")
                newest = max(outcome.items, key=lambda event: event["event_time"], default=None)
                if newest is not None and (result.last is None or newest["event_time"] > result.last["event_time"]):
                    result.last = newest
                if self.keep_events:
                    result.events += outcome.items
        result.problems += lookup.unreadable
        result.requests, result.retries = lookup.requests, lookup.retries
        return result


CHUNK = 500
"""Records normalized and stored together (ten pages): one BatchGetItem per 100 of them, 20 BatchWriteItems."""


def _chunks(records: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for record in records:
        chunk.append(record)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _place(item: PairResult | Skipped) -> tuple[str, str]:
    return item.account_id, item.region


def _reason(exc: BaseException) -> str:
    code = error_code(exc)
    if isinstance(exc, ClientError):
        message = exc.response.get("Error", {}).get("Message", "")
        return f"{code}: {message}" if message else code
    return f"{type(exc).__name__}: {exc}"


# -- accounts and Regions --------------------------------------------------------------------------------------


def read_accounts_file(path: Path) -> list[str]:
    """Account ids, one a line; blank lines and # comments ignored; anything else that is not 12 digits refused."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CliError(f"--accounts {path}: cannot read it ({exc.strerror})", Exit.USAGE) from exc
    ids: list[str] = []
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if not (len(text) == 12 and text.isdigit()):
            raise CliError(f"--accounts {path} line {number}: {text!r} is not a 12-digit account id", Exit.USAGE)
        ids.append(text)
    if not ids:
        raise CliError(f"--accounts {path}: no account id in it", Exit.USAGE)
    return list(dict.fromkeys(ids))


def organization_accounts(organizations: Any) -> list[str]:
    """The active accounts organizations:ListAccounts lists (run in the management or a delegated account)."""
    ids = []
    for page in organizations.get_paginator("list_accounts").paginate():
        ids += [account["Id"] for account in page["Accounts"] if account.get("Status", "ACTIVE") == "ACTIVE"]
    return ids


def targets(account_ids: list[str], me: str, base: Any, role_name: str,
            make_session: Callable[..., Any]) -> tuple[list[Target], list[Skipped]]:
    """A session per account: this one with the current credentials, the others through `role_name`."""
    sts = base.client("sts")
    found, skipped = [], []
    for account in account_ids:
        if account == me:
            found.append(Target(account, base))
            continue
        if not role_name:
            raise CliError(f"account {account} is not this account ({me}): pass --role-name NAME, the role to "
                           "assume in it", Exit.USAGE)
        partition = base.get_partition_for_region(base.region_name or "us-east-1")
        arn = f"arn:{partition}:iam::{account}:role/{role_name}"
        try:
            credentials = sts.assume_role(RoleArn=arn, RoleSessionName="opsworks-trail-sweep")["Credentials"]
        except (ClientError, BotoCoreError) as exc:
            skipped.append(Skipped(account, "*", f"cannot assume {arn}: {_reason(exc)}"))
            continue
        found.append(Target(account, make_session(
            aws_access_key_id=credentials["AccessKeyId"], aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"], region_name=base.region_name)))
    return found, skipped


def account_regions(target: Target, requested: list[str]) -> tuple[list[str], list[Skipped]]:
    """The Regions to read in the account: those it has enabled (ec2:DescribeRegions), or the requested
    ones that are enabled; a requested Region the account has not enabled is listed as skipped."""
    ec2 = target.session.client("ec2")
    try:
        listed = ec2.describe_regions(AllRegions=True)["Regions"]
    except (ClientError, BotoCoreError) as exc:
        if requested:  # read them anyway: LookupEvents answers for itself
            return requested, []
        return [], [Skipped(target.account_id, "*", f"cannot list its Regions (ec2:DescribeRegions): {_reason(exc)}")]
    enabled = sorted(r["RegionName"] for r in listed if r.get("OptInStatus", "opt-in-not-required") in ENABLED)
    if not requested:
        return enabled, []
    not_enabled = [r for r in requested if r not in enabled]
    return ([r for r in requested if r in enabled],
            [Skipped(target.account_id, r, "Region not enabled in this account") for r in not_enabled])


def since_start(text: str, now: datetime) -> datetime:
    """--since: a number of days or a date (UTC), no further back than Event history keeps."""
    try:
        start = now - timedelta(days=float(text)) if text.replace(".", "", 1).isdigit() else \
            datetime.fromisoformat(text).replace(tzinfo=UTC)
    except ValueError:
        raise CliError(f"--since {text!r}: give a number of days or a date YYYY-MM-DD", Exit.USAGE) from None
    if start < now - timedelta(days=RETENTION_DAYS, minutes=1):
        raise CliError(f"--since {text!r}: Event history keeps {RETENTION_DAYS} days; for older calls backfill the "
                       "trail bucket (opsworks-trail backfill)", Exit.USAGE)
    if start >= now:
        raise CliError(f"--since {text!r} is not in the past", Exit.USAGE)
    return start


# -- the command -------------------------------------------------------------------------------------------------


def run(args: argparse.Namespace, *, make_session: Callable[..., Any] = boto3.Session,
        cloudtrail: CloudTrailFactory = cloudtrail_client, sleep: Callable[[float], None] = time.sleep) -> int:
    now = datetime.now(UTC).replace(microsecond=0)
    start = since_start(args.since, now)
    requested = [r.strip() for r in args.regions.split(",") if r.strip()]
    say: Callable[[str], None] = _quiet if args.no_progress else _to_stderr
    store = None if args.dry_run else EventStore(dynamodb_client(args, ingest=True), args.table)
    base = make_session(region_name=args.region or None)
    if base.region_name is None:
        base = make_session(region_name="us-east-1")  # STS, Organizations and EC2's Region list answer anywhere
    me = base.client("sts").get_caller_identity()["Account"]
    if args.accounts:
        ids = read_accounts_file(args.accounts)
    elif args.role_name:
        ids = organization_accounts(base.client("organizations"))
    else:
        ids = [me]
    found, skipped = targets(ids, me, base, args.role_name, make_session)
    pairs: list[tuple[Target, str]] = []
    for target in found:
        regions, not_read = account_regions(target, requested)
        pairs += [(target, region) for region in regions]
        skipped += not_read
    say(f"sweeping {len(pairs)} account-Region(s) of {len(found)} account(s) from {start:%Y-%m-%d %H:%M} UTC")
    sweep = Sweep(RecordIngest(Selection(frozenset(EVENT_SOURCES)), store), start, now, cloudtrail=cloudtrail,
                  sleep=sleep, say=say, keep_events=args.format == "jsonl")
    results, unread = sweep.run(pairs, args.workers)
    skipped += unread
    days = round((now - start).total_seconds() / 86400)
    if args.format == "jsonl":
        for result in results:
            for event in result.events:
                print(to_json(event))
    elif args.format == "json":
        print(to_json(summary(results, skipped, len(found) + len({s.account_id for s in skipped if s.region == "*"}),
                              days, dry_run=args.dry_run), indent=2))
    else:
        for line in render(results, skipped, days, dry_run=args.dry_run):
            print(line)
    problems = [p for r in results for p in r.problems]
    return int(Exit.PARTIAL) if skipped or problems else 0


def headline(results: list[PairResult], skipped: list[Skipped], days: int) -> str:
    accounts = len({r.account_id for r in results})
    regions = len({r.region for r in results})
    called = [r for r in results if r.calls]
    if not called:
        text = f"no OpsWorks call in {accounts} account(s) x {regions} Region(s) over {days} days"
    else:
        calls, failed = sum(r.calls for r in called), sum(r.failed for r in called)
        last = max((r.last for r in called if r.last), key=lambda event: event["event_time"])
        who = _last_call(last)
        text = (f"OpsWorks is still called: {calls} call(s) ({failed} failed) in {len(called)} of {len(results)} "
                f"account-Region(s) over {days} days; last {who['event_name']} at {who['time']} by {who['caller']} "
                f"({last.get('account_id')} {last.get('region')})")
    if skipped:
        text += f"; {len(skipped)} not read (listed above)"
    return text


def render(results: list[PairResult], skipped: list[Skipped], days: int, *, dry_run: bool) -> list[str]:
    """Per account and Region with calls: calls, failed calls, the last call and its caller; then what
    was not read, and the headline."""
    lines: list[str] = []
    called = [r for r in results if r.calls]
    if called:
        rows = [[r.account_id, r.region, str(r.calls), str(r.failed), str(_last_call(r.last or {})["time"]),
                 str(_last_call(r.last or {})["event_name"]), str(_last_call(r.last or {})["caller"]),
                 "-" if dry_run else str(r.written)] for r in called]
        lines += aligned_columns(["ACCOUNT", "REGION", "CALLS", "FAILED", "LAST CALL", "ACTION", "CALLER", "NEW"], rows)
    quiet = len(results) - len(called)
    if quiet:
        lines.append(f"{quiet} account-Region(s) without an OpsWorks call")
    for skip in skipped:
        lines.append(f"not read: {skip.account_id} {skip.region}: {skip.reason}")
    for result in results:
        lines += [f"problem: {result.account_id} {result.region}: {problem}" for problem in result.problems]
    lines.append(headline(results, skipped, days))
    return lines


def summary(results: list[PairResult], skipped: list[Skipped], accounts: int, days: int, *,
            dry_run: bool) -> dict[str, Any]:
    return {"headline": headline(results, skipped, days), "days": days, "accounts": accounts,
            "account_regions": len(results), "calls": sum(r.calls for r in results),
            "failed_calls": sum(r.failed for r in results),
            "written": None if dry_run else sum(r.written for r in results),
            "results": [r.as_dict() for r in results if r.calls or r.problems],
            "skipped": [{"account": s.account_id, "region": s.region, "reason": s.reason} for s in skipped]}
