"""What a backfill will cost before it starts: objects and bytes, requests, list-price dollars, hours.

The volume comes from one of two places, and the estimate says which:

- an S3 Inventory report: its data files (gzip CSV) are read whole when they are few and small, else the
  first ones are read up to a row budget and scaled by their share of the report's compressed bytes;
- a prefix sample of the trail bucket: the trail's layout (`ACCOUNT/CloudTrail[-Digest]/REGION/YYYY/MM/DD/`)
  is walked with delimiter listings, a few children taken at each level, the day prefixes in range of
  those listed whole, and each count scaled by how many siblings were not taken. A bounded number of
  calls, whatever the bucket holds.

The arithmetic (`estimate`) is pure: counts in, requests, dollars and hours out, at the list prices of
the table below (not a quote: no free tier, no discount, no tax).
"""

from __future__ import annotations

import contextlib
import csv
import math
import re
import threading
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError

from cli.backfill_jobs import Inventory, TrailSelection
from cli.errors import CliError, Exit
from core.ingest.logfile import classify_key
from core.model import Skip

# -- list prices ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prices:
    """US dollars, per unit."""

    s3_get: float
    s3_list: float
    batch_job: float
    batch_object: float
    manifest_object: float
    """Manifest generation, per object S3 lists for it."""
    lambda_request: float
    lambda_gb_second: float
    """arm64, the stack's architecture."""
    dynamodb_write: float
    dynamodb_read: float


PRICES_DATE = "2025-06"
PRICES_SOURCE = ("aws.amazon.com/s3/pricing (requests; Batch Operations: $0.25 a job, $1.00 a million objects, "
                 "manifest generation $0.015 a million objects listed), aws.amazon.com/lambda/pricing (arm64), "
                 "aws.amazon.com/dynamodb/pricing/on-demand (after the November 2024 reduction)")
_US = Prices(s3_get=0.0004 / 1000, s3_list=0.005 / 1000, batch_job=0.25, batch_object=1.00 / 1e6,
             manifest_object=0.015 / 1e6, lambda_request=0.20 / 1e6, lambda_gb_second=0.0000133334,
             dynamodb_write=0.625 / 1e6, dynamodb_read=0.125 / 1e6)
PRICES = {"us-east-1": _US, "us-east-2": _US, "us-west-2": _US}
"""List prices by Region, as of PRICES_DATE from PRICES_SOURCE; other Regions use us-east-1's, and say so."""
DEFAULT_REGION = "us-east-1"


def prices_for(region: str | None) -> tuple[Prices, str]:
    """The table's prices for the Region and the words saying whose they are."""
    if region in PRICES:
        return PRICES[region], f"{region} list prices of {PRICES_DATE}"
    return PRICES[DEFAULT_REGION], (f"{DEFAULT_REGION} list prices of {PRICES_DATE} "
                                    f"(no table for {region or 'an unset Region'})")


# -- the function's cost per object (a model, from docs/performance.md and core.ingest) ----------------------

WRITES_PER_LOG_FILE = 1
"""A log file without OpsWorks records costs one conditional PutItem (its ledger entry, under 1 KB);
the rare file with OpsWorks records adds its events (not counted: they are a few per million)."""
WRITES_PER_DIGEST = 4
"""A digest's verdict item lists the hashes of its files (a few KB: about 4 write units)."""
READS_PER_DIGEST = 2
"""A digest reads whether it was already verified, and its files' ledger entries (a batch, ~1 KB each)."""
BASE_SECONDS = 0.040
"""Per invocation: a GetObject's first byte and one DynamoDB write, from the same Region."""
SECONDS_PER_COMPRESSED_MB = 0.040
"""About 10 MB inflated per compressed MB, read at ~560 MB/s on a 512 MB function's share of a core
(1,950 MB/s a core in docs/performance.md), plus the download."""
SKIP_SECONDS = 0.005
"""An object the function skips by its name (Insights, other suffixes): no read."""


