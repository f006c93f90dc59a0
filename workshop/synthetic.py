"""Realistic, deterministic sample data: a CloudTrail bucket on disk and large trail files.

Nothing here talks to AWS. :func:`write_sample_bucket` writes a local folder laid out exactly as a
trail writes its S3 bucket (log files, digest files, an Insights file, AWS Config's writability probe,
keys with a space and a ``+`` under a custom prefix) and returns a :class:`SampleManifest` that says
what a correct pipeline must find in it: which keys are log files, which are skipped and why, every
OpsWorks / OpsWorks CM event with the resources it names, and every secret value planted in the raw
records (all start with :data:`SECRET_MARKER`, so a test can assert none reaches a stored item or a log).

:func:`write_large_trail_file` streams one big ``{"Records":[...]}`` ``.json.gz`` in bounded memory
for benchmarks. Both are deterministic for a given seed: same seed, same bytes.

Command line::

    python -m workshop.synthetic bucket DIR [--seed N] [--files N] [--org] [--manifest PATH]
    python -m workshop.synthetic large FILE [--mb 64] [--opsworks-fraction 0.01] [--seed N]

What the records say (people and roles, other services' calls, the OpsWorks stories) is plain Python
in ``workshop/sample_data/`` (its ``__init__`` says which file holds what); this module lays out the
bucket and writes the manifest. :func:`upload_to_s3` takes a boto3 S3 client from the caller.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any

from workshop.sample_data import new_maker
from workshop.sample_data.calls import Session
from workshop.sample_data.cast import opsworks_sessions
from workshop.sample_data.docs_examples import OPSWORKS
from workshop.sample_data.opsworks_cm import OPSWORKS_CM, server
from workshop.sample_data.opsworks_stack import stack
from workshop.sample_data.records import SECRET_MARKER, RecordMaker, fmt
from workshop.sample_data.services import insight, lookalike, noise
from workshop.sample_data.trail import CUSTOM_PREFIX, REGIONS, RESOURCE_KEYS
from workshop.sample_digests import demo_signer, write_signed_digests

__all__ = [
    "DEFAULT_ACCOUNTS",
    "DEFAULT_START",
    "LOOKALIKE_MARKER",
    "OPSWORKS_SOURCES",
    "RESOURCE_KEYS",
    "SECRET_MARKER",
    "ExpectedEvent",
    "LargeFileStats",
    "PlantedSecret",
    "SampleManifest",
    "load_manifest",
    "main",
    "resources_of",
    "upload_to_s3",
    "write_large_trail_file",
    "write_manifest",
    "write_sample_bucket",
]

Json = dict[str, Any]

#: The string that negative look-alike records carry outside ``eventSource``.
LOOKALIKE_MARKER = OPSWORKS
OPSWORKS_SOURCES = (OPSWORKS, OPSWORKS_CM)
DEFAULT_ACCOUNTS = ("111122223333", "444455556666")
#: Spans the OpsWorks Stacks end of life (2024-05-26), so events exist on both sides of it.
DEFAULT_START = datetime(2024, 5, 1, tzinfo=UTC)


# --------------------------------------------------------------------------------------------------
# Manifest types
# --------------------------------------------------------------------------------------------------


@dataclass
class ExpectedEvent:
    """One OpsWorks / OpsWorks CM event a correct pipeline must store exactly once."""

    event_id: str
    event_source: str
    event_name: str
    event_time: str
    account_id: str
    region: str
    keys: list[str]
    error_code: str | None
    read_only: bool | None
    resources: list[tuple[str, str]]


@dataclass
class PlantedSecret:
    """A secret value in a raw OpsWorks record, with where it sits (dotted path, list indexes as numbers)."""

    value: str
    event_id: str
    path: str


@dataclass
class SampleManifest:
    """What :func:`write_sample_bucket` wrote and what a pipeline should make of it.

    Keys are S3 object keys relative to the bucket root (not URL-encoded).
    ``skipped_keys`` maps each non-log key to its reason class: ``digest``, ``insight``,
    ``not-a-log-file`` or ``folder``. ``folder_keys`` exist only in S3 (zero-byte ``.../`` objects, see
    :func:`upload_to_s3`). ``opsworks_records`` counts OpsWorks records across all log files (a
    redelivered event counts twice); ``opsworks_events`` counts unique event ids.
    """

    seed: int
    organization_id: str | None
    accounts: list[str]
    log_keys: list[str]
    skipped_keys: dict[str, str]
    folder_keys: list[str]
    expected: dict[str, ExpectedEvent]
    secrets: list[PlantedSecret]
    duplicate_event_ids: list[str]
    lookalike_event_ids: list[str]
    files: int
    records: int
    opsworks_records: int
    opsworks_events: int

    bucket: str = "trail-bucket"
    """The bucket the digests name."""
    digest_metadata: dict[str, dict[str, str]] = field(default_factory=dict)
    """Each digest's S3 user metadata (its signature): set it when uploading (upload_to_s3)."""
    public_keys: dict[str, Any] = field(default_factory=dict)
    """The demo key that signed the digests, as `aws cloudtrail list-public-keys --output json` saves it."""

    def keys_with_opsworks(self) -> list[str]:
        """Log file keys holding at least one OpsWorks record, sorted."""
        return sorted({k for e in self.expected.values() for k in e.keys})


