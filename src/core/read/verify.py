"""`opsworks-trail verify`: what the digests prove about a bucket, joined with what the ledger says was read.

For a range of a trail bucket, per account and Region: every digest verified (signature, and the chain
link to the digest it names), every log file a verified digest lists looked up in the bucket and in the
ledger. Findings (each names the object): a digest that is unreadable, unsigned, forged, signed by
another key or moved; a broken chain; a digest the chain names that is gone (deleted); a listed log
file that is gone (deleted), never ingested (missing: after the grace period), or whose hash differs
(altered: before it was read, since it was read by ETag, or now with --rehash). Not findings, but said:
periods with no digest (validation or logging off) and log files no digest lists; an account and
Region with log files and no digest at all is "not provable".

Reads digests (one GET each) and the ledger (BatchGetItem); re-reads a log file only with `rehash`. What
the function already verified as digests arrived is answered without reading the bucket: `stored_verdicts`
(a Query per account and Region).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from core.errors import IngestError
from core.ingest.digests import (
    BadDigest,
    Digest,
    DigestName,
    ListedLogFile,
    chain_problem,
    parse_digest,
    parse_digest_key,
    parse_log_key,
    parse_time,
    signature_problem,
)
from core.ingest.logfile import decompressed_chunks
from core.ingest.proof import Fetch, ledger_of, unpack_files
from core.ingest.publickeys import PublicKeys
from core.ingest.store import EventStore, Item
from core.keys import AWAITING, DIGEST_PREFIX, PROOF_STREAMS_PK, parse_stream_sk, stream_pk
from core.model import BinaryStream, ObjectRef

DIGEST_END = "DIGEST$"
"""Just after every digest record's sort key (`$` follows `#`)."""
GRACE = timedelta(hours=1)
"""A log file listed by a digest younger than this may not be ingested yet: pending, not missing."""
MAX_REHASH_BYTES = 2 << 30


@dataclass(frozen=True)
class Finding:
    kind: str
    """unreadable | signature | chain | digest-deleted | log-deleted | missing | altered"""
    account: str
    region: str
    uri: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.uri}: {self.detail}"


