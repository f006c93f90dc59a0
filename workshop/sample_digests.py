"""Signed digest files for generated trail buckets (the demo, the tests): CloudTrail's format, chain and
signature, made with a demo key generated for the run instead of CloudTrail's.

A directory stands for a bucket; what S3 keeps beside a digest (its x-amz-meta-signature) is returned
to the caller, which keeps it in the sample manifest and sets it when uploading to S3.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from core.errors import SourceError
from core.ingest.digests import (
    SIGNATURE_ALGORITHM,
    PublicKey,
    fingerprint_of,
    iso,
    parse_digest,
    parse_log_key,
    parse_time,
    string_to_sign,
)
from core.model import BinaryStream, ObjectRef

TRAIL = "management-events"


@dataclass
class DigestSigner:
    """An RSA key pair standing in for CloudTrail's key of a Region."""

    private_key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @property
    def der(self) -> bytes:
        return self.private_key.public_key().public_bytes(serialization.Encoding.DER,
                                                          serialization.PublicFormat.PKCS1)

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(self.der)

    def public_key(self) -> PublicKey:
        return PublicKey(self.fingerprint, self.der)

    def listing(self) -> dict[str, object]:
        """What `aws cloudtrail list-public-keys --output json` prints for this key."""
        return {"PublicKeyList": [{"ValidityStartTime": "2000-01-01T00:00:00+00:00",
                                   "ValidityEndTime": "2100-01-01T00:00:00+00:00",
                                   "Value": base64.b64encode(self.der).decode(), "Fingerprint": self.fingerprint}]}

    def sign(self, data: bytes) -> str:
        return self.private_key.sign(data, padding.PKCS1v15(), hashes.SHA256()).hex()


@dataclass(frozen=True)
class SignedDigest:
    key: str
    body: bytes
    metadata: dict[str, str]
    sha256: str
    """SHA-256 of the inflated digest, which the next digest names."""


def digest_key(prefix: str, org: str | None, account: str, region: str, end: datetime, *, trail: str = TRAIL,
               backfill: bool = False) -> str:
    org_part = f"{org}/" if org else ""
    return (f"{prefix}AWSLogs/{org_part}{account}/CloudTrail-Digest/{region}/{end:%Y/%m/%d}/"
            f"{account}_CloudTrail-Digest_{region}_{trail}_{region}_{end:%Y%m%dT%H%M%SZ}"
            f"{'_backfill' if backfill else ''}.json.gz")


def make_digest(signer: DigestSigner, bucket: str, key: str, account: str, start: datetime, end: datetime,
                log_files: Iterable[tuple[str, str]], previous: SignedDigest | None = None,
                fingerprint: str | None = None) -> SignedDigest:
    """One digest as CloudTrail writes it; log_files are (key, sha256 of the decompressed content)."""
    fields = {
        "awsAccountId": account, "digestStartTime": iso(start), "digestEndTime": iso(end),
        "digestS3Bucket": bucket, "digestS3Object": key,
        "digestPublicKeyFingerprint": fingerprint or signer.fingerprint,
        "digestSignatureAlgorithm": SIGNATURE_ALGORITHM,
        "newestEventTime": None, "oldestEventTime": None,
        "previousDigestS3Bucket": bucket if previous else None,
        "previousDigestS3Object": previous.key if previous else None,
        "previousDigestHashValue": previous.sha256 if previous else None,
        "previousDigestHashAlgorithm": "SHA-256" if previous else None,
        "previousDigestSignature": previous.metadata["signature"] if previous else None,
        "logFiles": [{"s3Bucket": bucket, "s3Object": k, "hashValue": h, "hashAlgorithm": "SHA-256",
                      "newestEventTime": iso(end - timedelta(minutes=2)),
                      "oldestEventTime": iso(start + timedelta(minutes=2))} for k, h in log_files],
    }
    content = json.dumps(fields, separators=(",", ":")).encode()
    body = gzip.compress(content, mtime=0)
    unsigned = parse_digest(bucket, key, body, {})
    metadata = {"signature": signer.sign(string_to_sign(unsigned)), "signature-algorithm": SIGNATURE_ALGORITHM}
    return SignedDigest(key, body, metadata, hashlib.sha256(content).hexdigest())