@dataclass
class LargeFileStats:
    """What :func:`write_large_trail_file` wrote."""

    records: int
    opsworks_records: int
    uncompressed_bytes: int
    compressed_bytes: int


def write_manifest(manifest: SampleManifest, path: Path) -> None:
    """Write the manifest as indented JSON (resources as ``[type, id]`` pairs)."""
    path.write_text(json.dumps(dataclasses.asdict(manifest), indent=1, sort_keys=True) + "\n")


def load_manifest(path: Path) -> SampleManifest:
    """Read a manifest written by :func:`write_manifest`."""
    raw = json.loads(path.read_text())
    raw["expected"] = {
        k: ExpectedEvent(**{**v, "resources": [(t, i) for t, i in v["resources"]]})
        for k, v in raw["expected"].items()
    }
    raw["secrets"] = [PlantedSecret(**s) for s in raw["secrets"]]
    return SampleManifest(**raw)


def resources_of(record: Json) -> list[tuple[str, str]]:
    """Sorted unique ``(type, id)`` pairs named by a record's request and response (see RESOURCE_KEYS)."""
    found: set[tuple[str, str]] = set()

    def walk(node: Any) -> None:
        if not isinstance(node, dict):
            return
        for key, value in node.items():
            kind = RESOURCE_KEYS.get(key)
            if kind is not None:
                for v in value if isinstance(value, list) else [value]:
                    if isinstance(v, str) and v:
                        found.add((kind, v))
            elif isinstance(value, dict):
                walk(value)

    walk(record.get("requestParameters"))
    walk(record.get("responseElements"))
    return sorted(found)