@dataclass(frozen=True)
class Volume:
    """What a backfill hands the function, and how that was counted."""

    log_files: int
    log_bytes: int
    digests: int
    digest_bytes: int
    others: int = 0
    """Objects the manifest lists that the function skips by name (Insights files, folders)."""
    method: str = ""
    list_calls: int = 0
    get_calls: int = 0

    @property
    def objects(self) -> int:
        return self.log_files + self.digests + self.others

    @property
    def bytes(self) -> int:
        return self.log_bytes + self.digest_bytes


@dataclass(frozen=True)
class Estimate:
    volume: Volume
    s3_gets: int
    s3_lists: int
    dynamodb_writes: int
    dynamodb_reads: int
    lambda_invocations: int
    lambda_gb_seconds: float
    batch_jobs: int
    batch_objects: int
    manifest_objects: int
    dollars: dict[str, float]
    hours: float
    concurrency: int
    prices_note: str

    @property
    def total_dollars(self) -> float:
        return sum(self.dollars.values())


def estimate(volume: Volume, prices: Prices, *, concurrency: int, memory_mb: int, generated: bool,
             prices_note: str = "") -> Estimate:
    """Requests, dollars and hours for a Batch Operations backfill of volume (one job)."""
    read = volume.log_files + volume.digests
    seconds = (volume.log_files * BASE_SECONDS + volume.log_bytes / 1e6 * SECONDS_PER_COMPRESSED_MB
               + volume.digests * BASE_SECONDS + volume.digest_bytes / 1e6 * SECONDS_PER_COMPRESSED_MB
               + volume.others * SKIP_SECONDS)
    gb_seconds = seconds * memory_mb / 1024
    writes = volume.log_files * WRITES_PER_LOG_FILE + volume.digests * WRITES_PER_DIGEST
    reads = volume.digests * READS_PER_DIGEST
    manifest_objects = volume.objects if generated else 0
    dollars = {
        "S3 GET": read * prices.s3_get,
        "S3 LIST": volume.list_calls * prices.s3_list,
        "Batch Operations": prices.batch_job + volume.objects * prices.batch_object
        + manifest_objects * prices.manifest_object,
        "Lambda": volume.objects * prices.lambda_request + gb_seconds * prices.lambda_gb_second,
        "DynamoDB": writes * prices.dynamodb_write + reads * prices.dynamodb_read,
    }
    return Estimate(volume, read, volume.list_calls, writes, reads, volume.objects, gb_seconds, 1, volume.objects,
                    manifest_objects, dollars, seconds / max(concurrency, 1) / 3600, concurrency, prices_note)


def render(found: Estimate) -> list[str]:
    """The estimate for people: a few lines, figures first."""
    v = found.volume
    lines = [
        f"estimate ({v.method}): {v.objects:,} objects, {v.bytes / 1e9:,.2f} GB to read: {v.log_files:,} log files "
        f"({v.log_bytes / 1e9:,.2f} GB), {v.digests:,} digests, {v.others:,} skipped by name",
        f"requests: S3 {found.s3_gets:,} GET, {found.s3_lists:,} LIST (this estimate's); DynamoDB "
        f"{found.dynamodb_writes:,} writes, {found.dynamodb_reads:,} reads; Lambda {found.lambda_invocations:,} "
        f"invocations, {found.lambda_gb_seconds:,.0f} GB-s; Batch Operations {found.batch_jobs} job, "
        f"{found.batch_objects:,} objects" + (f", {found.manifest_objects:,} listed for the manifest"
                                              if found.manifest_objects else ""),
        f"cost: ${found.total_dollars:,.2f} at {found.prices_note} ("
        + ", ".join(f"{name} ${amount:,.2f}" for name, amount in found.dollars.items()) + ")",
        f"time: {_hours(found.hours)} at a concurrency of {found.concurrency:,} (the function's time; Batch "
        "Operations adds its own preparation, minutes to hours for a large manifest)",
    ]
    return lines


def _hours(hours: float) -> str:
    return f"{hours:,.1f} h" if hours >= 1 else f"{hours * 60:,.0f} min"


# -- counting: a prefix sample of the trail's layout ---------------------------------------------------------

