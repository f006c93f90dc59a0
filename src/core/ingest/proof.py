"""Digest files in the function: verified, chained, compared with the ledger, recorded.

When a digest arrives (live, or in a backfill) its signature is checked against CloudTrail's key, its
link to the previous digest of the chain (when that one is recorded), and each log file it lists
against the ledger (the SHA-256 the pipeline recorded when it read the file). A bad signature, a broken
chain or a hash that differs is an integrity finding: recorded on the digest's item, returned in the
Outcome (the handler counts it as IntegrityFindings, which an alarm watches), never skipped.

A listed file not yet in the ledger is pending: the next digest of the chain (an hour later) looks
again, and what is still absent then is a gap (MissingLogFiles). `opsworks-trail verify` does the same
over any range of the bucket, and is the authority; this is the live alarm.

Items (one table, keys derived from the digest's bucket and key, so a redelivery overwrites nothing; the
formats are in core.keys): a digest record per digest, in its account-Region's partition, and
the proof streams registry of those account-Regions (what the report queries).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from boto3.dynamodb.types import Binary
from botocore.exceptions import BotoCoreError, ClientError

from core.errors import SourceError
from core.ingest.digests import (
    BadDigest,
    Digest,
    DigestName,
    ListedLogFile,
    chain_problem,
    is_digest_key,
    parse_digest,
    parse_digest_key,
    parse_time,
    signature_problem,
)
from core.ingest.publickeys import PublicKeys
from core.ingest.sources import s3_error
from core.ingest.store import EventStore, Item
from core.keys import PROOF_STREAMS_PK, digest_sk, file_key, stream_pk, stream_sk
from core.model import ObjectRef, Outcome, Status, utc_now

GRACE = timedelta(minutes=30)
"""How long after a digest was recorded its pending files may still arrive before they are gaps."""

Fetch = Callable[[ObjectRef], tuple[bytes, Mapping[str, str]]]
"""An object's bytes and its user metadata (where S3 keeps a digest's signature)."""


def digest_record_key(bucket: str, key: str, name: DigestName) -> Item:
    return {"pk": stream_pk(name.account, name.region), "sk": digest_sk(name.end, bucket, key)}


def file_state_key(bucket: str, key: str) -> Item:
    """The file state item the pipeline writes (core.ingest.store): the ledger entry of a log file."""
    return dict(file_key(bucket, key))


def pack_files(files: Iterable[ListedLogFile]) -> Binary:
    """A digest's list of log files, compressed: an hour of a busy trail lists hundreds."""
    return Binary(zlib.compress(json.dumps([[f.bucket, f.key, f.sha256] for f in files]).encode(), 6))


def unpack_files(value: Any) -> list[ListedLogFile]:
    return [ListedLogFile(*entry) for entry in json.loads(zlib.decompress(bytes(value)))]


def ledger_of(store: EventStore, files: Iterable[ListedLogFile]) -> dict[tuple[str, str], Item]:
    """The ledger entries of these files that exist (ingested or failed), by (bucket, key)."""
    keys = [file_state_key(f.bucket, f.key) for f in files]
    return {(str(item["bucket"]), str(item["key"])): item for item in store.get_items(keys)}


@dataclass
class FileCheck:
    ingested: list[str]
    pending: list[str]
    altered: list[str]
    unhashed: list[str]
    """Ingested before the ledger recorded hashes: read, but not proven unaltered."""


def check_files(files: Iterable[ListedLogFile], ledger: Mapping[tuple[str, str], Item]) -> FileCheck:
    result = FileCheck([], [], [], [])
    for f in files:
        entry = ledger.get((f.bucket, f.key))
        if entry is None or entry.get("status") != "ingested":
            result.pending.append(f.key)
        elif not entry.get("sha256"):
            result.unhashed.append(f.key)
        elif str(entry["sha256"]).lower() != f.sha256:
            result.altered.append(f.key)
        else:
            result.ingested.append(f.key)
    return result