def _secrets_in(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, str) and SECRET_MARKER in node:
        yield path, node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _secrets_in(v, f"{path}.{k}" if path else k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _secrets_in(v, f"{path}.{i}")


# --------------------------------------------------------------------------------------------------
# The bucket
# --------------------------------------------------------------------------------------------------


def _floor5(ts: datetime) -> datetime:
    return ts.replace(minute=ts.minute - ts.minute % 5, second=0, microsecond=0)


def _account_prefix(account: str, org: str | None) -> str:
    return f"AWSLogs/{org}/{account}/" if org else f"AWSLogs/{account}/"


def _log_key(
    maker: RecordMaker, account: str, region: str, delivered: datetime, org: str | None, prefix: str = ""
) -> str:
    return (
        f"{prefix}{_account_prefix(account, org)}CloudTrail/{region}/{delivered:%Y/%m/%d}/"
        f"{account}_CloudTrail_{region}_{delivered:%Y%m%dT%H%MZ}_{maker.token(16)}.json.gz"
    )


def _dump(records: list[Json]) -> bytes:
    body = json.dumps({"Records": records}, separators=(",", ":"))
    return gzip.compress(body.encode(), compresslevel=6, mtime=0)


def write_sample_bucket(
    root: Path,
    *,
    seed: int = 7,
    files: int = 300,
    accounts: Sequence[str] = DEFAULT_ACCOUNTS,
    organization_id: str | None = None,
    start: datetime = DEFAULT_START,
    days: int = 30,
    bucket: str = "trail-bucket",
) -> SampleManifest:
    """Write a trail bucket's worth of objects under ``root`` and say what is in it.

    ``files`` is the number of CloudTrail log files (OpsWorks-bearing files included; about 5-10% of
    300). The OpsWorks story grows with ``files`` (two Stacks and two CM stories per 300 files), so
    ``files`` must leave room for it: at least 40. ``organization_id`` (``o-...``) lays keys out as an
    organization trail does. Existing files under ``root`` are left alone; use an empty folder.
    ``bucket`` is the bucket the digests say they and the log files were delivered to.
    """
    if days < 1 or not accounts:
        raise ValueError("days must be >= 1 and accounts not empty")
    rng = Random(seed)
    maker = new_maker(rng, accounts, start, days)
    org = organization_id
    acct = list(accounts)

    # 1. the OpsWorks stories (sample_data/cast.py), one session per log file
    sessions: list[Session] = opsworks_sessions(maker, acct, copies=max(1, round(files / 300)))
    min_files = len(sessions) + 2 + 10
    if files < min_files:
        raise ValueError(f"files={files} leaves no room for the OpsWorks story: use at least {min_files}")

    # 2. log files: (key, records) -- OpsWorks sessions mixed with other services
    log_files: list[tuple[str, list[Json]]] = []
    lookalike_ids: list[str] = []

    def fill(account: str, region: str, delivered: datetime, n: int) -> list[Json]:
        out = []
        for _ in range(n):
            ts = delivered - timedelta(seconds=rng.randint(30, 900))
            out.append(noise(maker, account, region, ts))
        return out

    def filler_count() -> int:
        return rng.choice((1, 2, 3, 5, 8, 12, 18, 25, 35, 50))

    for i, s in enumerate(sessions):
        delivered = _floor5(max(_parse_time(r["eventTime"]) for r in s.records)) + timedelta(minutes=5)
        prefix = CUSTOM_PREFIX if i == 3 else ""  # one OpsWorks file under the prefix with ' ' and '+'
        records = s.records + s.lookalikes + fill(s.account, s.region, delivered, filler_count())
        lookalike_ids += [r["eventID"] for r in s.lookalikes]
        log_files.append((_log_key(maker, s.account, s.region, delivered, org, prefix), records))

    # redelivery: one whole session again in a later file, and one single event
    dup_ids: list[str] = []
    for src_idx, subset in ((3, None), (1, 0)):
        recs0 = log_files[src_idx][1]
        ops = [r for r in recs0 if r.get("eventSource") in OPSWORKS_SOURCES]
        ops = ops if subset is None else ops[subset : subset + 1]
        s = sessions[src_idx]
        delivered = _floor5(max(_parse_time(r["eventTime"]) for r in ops)) + timedelta(minutes=15)
        records = [json.loads(json.dumps(r)) for r in ops] + fill(
            s.account, s.region, delivered, filler_count()
        )
        dup_ids += [r["eventID"] for r in ops]
        log_files.append((_log_key(maker, s.account, s.region, delivered, org), records))

    span = int((maker.end - maker.start).total_seconds())
    n_filler = files - len(log_files)
    for i in range(n_filler):
        account = rng.choice(acct)
        region = rng.choice(REGIONS)
        delivered = _floor5(maker.start + timedelta(seconds=rng.randrange(span)))
        records = fill(account, region, delivered, filler_count())
        if rng.random() < 0.04:
            la = lookalike(maker, account, region, delivered - timedelta(seconds=rng.randint(30, 600)))
            records.append(la)
            lookalike_ids.append(la["eventID"])
        prefix = CUSTOM_PREFIX if i < 2 else ""
        log_files.append((_log_key(maker, account, region, delivered, org, prefix), records))

    # 3. write them
    root.mkdir(parents=True, exist_ok=True)
    expected: dict[str, ExpectedEvent] = {}
    secrets: list[PlantedSecret] = []
    total_records = opsworks_records = 0
    for key, records in log_files:
        rng.shuffle(records)  # files are not ordered
        _write(root, key, _dump(records))
        total_records += len(records)
        for r in records:
            if r.get("eventSource") not in OPSWORKS_SOURCES:
                continue
            opsworks_records += 1
            eid = r["eventID"]
            if eid in expected:
                expected[eid].keys.append(key)
                continue
            ident = r.get("userIdentity") or {}
            expected[eid] = ExpectedEvent(
                event_id=eid,
                event_source=r["eventSource"],
                event_name=r["eventName"],
                event_time=r["eventTime"],
                account_id=r.get("recipientAccountId") or ident.get("accountId", ""),
                region=r["awsRegion"],
                keys=[key],
                error_code=r.get("errorCode"),
                read_only=r.get("readOnly"),
                resources=resources_of(r),
            )
            secrets += [PlantedSecret(v, eid, p) for p, v in _secrets_in(r)]

    # 4. the rest of a trail bucket: digests signed with the run's demo key, chained per prefix, account
    # and Region (one per day with deliveries), Insights files, write checks, folders
    signatures = write_signed_digests(root, bucket, [k for k, _ in log_files], daily=True)
    skipped: dict[str, str] = dict.fromkeys(signatures, "digest")
    for account in acct:
        key, body = _insight(maker, account, org)
        _write(root, key, body)
        skipped[key] = "insight"
        check = f"{_account_prefix(account, org)}Config/ConfigWritabilityCheckFile"
        _write(root, check, b"")
        skipped[check] = "not-a-log-file"
    folders = _folder_keys(root)
    skipped.update(dict.fromkeys(folders, "folder"))

    return SampleManifest(
        seed=seed,
        organization_id=org,
        accounts=acct,
        log_keys=sorted(k for k, _ in log_files),
        skipped_keys=dict(sorted(skipped.items())),
        folder_keys=folders,
        expected=dict(sorted(expected.items())),
        secrets=secrets,
        duplicate_event_ids=sorted(dup_ids),
        lookalike_event_ids=sorted(lookalike_ids),
        files=len(log_files),
        records=total_records,
        opsworks_records=opsworks_records,
        opsworks_events=len(expected),
        bucket=bucket,
        digest_metadata=dict(sorted(signatures.items())),
        public_keys=demo_signer().listing(),
    )


def _parse_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _write(root: Path, key: str, body: bytes) -> None:
    path = root.joinpath(*key.split("/"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)


def _insight(maker: RecordMaker, account: str, org: str | None) -> tuple[str, bytes]:
    """An Insights file about OpsWorks call rates: mentions OpsWorks, yet is no log file to ingest."""
    region = "us-east-1"
    ts = maker.start + timedelta(days=1, hours=13, minutes=5)
    recs = insight(maker, account, region, ts)
    delivered = ts + timedelta(minutes=15)
    key = (
        f"{_account_prefix(account, org)}CloudTrail-Insight/{region}/{ts:%Y/%m/%d}/"
        f"{account}_CloudTrail-Insight_{region}_{delivered:%Y%m%dT%H%MZ}_{maker.token(16)}.json.gz"
    )
    return key, _dump(recs)


def _folder_keys(root: Path) -> list[str]:
    """Zero-byte "folder" keys a console user might have created: the top of each trail's tree."""
    keys: set[str] = set()
    for path in root.rglob("*"):
        if not path.is_dir():
            continue
        parts = path.relative_to(root).parts
        if "AWSLogs" not in parts:
            keys.add("/".join(parts) + "/")
            continue
        depth = len(parts) - parts.index("AWSLogs")
        if depth <= 2 or parts[-1] in ("CloudTrail", "CloudTrail-Digest", "CloudTrail-Insight"):
            keys.add("/".join(parts) + "/")
    return sorted(keys)


def upload_to_s3(root: Path, s3_client: Any, bucket: str,
                 metadata: Mapping[str, Mapping[str, str]] | None = None) -> list[str]:
    """Upload the tree under ``root`` to ``bucket`` (keys = relative paths), plus zero-byte folder keys;
    ``metadata`` (a manifest's digest_metadata) is set as each named object's user metadata.

    ``s3_client`` is a boto3 S3 client (or moto's). Returns every key written, sorted.
    """
    keys: list[str] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        key = path.relative_to(root).as_posix()
        extra = {"Metadata": dict(metadata[key])} if metadata and key in metadata else {}
        s3_client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes(), **extra)
        keys.append(key)
    for key in _folder_keys(root):
        s3_client.put_object(Bucket=bucket, Key=key, Body=b"")
        keys.append(key)
    return sorted(keys)


# --------------------------------------------------------------------------------------------------
# One large file, streamed
# --------------------------------------------------------------------------------------------------

_T, _R, _E = "@@TIME@@", "@@REQUEST@@", "@@EVENT@@"


def _template(record: Json) -> tuple[str, str, str, str]:
    """Split a rendered record around its eventTime, requestID and eventID (in that order)."""
    rec = dict(record, eventTime=_T, requestID=_R, eventID=_E)
    text = json.dumps(rec, separators=(",", ":"))
    a, rest = text.split(f'"{_T}"')
    b, rest = rest.split(f'"{_R}"')
    c, d = rest.split(f'"{_E}"')
    return a, b, c, d


def _template_pool(
    seed: int, start: datetime
) -> tuple[list[tuple[str, str, str, str]], list[tuple[str, str, str, str]]]:
    """(OpsWorks templates, other templates) rendered from the same builders as the bucket."""
    rng = Random(seed)
    maker = new_maker(rng, DEFAULT_ACCOUNTS, start, 1)
    ops: list[Json] = []
    for i, account in enumerate(DEFAULT_ACCOUNTS):
        sessions = stack(maker, account, REGIONS[i], name=f"bench{i}", by="deploy-automation", at=(0.1,) * 7)
        sessions += server(maker, account, REGIONS[i], name=f"bench-cm{i}", engine=("ChefAutomate", "Puppet")[i],
                           at=(0.1,) * 5)
        for s in sessions:
            ops += s.records
    others = []
    for _ in range(400):
        account, region = rng.choice(DEFAULT_ACCOUNTS), rng.choice(REGIONS)
        others.append(noise(maker, account, region, start))
    others += [lookalike(maker, DEFAULT_ACCOUNTS[0], "us-east-1", start, w) for w in range(6)]
    # time/request/event are placed in order in every builder; skip any record where they are not
    keep = [r for r in ops + others if "requestID" in r and "eventID" in r]
    return (
        [_template(r) for r in keep if r["eventSource"] in OPSWORKS_SOURCES],
        [_template(r) for r in keep if r["eventSource"] not in OPSWORKS_SOURCES],
    )


def write_large_trail_file(
    path: Path,
    *,
    uncompressed_bytes: int,
    opsworks_fraction: float,
    seed: int = 11,
    compresslevel: int = 6,
) -> LargeFileStats:
    """Stream one ``{"Records":[...]}`` .json.gz of about ``uncompressed_bytes`` (never all in memory).

    Records come from a pool of rendered templates (the same shapes as :func:`write_sample_bucket`,
    about 1-2 KB each) with fresh eventTime / requestID / eventID per record; each record is an
    OpsWorks one with probability ``opsworks_fraction``. The file ends at the first record boundary
    past the requested size.
    """
    if not 0.0 <= opsworks_fraction <= 1.0:
        raise ValueError("opsworks_fraction must be within [0, 1]")
    rng = Random(seed)
    start = DEFAULT_START + timedelta(days=rng.randrange(28))
    ops, others = _template_pool(seed, start)
    times = [fmt(start + timedelta(seconds=s)) for s in range(3600)]
    hexd = "0123456789abcdef"

    def uuid_prefix() -> str:
        h = "".join(rng.choices(hexd, k=19))
        return f"{h[:8]}-{h[8:12]}-4{h[12:15]}-{rng.choice('89ab')}{h[15:18]}-"

    eid_prefix, rid_prefix = uuid_prefix(), uuid_prefix()
    head, tail = b'{"Records":[', b"]}"
    written = len(head) + len(tail)
    records = n_ops = 0
    n_o, n_x = len(ops), len(others)
    rnd = rng.random
    with (
        path.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=compresslevel, mtime=0) as gz,
    ):
        gz.write(head)
        while written < uncompressed_bytes:
            chunk: list[str] = []
            size = 0
            while size < 1 << 20 and written + size < uncompressed_bytes:
                if rnd() < opsworks_fraction:
                    a, b, c, d = ops[int(rnd() * n_o)]
                    n_ops += 1
                else:
                    a, b, c, d = others[int(rnd() * n_x)]
                t = times[(records >> 8) % 3600]
                s = f'{a}"{t}"{b}"{rid_prefix}{records:012x}"{c}"{eid_prefix}{records:012x}"{d}'
                chunk.append(s)
                size += len(s) + 1
                records += 1
            text = ",".join(chunk)
            if written > len(head) + len(tail):
                text = "," + text
            data = text.encode()
            gz.write(data)
            written += len(data)
        gz.write(tail)
    return LargeFileStats(
        records=records,
        opsworks_records=n_ops,
        uncompressed_bytes=written,
        compressed_bytes=path.stat().st_size,
    )


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------