def content_sha256(body: bytes) -> str:
    """SHA-256 of a log file's decompressed content, as digests list it."""
    return hashlib.sha256(gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body).hexdigest()


def chained_digests(signer: DigestSigner, bucket: str, logs: Mapping[str, bytes], *,
                    daily: bool = False) -> list[SignedDigest]:
    """Digests for every log file named like CloudTrail's: per prefix, account and Region, one for each
    hour with deliveries (CloudTrail writes one every hour; an hour without files is folded into the
    next digest's period, to keep sample buckets small), each chained to the one before it (whose end
    is its start)."""
    streams: dict[tuple[str, str | None, str, str], dict[datetime, list[str]]] = defaultdict(
        lambda: defaultdict(list))
    for key in logs:
        name = parse_log_key(key)
        if name is None:
            continue
        delivered = parse_time(name.delivered)
        period = timedelta(days=1) if daily else timedelta(hours=1)
        floor = delivered.replace(hour=0 if daily else delivered.hour, minute=0, second=0)
        hour_end = floor + period + timedelta(minutes=1, seconds=31)
        streams[(name.prefix, name.organization_id, name.account, name.region)][hour_end].append(key)
    digests = []
    for (prefix, org, account, region), hours in sorted(streams.items(), key=lambda kv: str(kv[0])):
        previous: SignedDigest | None = None
        start = min(hours) - (timedelta(days=1) if daily else timedelta(hours=1))
        for end in sorted(hours):
            key = digest_key(prefix, org, account, region, end)
            listed = [(k, content_sha256(logs[k])) for k in sorted(hours[end])]
            previous = make_digest(signer, bucket, key, account, start, end, listed, previous)
            digests.append(previous)
            start = end
    return digests


@cache
def demo_signer() -> DigestSigner:
    """The demo key of this process: one key signs every sample bucket a run writes, so the same seed
    gives the same bytes within a run (a fresh key each run: it never needs keeping)."""
    return DigestSigner()


def write_signed_digests(root: Path, bucket: str, log_keys: Iterable[str], signer: DigestSigner | None = None,
                         *, daily: bool = False) -> dict[str, dict[str, str]]:
    """Write chained, signed digests for the log files under `root` (a bucket named `bucket`); returns
    each digest key's S3 user metadata (its signature), which a directory cannot hold."""
    signer = signer or demo_signer()
    logs = {key: root.joinpath(*key.split("/")).read_bytes() for key in log_keys}
    digests = chained_digests(signer, bucket, logs, daily=daily)
    for digest in digests:
        path = root.joinpath(*digest.key.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(digest.body)
    return {d.key: d.metadata for d in digests}


class DirectoryBucket:
    """A folder standing for a bucket named `name` (keys are relative paths), with the user metadata S3
    would keep beside each object: what the demo ingests and verifies without S3."""

    def __init__(self, root: Path, name: str, metadata: Mapping[str, Mapping[str, str]]) -> None:
        self.root, self.name, self.metadata = root, name, metadata

    def refs(self, prefix: str = "") -> list[ObjectRef]:
        return list(self.list(self.name, prefix))

    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectRef]:
        for path in sorted(self.root.rglob("*")):
            key = path.relative_to(self.root).as_posix()
            if path.is_file() and key.startswith(prefix):
                body = path.read_bytes()
                yield ObjectRef(self.name, key, len(body), hashlib.md5(body, usedforsecurity=False).hexdigest())

    def open(self, ref: ObjectRef) -> BinaryStream:
        return self._path(ref).open("rb")

    def fetch(self, ref: ObjectRef) -> tuple[bytes, Mapping[str, str]]:
        return self._path(ref).read_bytes(), self.metadata.get(ref.key, {})

    def _path(self, ref: ObjectRef) -> Path:
        try:
            return self.root.joinpath(*ref.key.split("/")).resolve(strict=True)
        except FileNotFoundError as exc:
            raise SourceError(f"{ref.uri}: no such object") from exc