class S3Objects:
    """Digest objects with their metadata, from S3 through a client the caller created."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def fetch(self, ref: ObjectRef) -> tuple[bytes, Mapping[str, str]]:
        try:
            response = self.client.get_object(Bucket=ref.bucket, Key=ref.key)
            return response["Body"].read(), response.get("Metadata", {})
        except (ClientError, BotoCoreError) as exc:
            raise s3_error(exc, ref) from exc


@dataclass
class DigestCheck:
    """Digests checked as they arrive (the pipeline's DigestFiles; NoDigestCheck is the other)."""

    fetch: Fetch
    keys: PublicKeys
    store: EventStore
    grace: timedelta = GRACE

    def claims(self, key: str) -> bool:
        return is_digest_key(key)

    def check(self, ref: ObjectRef) -> Outcome:
        name = parse_digest_key(ref.key)
        if name is None or ref.bucket is None:
            raise SourceError(f"{ref.uri}: not a CloudTrail digest in a bucket")
        record_key = digest_record_key(ref.bucket, ref.key, name)
        known = self.store.get_item(record_key)
        if known is not None:
            return Outcome(ref, Status.SKIPPED, f"digest already verified at {known.get('recorded_at')}")
        body, metadata = self.fetch(ref)
        outcome = Outcome(ref, Status.INGESTED)
        record: Item = dict(record_key, bucket=ref.bucket, key=ref.key, trail=name.trail, prefix=name.prefix,
                            account=name.account, region=name.region, end=name.end, backfill=name.backfill,
                            recorded_at=utc_now(), listed=0, pending=[], missing=[], altered=[])
        if name.organization_id:
            record["organization_id"] = name.organization_id
        trusted = False
        try:
            digest = parse_digest(ref.bucket, ref.key, body, metadata)
        except BadDigest as exc:
            outcome.findings.append(f"unreadable digest: {exc}")
        else:
            trusted = self._verify(digest, name, record, outcome)
        record["status"] = "verified" if trusted else "failed"
        record["findings"] = list(outcome.findings)
        self.store.put_item(record)
        self.store.put_item({"pk": PROOF_STREAMS_PK, "sk": stream_sk(name.account, name.region)})
        outcome.reason = (f"digest: {len(outcome.findings)} integrity finding(s); first: {outcome.findings[0]}"
                          if outcome.findings else
                          f"digest verified: {record['listed']} log file(s) listed, {len(record['pending'])} "
                          f"not ingested yet")
        return outcome

    def _verify(self, digest: Digest, name: DigestName, record: Item, outcome: Outcome) -> bool:
        """Check the signature, the chain and the files; True when CloudTrail signed the digest."""
        record.update(start=digest.start, signature=digest.signature, content_sha256=digest.content_sha256,
                      listed=len(digest.log_files), files=pack_files(digest.log_files))
        problem = signature_problem(digest, self.keys.key_for(digest.fingerprint, name.region, digest.end))
        if problem:
            outcome.findings.append(f"{digest.uri}: {problem}")
            return False  # an untrusted list proves nothing about the files it names
        if digest.previous and not name.backfill:
            self._follow_chain(digest, outcome)
        files = check_files(digest.log_files, ledger_of(self.store, digest.log_files))
        record.update(pending=files.pending, altered=files.altered)
        outcome.findings += [f"s3://{digest.bucket}/{key}: altered: its SHA-256 is not the one the digest "
                             f"{digest.key} lists" for key in files.altered]
        return True

    def _follow_chain(self, digest: Digest, outcome: Outcome) -> None:
        """Check the link to the previous digest when it is recorded, and settle its pending files."""
        assert digest.previous is not None
        bucket, key = digest.previous
        name = parse_digest_key(key)
        previous = self.store.get_item(digest_record_key(bucket, key, name)) if name else None
        if previous is None or previous.get("status") != "verified":
            return
        problem = chain_problem(digest, str(previous.get("signature", "")), str(previous.get("content_sha256", "")))
        if problem:
            outcome.findings.append(f"{digest.uri}: {problem} ({key})")
        pending = set(previous.get("pending") or [])
        recorded = parse_time(str(previous["recorded_at"]))
        if not pending or datetime.now(UTC) - recorded < self.grace:
            return
        listed = [f for f in unpack_files(previous["files"]) if f.key in pending]
        files = check_files(listed, ledger_of(self.store, listed))
        altered = [f"s3://{bucket}/{k}: altered: its SHA-256 is not the one the digest {key} lists"
                   for k in files.altered]
        previous.update(pending=[], missing=files.pending, altered=[*previous.get("altered", []), *files.altered],
                        findings=[*previous.get("findings", []), *altered], settled_at=utc_now())
        self.store.put_item(previous)
        outcome.missing_files += len(files.pending)
        outcome.findings += altered