def main(argv: Iterable[str] | None = None) -> int:
    """``bucket DIR`` or ``large FILE``; prints a JSON summary and the time taken."""
    parser = argparse.ArgumentParser(
        prog="python -m workshop.synthetic", description="Write realistic sample CloudTrail data."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("bucket", help="write a sample trail bucket folder and its manifest")
    b.add_argument("dir", type=Path)
    b.add_argument("--seed", type=int, default=7)
    b.add_argument("--files", type=int, default=300)
    b.add_argument("--org", action="store_true", help="lay keys out as an organization trail")
    b.add_argument("--manifest", type=Path, help="default: DIR.manifest.json next to DIR")
    lg = sub.add_parser("large", help="stream one large .json.gz trail file")
    lg.add_argument("file", type=Path)
    lg.add_argument("--mb", type=float, default=64.0, help="uncompressed size in MiB")
    lg.add_argument("--opsworks-fraction", type=float, default=0.01)
    lg.add_argument("--seed", type=int, default=11)
    lg.add_argument("--compresslevel", type=int, default=6)
    args = parser.parse_args(list(argv) if argv is not None else None)

    began = time.perf_counter()
    summary: dict[str, Any]
    if args.command == "bucket":
        org = "o-a1b2c3d4e5" if args.org else None
        m = write_sample_bucket(args.dir, seed=args.seed, files=args.files, organization_id=org)
        manifest = args.manifest or args.dir.with_name(args.dir.name + ".manifest.json")
        write_manifest(m, manifest)
        summary = {
            "dir": str(args.dir),
            "manifest": str(manifest),
            "files": m.files,
            "records": m.records,
            "opsworks_records": m.opsworks_records,
            "opsworks_events": m.opsworks_events,
            "files_with_opsworks": len(m.keys_with_opsworks()),
            "skipped": len(m.skipped_keys),
            "secrets": len(m.secrets),
        }
    else:
        args.file.parent.mkdir(parents=True, exist_ok=True)
        st = write_large_trail_file(
            args.file,
            uncompressed_bytes=int(args.mb * 1024 * 1024),
            opsworks_fraction=args.opsworks_fraction,
            seed=args.seed,
            compresslevel=args.compresslevel,
        )
        summary = {"file": str(args.file), **dataclasses.asdict(st)}
    summary["seconds"] = round(time.perf_counter() - began, 2)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