ACCOUNTS_TAKEN = 3
REGIONS_TAKEN = 2
DAYS_TAKEN = 4
KINDS = ("CloudTrail", "CloudTrail-Digest")
SAMPLE_THREADS = 16
"""Region folders sampled at once: their calls only wait."""
ROOT_FOLDERS = 20
"""Top-level folders looked into for `AWSLogs/` when the location is a whole bucket without it at the top."""
CHILD_PAGES = 10
"""Delimiter pages read to count the children of one prefix (10,000 accounts); more are said, not counted."""
_ACCOUNT = re.compile(r"^\d{12}$")
_ORGANIZATION = re.compile(r"^o-[a-z0-9]{10,32}$")


@dataclass
class _Walk:
    s3: Any
    bucket: str
    list_calls: int = 0
    notes: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def children(self, prefix: str) -> list[str]:
        """The next level's names under prefix (without the prefix or the trailing slash)."""
        names: list[str] = []
        token: str | None = None
        for _page in range(CHILD_PAGES):
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "Delimiter": "/"}
            if token:
                kwargs["ContinuationToken"] = token
            response = self._list(kwargs)
            names += [p["Prefix"][len(prefix):].rstrip("/") for p in response.get("CommonPrefixes", [])]
            token = response.get("NextContinuationToken") if response.get("IsTruncated") else None
            if not token:
                return names
        self.notes.append(f"more than {len(names):,} prefixes under {prefix}: counted {len(names):,}")
        return names

    def objects(self, prefix: str) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
            if token:
                kwargs["ContinuationToken"] = token
            response = self._list(kwargs)
            yield from response.get("Contents", [])
            token = response.get("NextContinuationToken") if response.get("IsTruncated") else None
            if not token:
                return

    def _list(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.list_calls += 1
        try:
            return dict(self.s3.list_objects_v2(**kwargs))
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("AccessDenied", "403"):
                raise CliError(f"access denied listing s3://{self.bucket}/{kwargs['Prefix']} for the estimate "
                               f"({code}): allow s3:ListBucket to these credentials, or pass --inventory",
                               Exit.DENIED) from exc
            if code == "NoSuchBucket":
                raise CliError(f"bucket {self.bucket} does not exist (or is in another account): check the "
                               "s3:// path", Exit.NOT_FOUND) from exc
            raise


def taken(names: list[str], count: int) -> list[str]:
    """count names spread evenly over the sorted list (first and last included), deterministic."""
    names = sorted(names)
    if len(names) <= count:
        return names
    if count == 1:
        return [names[len(names) // 2]]
    return [names[round(i * (len(names) - 1) / (count - 1))] for i in range(count)]


@dataclass
class _Tally:
    log_files: float = 0.0
    log_bytes: float = 0.0
    digests: float = 0.0
    digest_bytes: float = 0.0
    others: float = 0.0
    days_listed: int = 0
    trail_prefixes: int = 0
    within: tuple[date, date] | None = None
    """The dates a location below a Region folder names (`…/us-east-1/2024/05/`), within --since/--until."""
    folders: list[tuple[str, str, float]] = field(default_factory=list)
    """The Region folders found (prefix, kind, weight), whose days are sampled next, in parallel."""

    def add(self, other: _Tally) -> None:
        self.log_files += other.log_files
        self.log_bytes += other.log_bytes
        self.digests += other.digests
        self.digest_bytes += other.digest_bytes
        self.others += other.others
        self.days_listed += other.days_listed
        self.trail_prefixes += other.trail_prefixes


def sample_trail(s3: Any, selection: TrailSelection, *, today: date) -> Volume:
    """A prefix-sampled count of what the selection's generated manifest would hold."""
    walk = _Walk(s3, selection.bucket)
    tally = _Tally()
    since = selection.since or date(2013, 11, 1)  # CloudTrail's first log files
    until = selection.until or today
    regions = {s.split("/")[2] for s in selection.substrings}
    for prefix in selection.prefixes or ("",):
        _sample_above_accounts(walk, prefix, tally, 1.0, since, until, regions)

    if tally.within:
        since, until = tally.within

    def days_of(folder: tuple[str, str, float]) -> _Tally:
        found = _Tally()
        _sample_dates(walk, folder[0], folder[1], found, folder[2], since, until)
        return found

    with ThreadPoolExecutor(max_workers=SAMPLE_THREADS) as pool:  # each folder's calls wait on S3, not the CPU
        for found in pool.map(days_of, tally.folders):
            tally.add(found)
    if not tally.trail_prefixes:
        where = ", ".join(f"s3://{selection.bucket}/{p}" for p in selection.prefixes[:3]) or f"s3://{selection.bucket}"
        raise CliError(f"the filter selects nothing: no CloudTrail log folder (AWSLogs/[o-ID/]ACCOUNT/CloudTrail/"
                       f"REGION/) under {where}: check the bucket, prefix, --accounts and --regions", Exit.NOTHING)
    if not tally.days_listed:
        raise CliError(f"the filter selects nothing: no day folder between {since} and {until} under "
                       f"s3://{selection.bucket}/{(selection.prefixes or ('',))[0]} in the accounts and Regions "
                       "sampled: check --since and --until", Exit.NOTHING)
    method = (f"prefix-sampled: {tally.days_listed} day folders listed, {walk.list_calls} list calls, "
              "scaled to the range")
    if walk.notes:
        method += "; " + "; ".join(walk.notes)
    return Volume(round(tally.log_files), round(tally.log_bytes), round(tally.digests), round(tally.digest_bytes),
                  round(tally.others), method, walk.list_calls)


def _sample_above_accounts(walk: _Walk, prefix: str, tally: _Tally, weight: float, since: date, until: date,
                           regions: set[str], depth: int = 0) -> None:
    """Down to the accounts: through `p/`, `AWSLogs/`, `o-ID/`, whatever the prefix stops at."""
    parts = prefix.rstrip("/").split("/") if prefix else []
    kind_at = next((i for i, part in enumerate(parts) if part in KINDS), None)
    if kind_at is not None and kind_at + 1 < len(parts):  # …/CloudTrail/REGION/[YYYY/[MM/[DD/]]]
        within = _folder_dates(parts[kind_at + 2:])
        if within is None:
            return
        tally.folders.append(("/".join(parts[:kind_at + 2]) + "/", parts[kind_at], weight))
        tally.within = (max(within[0], since), min(within[1], until))
        return
    if parts and parts[-1] in KINDS:
        _sample_regions(walk, prefix, parts[-1], tally, weight, since, until, regions)
        return
    if parts and _ACCOUNT.match(parts[-1]):
        for kind in KINDS:
            _sample_regions(walk, f"{prefix}{kind}/", kind, tally, weight, since, until, regions)
        return
    if depth > 4:
        return
    names = walk.children(prefix)
    accounts = [n for n in names if _ACCOUNT.match(n)]
    if accounts:
        for account in taken(accounts, ACCOUNTS_TAKEN):
            share = weight * len(accounts) / min(len(accounts), ACCOUNTS_TAKEN)
            _sample_above_accounts(walk, f"{prefix}{account}/", tally, share, since, until, regions, depth + 1)
    above = [n for n in names if n == "AWSLogs" or _ORGANIZATION.match(n)]
    if not above and not accounts and depth == 0 and not prefix:  # a trail's own key prefix: `p/AWSLogs/`
        above = names[:ROOT_FOLDERS]
        if len(names) > ROOT_FOLDERS:
            walk.notes.append(f"only the first {ROOT_FOLDERS} of {len(names):,} top-level folders looked into")
    for name in above:
        _sample_above_accounts(walk, f"{prefix}{name}/", tally, weight, since, until, regions, depth + 1)


def _folder_dates(parts: list[str]) -> tuple[date, date] | None:
    """The days a `YYYY/MM/DD` folder (or a year or a month of it) holds; None for a path not of dates."""
    try:
        numbers = [int(p) for p in parts[:3]]
        if not numbers:
            return date.min, date.max
        if len(numbers) == 1:
            return date(numbers[0], 1, 1), date(numbers[0], 12, 31)
        if len(numbers) == 2:
            return date(numbers[0], numbers[1], 1), _month_end(numbers[0], numbers[1])
        return date(*numbers), date(*numbers)
    except ValueError:
        return None


def _sample_regions(walk: _Walk, prefix: str, kind: str, tally: _Tally, weight: float, since: date, until: date,
                    regions: set[str]) -> None:
    names = [n for n in walk.children(prefix) if not regions or n in regions]
    for region in taken(names, REGIONS_TAKEN):
        share = weight * len(names) / min(len(names), REGIONS_TAKEN)
        tally.folders.append((f"{prefix}{region}/", kind, share))


def _sample_dates(walk: _Walk, prefix: str, kind: str, tally: _Tally, weight: float, since: date,
                  until: date) -> None:
    """The days of [since, until] the folder holds: bounded by its first and last day folders in range (found
    by listing years, then the first and last months' folders), then DAYS_TAKEN days spread evenly between,
    listed whole and scaled to all the days between (an empty day counts as one)."""
    tally.trail_prefixes += 1
    years = sorted(int(n) for n in walk.children(prefix) if n.isdigit() and _overlaps((int(n),), since, until))
    if not years:
        return
    first_months = _months(walk, prefix, years[0], since, until)
    last_months = first_months if years[-1] == years[0] else _months(walk, prefix, years[-1], since, until)
    if not first_months or not last_months:
        return
    first_days = _days(walk, prefix, years[0], first_months[0], since, until)
    last_days = (first_days if (years[-1], last_months[-1]) == (years[0], first_months[0])
                 else _days(walk, prefix, years[-1], last_months[-1], since, until))
    if not first_days or not last_days:
        return
    start, end = first_days[0], last_days[-1]
    if start > end:
        return
    span = (end - start).days + 1
    days = sorted({start + timedelta(days=round(i * (span - 1) / max(DAYS_TAKEN - 1, 1)))
                   for i in range(min(DAYS_TAKEN, span))})
    for day in days:
        tally.days_listed += 1
        _count_day(walk, f"{prefix}{day.year:04d}/{day.month:02d}/{day.day:02d}/", kind, tally,
                   weight * span / len(days))


def _months(walk: _Walk, prefix: str, year: int, since: date, until: date) -> list[int]:
    return sorted(int(n) for n in walk.children(f"{prefix}{year:04d}/")
                  if n.isdigit() and _overlaps((year, int(n)), since, until))


def _days(walk: _Walk, prefix: str, year: int, month: int, since: date, until: date) -> list[date]:
    days = []
    for name in walk.children(f"{prefix}{year:04d}/{month:02d}/"):
        try:
            day = date(year, month, int(name))
        except ValueError:
            continue
        if since <= day <= until:
            days.append(day)
    return sorted(days)


def _month_end(year: int, month: int) -> date:
    return (date(year, month, 28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def _overlaps(parts: tuple[int, ...], since: date, until: date) -> bool:
    """Whether the year or year-month named by parts meets [since, until]."""
    try:
        if len(parts) == 1:
            first, last = date(parts[0], 1, 1), date(parts[0], 12, 31)
        else:
            first, last = date(parts[0], parts[1], 1), _month_end(parts[0], parts[1])
    except ValueError:
        return False
    return first <= until and last >= since


def _count_day(walk: _Walk, prefix: str, kind: str, tally: _Tally, weight: float) -> None:
    for item in walk.objects(prefix):
        key, size = str(item["Key"]), int(item.get("Size", 0))
        if not key.endswith(".json.gz"):
            continue
        if kind == "CloudTrail-Digest":
            tally.digests += weight
            tally.digest_bytes += size * weight
        elif isinstance(classify_key(key, size), Skip):
            tally.others += weight
        else:
            tally.log_files += weight
            tally.log_bytes += size * weight


# -- counting: an S3 Inventory report -----------------------------------------------------------------------

INVENTORY_ROWS_READ = 100_000
"""Rows read from the inventory's data files before the rest is scaled from them (a few MB)."""
DIGEST_SKIP = "digest file"
"""core.ingest.logfile.classify_key's reason for a digest: a name test, cheaper than parsing the key."""


def count_inventory(s3: Any, inventory: Inventory, prefix: str) -> Volume:
    """Rows of the inventory's data files: all when within the row budget, else the rows read (even part of
    one file) scaled by the compressed bytes they came from."""
    tally = _Tally()
    rows = 0
    read_bytes = 0.0
    files_read = 0
    whole = True
    outside = ""
    key_at = inventory.schema.index("Key")
    size_at = inventory.schema.index("Size") if "Size" in inventory.schema else None
    for data in inventory.files:
        if rows >= INVENTORY_ROWS_READ:
            whole = False
            break
        files_read += 1
        uri = f"s3://{inventory.destination_bucket}/{data.key}"
        try:
            body = s3.get_object(Bucket=inventory.destination_bucket, Key=data.key)["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code", "") in ("AccessDenied", "403"):
                raise CliError(f"access denied reading the inventory data file {uri} for the estimate: allow "
                               "s3:GetObject on the inventory's files to these credentials and to the job's role",
                               Exit.DENIED) from exc
            raise
        consumed = 0.0
        with contextlib.closing(body):
            for row, position in _csv_rows(body):
                if rows >= INVENTORY_ROWS_READ:
                    whole = False
                    break
                rows += 1
                consumed = position
                key = _inventory_key(row[key_at])
                size = int(row[size_at]) if size_at is not None and row[size_at].isdigit() else 0
                if prefix and not key.startswith(prefix) and not outside:
                    outside = key
                kind = classify_key(key, size)
                if isinstance(kind, Skip) and kind.reason == DIGEST_SKIP:
                    tally.digests += 1
                    tally.digest_bytes += size
                elif isinstance(kind, Skip):
                    tally.others += 1
                else:
                    tally.log_files += 1
                    tally.log_bytes += size
        read_bytes += consumed if not whole else data.size
    if outside:
        raise CliError(f"--inventory {inventory.uri} lists objects outside {prefix} (e.g. {outside}): Batch "
                       "Operations would hand them all to the function; use an inventory filtered to the trail's "
                       "prefix, or drop --inventory", Exit.USAGE)
    if whole:
        scale, method = 1.0, f"inventory: all {files_read} data files read, {rows:,} rows"
    else:
        scale = inventory.compressed_bytes / max(read_bytes, 1)
        method = (f"inventory-sampled: {rows:,} rows of {files_read} of {len(inventory.files)} data files read, "
                  f"scaled by compressed size x{scale:,.1f}")
    if size_at is None:
        method += "; no Size field in the inventory: bytes unknown (0)"
    if rows and not (tally.log_files + tally.digests):
        raise CliError(f"the filter selects nothing: --inventory {inventory.uri} lists no log file or digest "
                       f"in the {rows:,} rows read", Exit.NOTHING)
    return Volume(math.ceil(tally.log_files * scale), round(tally.log_bytes * scale), math.ceil(tally.digests * scale),
                  round(tally.digest_bytes * scale), round(tally.others * scale), method, 0, 1 + files_read)


GZIP_READ = 16 << 10


def _csv_rows(stream: Any) -> Iterator[tuple[list[str], float]]:
    """A gzip CSV stream's rows, each with the compressed bytes read up to it (interpolated within a read),
    so that a sample stopped mid-file knows the share of the file it saw."""
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
    consumed = 0
    pending = b""
    while raw := stream.read(GZIP_READ):
        text = b""
        data = raw
        while data:
            text += inflater.decompress(data)
            data = inflater.unused_data
            if inflater.eof:  # the end of one gzip member; another may follow
                inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
        lines = (pending + text).split(b"\n")
        pending = lines.pop()
        for i, line in enumerate(lines):
            yield _csv_row(line), consumed + (i + 1) / len(lines) * len(raw)
        consumed += len(raw)
    if pending.strip():
        yield _csv_row(pending), float(consumed)


def _csv_row(line: bytes) -> list[str]:
    return next(csv.reader([line.decode("utf-8")]))


def _inventory_key(field_value: str) -> str:
    """Inventory CSV keys are URL-encoded."""
    return unquote_plus(field_value)