@dataclass
class StreamReport:
    """One account and Region."""

    account: str
    region: str
    digests: int = 0
    verified: int = 0
    failed: int = 0
    backfill: int = 0
    listed: int = 0
    ingested: int = 0
    pending: int = 0
    missing: int = 0
    altered: int = 0
    deleted: int = 0
    unhashed: int = 0
    """Ingested before the ledger kept hashes: read, but not proven unaltered."""
    chain_breaks: int = 0
    log_files: int = 0
    """Log files of this account and Region in the bucket (in the range)."""
    uncovered: int = 0
    """Log files in the bucket that no digest lists (validation off then, a digest deleted, or not due yet)."""
    periods: list[tuple[str, str]] = field(default_factory=list)
    """The periods verified digests cover (several trails or prefixes may cover the same hours)."""
    first: str = ""
    last: str = ""
    no_digest: list[tuple[str, str]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.findings:
            return "FINDINGS"
        return "not provable" if not self.digests else "proven"

    def covers(self, start: str, end: str) -> None:
        self.periods.append((start, end))
        self.first = min(self.first or start, start)
        self.last = max(self.last, end)

    @property
    def hours_verified(self) -> float:
        """Hours covered by at least one verified digest."""
        total, reach = 0.0, None
        for start, end in sorted((parse_time(a), parse_time(b)) for a, b in self.periods):
            if reach is not None and start < reach:
                start = reach
            if end > start:
                total += (end - start).total_seconds()
            reach = max(reach or end, end)
        return total / 3600

    def as_dict(self) -> dict[str, Any]:
        return {"account": self.account, "region": self.region, "status": self.status,
                "digests": {"found": self.digests, "verified": self.verified, "failed": self.failed,
                            "backfill": self.backfill},
                "log_files": {"listed": self.listed, "ingested": self.ingested, "pending": self.pending,
                              "missing": self.missing, "altered": self.altered, "deleted": self.deleted,
                              "unhashed": self.unhashed, "in_bucket": self.log_files, "not_covered": self.uncovered},
                "chain_breaks": self.chain_breaks, "hours_verified": round(self.hours_verified, 2),
                "first": self.first or None, "last": self.last or None,
                "periods_without_digest": [{"from": a, "to": b} for a, b in self.no_digest],
                "findings": [{"kind": f.kind, "object": f.uri, "detail": f.detail} for f in self.findings]}


@dataclass
class VerifyReport:
    location: str
    since: str | None
    until: str | None
    streams: dict[tuple[str, str], StreamReport] = field(default_factory=dict)
    answered_from: str = "bucket"
    """`bucket` (digests read and checked now) or `stored` (the verdicts the function recorded)."""

    def stream(self, account: str, region: str) -> StreamReport:
        return self.streams.setdefault((account, region), StreamReport(account, region))

    @property
    def findings(self) -> list[Finding]:
        return [f for s in self.sorted() for f in s.findings]

    def sorted(self) -> list[StreamReport]:
        return [self.streams[k] for k in sorted(self.streams)]

    def total(self, name: str) -> int:
        return sum(int(getattr(s, name)) for s in self.streams.values())

    def as_dict(self) -> dict[str, Any]:
        return {"location": self.location, "since": self.since, "until": self.until,
                "answered_from": self.answered_from, "findings": len(self.findings),
                "streams": [s.as_dict() for s in self.sorted()]}


Lister = Callable[[str, str], Iterable[ObjectRef]]
Opener = Callable[[ObjectRef], BinaryStream]


@dataclass
class Verifier:
    list_objects: Lister
    fetch: Fetch
    keys: PublicKeys
    store: EventStore | None
    """The ledger; None verifies the digests and the bucket only (nothing said about ingest)."""
    open: Opener | None = None
    """Re-reads log files for `rehash`."""
    grace: timedelta = GRACE
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def run(self, bucket: str, prefix: str = "", *, since: datetime | None = None, until: datetime | None = None,
            account: str | None = None, region: str | None = None, rehash: bool = False) -> VerifyReport:
        report = VerifyReport(f"s3://{bucket}/{prefix}", _iso(since), _iso(until))
        present: dict[str, ObjectRef] = {}
        digests: list[tuple[DigestName, ObjectRef]] = []
        logs: list[tuple[str, str, ObjectRef]] = []
        for ref in self.list_objects(bucket, prefix):
            present[ref.key] = ref
            name = parse_digest_key(ref.key)
            if name is not None:
                if _wanted(name.account, name.region, account, region) and _in_range(
                        parse_time(name.end), since, until + timedelta(hours=1) if until else None):
                    digests.append((name, ref))
                continue
            log = parse_log_key(ref.key)
            if log is not None and _wanted(log.account, log.region, account, region) and _in_range(
                    parse_time(log.delivered), since, until):
                logs.append((log.account, log.region, ref))
        trusted = self._digests(bucket, digests, present, report)
        self._files(bucket, trusted, present, report, rehash)
        listed = {f.key for digest, _ in trusted for f in digest.log_files}
        listed |= self._untrusted_listing
        for acct, reg, ref in logs:
            stream = report.stream(acct, reg)
            stream.log_files += 1
            stream.uncovered += ref.key not in listed
        return report

    # -- digests ----------------------------------------------------------------------------------------

    def _digests(self, bucket: str, digests: list[tuple[DigestName, ObjectRef]], present: dict[str, ObjectRef],
                 report: VerifyReport) -> list[tuple[Digest, StreamReport]]:
        """Verify each digest and its link back; returns the trusted ones with their account-Region."""
        self._cache: dict[str, Digest | None] = {}
        self._untrusted_listing: set[str] = set()
        trusted = []
        last_of_stream: dict[tuple[str, ...], Digest] = {}
        for name, ref in sorted(digests, key=lambda d: (d[0].stream, d[0].end, d[1].key)):
            stream = report.stream(name.account, name.region)
            stream.digests += 1
            stream.backfill += name.backfill
            digest = self._verified(bucket, ref.key, name, stream)
            if digest is None:
                stream.failed += 1
                continue
            stream.verified += 1
            stream.covers(digest.start, digest.end)
            trusted.append((digest, stream))
            if name.backfill:
                continue
            earlier = last_of_stream.get(name.stream)
            self._check_link(digest, earlier, present, stream)
            last_of_stream[name.stream] = digest
        return trusted

    def _verified(self, bucket: str, key: str, name: DigestName, stream: StreamReport | None) -> Digest | None:
        """The digest at key if it is what CloudTrail signed and delivered there (findings to `stream`)."""
        if key in self._cache and stream is None:
            return self._cache[key]
        uri = f"s3://{bucket}/{key}"
        try:
            body, metadata = self.fetch(ObjectRef(bucket, key))
            digest = parse_digest(bucket, key, body, metadata)
        except BadDigest as exc:
            self._note(stream, name, "unreadable", uri, str(exc).removeprefix(f"{uri}: "))
            self._cache[key] = None
            return None
        problem = signature_problem(digest, self.keys.key_for(digest.fingerprint, name.region, digest.end))
        if problem:
            self._note(stream, name, "signature", uri, problem)
            self._untrusted_listing.update(f.key for f in digest.log_files)
        self._cache[key] = None if problem else digest
        return self._cache[key]

    def _note(self, stream: StreamReport | None, name: DigestName, kind: str, uri: str, detail: str) -> None:
        if stream is not None:
            stream.findings.append(Finding(kind, name.account, name.region, uri, detail))

    def _check_link(self, digest: Digest, earlier: Digest | None, present: dict[str, ObjectRef],
                    stream: StreamReport) -> None:
        if digest.previous is None:
            if earlier is not None:  # the chain starts again: nothing was digested in between
                stream.no_digest.append((earlier.end, digest.start))
            return
        bucket, key = digest.previous
        name = parse_digest_key(key)
        if bucket == digest.bucket and key not in present:
            stream.chain_breaks += 1
            stream.findings.append(Finding("digest-deleted", stream.account, stream.region, f"s3://{bucket}/{key}",
                                           f"the digest {digest.key} names it as the previous digest, and it "
                                           "is not in the bucket"))
            return
        if name is None or bucket != digest.bucket:
            return  # another bucket (a trail moved): its own verify run covers it
        previous = self._cache[key] if key in self._cache else self._verified(bucket, key, name, None)
        if previous is None:
            return  # itself a finding when in range; out of range it is another run's
        problem = chain_problem(digest, previous.signature, previous.content_sha256)
        if problem:
            stream.chain_breaks += 1
            stream.findings.append(Finding("chain", stream.account, stream.region, digest.uri, problem))

    # -- log files -------------------------------------------------------------------------------------

    def _files(self, bucket: str, trusted: list[tuple[Digest, StreamReport]], present: dict[str, ObjectRef],
               report: VerifyReport, rehash: bool) -> None:
        files = [(f, digest, stream) for digest, stream in trusted for f in digest.log_files]
        ledger = ledger_of(self.store, (f for f, _, _ in files)) if self.store is not None else {}
        for f, digest, stream in files:
            stream.listed += 1
            uri = f"s3://{f.bucket}/{f.key}"
            entry = ledger.get((f.bucket, f.key))
            ref = present.get(f.key) if f.bucket == bucket else None
            if f.bucket == bucket and ref is None:
                stream.deleted += 1
                read = " after it was ingested" if entry and entry.get("status") == "ingested" else ""
                stream.findings.append(Finding("log-deleted", stream.account, stream.region, uri,
                                               f"listed by {digest.key}, not in the bucket: deleted{read}"))
                continue
            problem = self._ledger_problem(f, entry, ref) if self.store is not None else None
            if problem is None and rehash and ref is not None:
                problem = self._rehash_problem(f, ref)
            if problem == "pending" or (problem and problem.startswith("missing") and self._young(digest)):
                stream.pending += 1
            elif problem == "unhashed":
                stream.unhashed += 1
            elif problem:
                kind, _, detail = problem.partition(": ")
                setattr(stream, kind, getattr(stream, kind) + 1)
                stream.findings.append(Finding(kind, stream.account, stream.region, uri, detail))
            elif self.store is not None:
                stream.ingested += 1

    def _young(self, digest: Digest) -> bool:
        return self.now - parse_time(digest.end) < self.grace

    @staticmethod
    def _ledger_problem(f: ListedLogFile, entry: Item | None, ref: ObjectRef | None) -> str | None:
        if entry is None:
            return "missing: never ingested (no ledger entry): was its notification lost?"
        if entry.get("status") != "ingested":
            return f"missing: its ingest failed: {entry.get('reason', entry.get('status'))}"
        if not entry.get("sha256"):
            return "unhashed"
        if str(entry["sha256"]).lower() != f.sha256:
            return ("altered: the file read differs from the one CloudTrail delivered "
                    f"(SHA-256 {entry['sha256']} read, {f.sha256} listed)")
        if ref is not None and ref.etag and entry.get("etag") and entry["etag"] != ref.etag:
            return "altered: changed in the bucket since it was read (its ETag differs); --rehash to compare"
        return None

    def _rehash_problem(self, f: ListedLogFile, ref: ObjectRef) -> str | None:
        assert self.open is not None, "rehash needs an opener"
        sha256 = hashlib.sha256()
        try:
            stream = self.open(ref)
            with contextlib.closing(stream):
                for chunk in decompressed_chunks(stream, MAX_REHASH_BYTES):
                    sha256.update(chunk)
        except IngestError as exc:
            return f"altered: unreadable now: {exc.reason}"
        if sha256.hexdigest() != f.sha256:
            return f"altered: its content now differs from the one CloudTrail delivered (SHA-256 {sha256.hexdigest()})"
        return None


def _wanted(account: str, region: str, want_account: str | None, want_region: str | None) -> bool:
    return (want_account is None or account == want_account) and (want_region is None or region == want_region)


def _in_range(moment: datetime, since: datetime | None, until: datetime | None) -> bool:
    return (since is None or moment >= since) and (until is None or moment <= until)


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z") if moment else None


def by_account_region(reports: Iterable[StreamReport]) -> Iterator[StreamReport]:
    yield from sorted(reports, key=lambda s: (s.account, s.region))


# -- the verdicts the function stored (no digest re-read) ----------------------------------------------

def stored_verdicts(store: EventStore, *, bucket: str | None = None, prefix: str = "", since: datetime | None = None,
                    until: datetime | None = None, account: str | None = None, region: str | None = None,
                    now: datetime | None = None, grace: timedelta = GRACE) -> VerifyReport:
    """What the function verified as digests arrived (live or in a backfill), from its records: one Query on
    the proof streams registry, then one per account and Region over the range; no digest is read again.
    Files still awaited an hour after their digest was read are missing. Deleted objects are not looked
    for: that needs the bucket (Verifier.run)."""
    report = VerifyReport(f"s3://{bucket}/{prefix}" if bucket else "the function's records", _iso(since),
                          _iso(until), answered_from="stored")
    moment = now or datetime.now(UTC)
    low = DIGEST_PREFIX + (_iso(since) or "")
    high = f"{DIGEST_PREFIX}{_iso(until + timedelta(hours=1))}#~" if until else DIGEST_END
    registry = store.query(KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": PROOF_STREAMS_PK}})
    for entry in registry:
        acct, reg = parse_stream_sk(str(entry["sk"]))
        if not _wanted(acct, reg, account, region):
            continue
        records = store.query(KeyConditionExpression="pk = :p AND sk BETWEEN :lo AND :hi",
                              ExpressionAttributeValues={":p": {"S": stream_pk(acct, reg)}, ":lo": {"S": low},
                                                         ":hi": {"S": high}})
        for record in records:
            if (bucket is None or record.get("bucket") == bucket) and str(record.get("key", "")).startswith(prefix):
                _fold(report.stream(acct, reg), record, moment, grace)
    return report


def _fold(stream: StreamReport, record: Item, now: datetime, grace: timedelta) -> None:
    """One digest record into its account-Region's report."""
    stream.digests += 1
    stream.backfill += bool(record.get("backfill"))
    uri = f"s3://{record['bucket']}/{record['key']}"
    stream.findings += [_stored_finding(stream, uri, str(text)) for text in record.get("findings") or []]
    if record.get("status") != "verified":
        stream.failed += 1
        return
    stream.verified += 1
    listed = int(record.get("listed", 0))
    stream.listed += listed
    if record.get("start"):
        stream.covers(str(record["start"]), str(record["end"]))
    stream.chain_breaks += record.get("chain") == "broken"
    stream.altered += len(record.get("altered") or [])
    if "proven" not in record:  # recorded before verdicts were settled in place: lists of keys
        pending, missing = list(record.get("pending") or []), list(record.get("missing") or [])
        stream.ingested += max(0, listed - len(pending) - len(missing) - len(record.get("altered") or []))
    else:
        stream.ingested += int(record["proven"])
        stream.unhashed += int(record.get("unhashed", 0))
        places = sorted(int(p) for p in record.get(AWAITING) or ())
        files = unpack_files(record["files"]) if places else []
        awaited = [files[p].key for p in places]
        late = now - max(parse_time(str(record["end"])), parse_time(str(record["recorded_at"]))) >= grace
        pending, missing = ([], awaited) if late else (awaited, [])
    stream.pending += len(pending)
    stream.missing += len(missing)
    stream.findings += [Finding("missing", stream.account, stream.region, f"s3://{record['bucket']}/{key}",
                                f"listed by {record['key']}, not ingested") for key in missing]


def _stored_finding(stream: StreamReport, uri: str, text: str) -> Finding:
    """A finding as the function wrote it (`s3://...: what`), with its kind."""
    kind = ("altered" if ": altered:" in text else "chain" if "chain broken" in text else
            "unreadable" if text.startswith("unreadable") else "signature")
    if text.startswith("s3://") and ": " in text:
        uri, text = text.split(": ", 1)
    return Finding(kind, stream.account, stream.region, uri, text)


def coverage_from_table(store: EventStore, *, now: datetime | None = None,
                        grace: timedelta = GRACE) -> list[StreamReport]:
    """What the function verified, per account and Region, from its digest records (Queries only)."""
    return list(by_account_region(stored_verdicts(store, now=now, grace=grace).streams.values()))
