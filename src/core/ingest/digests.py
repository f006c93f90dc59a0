"""CloudTrail digest files: where they live, what they list, and whether CloudTrail signed them.

With log file validation on, CloudTrail delivers every hour, per account and Region, a digest file
listing each log file it delivered with the SHA-256 of the log file's *decompressed* content, signed
SHA256withRSA, and chained to the previous digest by that one's signature. The algorithm here is AWS's
("CloudTrail log file integrity validation", custom implementations) and agrees with the AWS CLI's
`validate-logs` (awscli/customizations/cloudtrail/validation.py):

- the signature is hex in the object's user metadata `signature` (x-amz-meta-signature), its algorithm
  in `signature-algorithm`;
- the signed string is `digestEndTime \\n digestS3Bucket/digestS3Object \\n sha256hex(inflated digest)
  \\n previousDigestSignature` (the literal `null` for the first digest of a chain);
- the public key is the one of the digest's Region whose fingerprint (MD5 of the PKCS#1 DER key, as
  ListPublicKeys returns it) is `digestPublicKeyFingerprint`.

Pure: bytes and keys in, facts out. Where keys come from is core.ingest.publickeys.
"""

from __future__ import annotations

import hashlib
import json
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

SIGNATURE_ALGORITHM = "SHA256withRSA"
MAX_DIGEST_BYTES = 64 * 1024 * 1024
"""A digest lists an hour of log files; anything inflating past this is not one (a bomb)."""

_DIGEST_KEY = re.compile(
    r"^(?P<prefix>(?:.*/)?)AWSLogs/(?:(?P<org>o-[a-z0-9]+)/)?(?P<account>\d{12})/CloudTrail-Digest/"
    r"(?P<region>[a-z0-9-]+)/\d{4}/\d{2}/\d{2}/(?P=account)_CloudTrail-Digest_(?P=region)_(?P<trail>.+)_"
    r"(?P<home>[a-z]{2}(?:-[a-z]+)+-\d+)_(?P<end>\d{8}T\d{6}Z)(?P<backfill>_backfill)?\.json\.gz$")
_LOG_KEY = re.compile(
    r"^(?P<prefix>(?:.*/)?)AWSLogs/(?:(?P<org>o-[a-z0-9]+)/)?(?P<account>\d{12})/CloudTrail/"
    r"(?P<region>[a-z0-9-]+)/\d{4}/\d{2}/\d{2}/(?P=account)_CloudTrail_(?P=region)_"
    r"(?P<delivered>\d{8}T\d{4}Z)_[^/]+\.json\.gz$")
_REQUIRED = ("digestStartTime", "digestEndTime", "digestS3Bucket", "digestS3Object",
             "digestPublicKeyFingerprint", "previousDigestSignature", "logFiles")


class BadDigest(ValueError):
    """The object is no readable digest file (not gzip, not JSON, a field missing); says which and why."""


@dataclass(frozen=True)
class DigestName:
    """What a digest's key says about it: the trail stream it belongs to and the end of its period."""

    prefix: str
    organization_id: str | None
    account: str
    region: str
    trail: str
    home_region: str
    end: str
    """digestEndTime as ISO 8601 UTC with Z, from the key name."""
    backfill: bool

    @property
    def stream(self) -> tuple[str, str, str, str, str]:
        """One chain of digests: a trail's digests for one account and Region under one prefix."""
        return (self.prefix, self.organization_id or "", self.account, self.region, self.trail)


@dataclass(frozen=True)
class LogFileName:
    """What a log file's key says: its account, Region and delivery time (to the minute)."""

    prefix: str
    organization_id: str | None
    account: str
    region: str
    delivered: str


def parse_digest_key(key: str) -> DigestName | None:
    """The parts of a CloudTrail digest key (custom prefix, organization trail, `_backfill` included),
    or None for any other key."""
    match = _DIGEST_KEY.match(key)
    if not match:
        return None
    end = datetime.strptime(match["end"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return DigestName(match["prefix"], match["org"], match["account"], match["region"], match["trail"],
                      match["home"], iso(end), bool(match["backfill"]))


def parse_log_key(key: str) -> LogFileName | None:
    match = _LOG_KEY.match(key)
    if not match:
        return None
    delivered = datetime.strptime(match["delivered"], "%Y%m%dT%H%MZ").replace(tzinfo=UTC)
    return LogFileName(match["prefix"], match["org"], match["account"], match["region"], iso(delivered))


def is_digest_key(key: str) -> bool:
    return "CloudTrail-Digest" in key and parse_digest_key(key) is not None


@dataclass(frozen=True)
class ListedLogFile:
    """A log file as a digest lists it: where CloudTrail delivered it and the SHA-256 of its content."""

    bucket: str
    key: str
    sha256: str


@dataclass(frozen=True)
class Digest:
    bucket: str
    key: str
    """Where the digest was found (which must be where CloudTrail says it delivered it)."""
    fields: Mapping[str, object]
    content_sha256: str
    """SHA-256 (hex) of the inflated digest: part of its signed string, and what the next digest's
    previousDigestHashValue names."""
    signature: str
    signature_algorithm: str
    log_files: tuple[ListedLogFile, ...]

    @property
    def start(self) -> str:
        return str(self.fields["digestStartTime"])

    @property
    def end(self) -> str:
        return str(self.fields["digestEndTime"])

    @property
    def fingerprint(self) -> str:
        return str(self.fields["digestPublicKeyFingerprint"])

    @property
    def previous(self) -> tuple[str, str] | None:
        """(bucket, key) of the previous digest of the chain, None for the first of a chain."""
        bucket, key = self.fields.get("previousDigestS3Bucket"), self.fields.get("previousDigestS3Object")
        return (str(bucket), str(key)) if bucket and key else None

    @property
    def previous_signature(self) -> str | None:
        value = self.fields.get("previousDigestSignature")
        return str(value) if value else None

    @property
    def previous_hash(self) -> str | None:
        value = self.fields.get("previousDigestHashValue")
        return str(value) if value else None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_digest(bucket: str, key: str, body: bytes, metadata: Mapping[str, str]) -> Digest:
    """A digest object (gzip JSON) and its S3 user metadata, as found at bucket/key."""
    uri = f"s3://{bucket}/{key}"
    try:
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
        content = inflater.decompress(body, MAX_DIGEST_BYTES)
        if inflater.unconsumed_tail:
            raise BadDigest(f"{uri}: inflates past {MAX_DIGEST_BYTES:,} bytes: no digest file is that large")
        if not inflater.eof:
            raise BadDigest(f"{uri}: truncated gzip data")
        fields = json.loads(content)
    except zlib.error as exc:
        raise BadDigest(f"{uri}: not gzip data: {exc}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadDigest(f"{uri}: not JSON: {exc}") from exc
    if not isinstance(fields, dict):
        raise BadDigest(f"{uri}: a digest is a JSON object, this is a {type(fields).__name__}")
    missing = [name for name in _REQUIRED if name not in fields]
    if missing:
        raise BadDigest(f"{uri}: no {', '.join(missing)}: not a CloudTrail digest file")
    if not isinstance(fields["logFiles"], list):
        raise BadDigest(f"{uri}: logFiles is not a list")
    try:
        listed = tuple(ListedLogFile(str(f["s3Bucket"]), str(f["s3Object"]), str(f["hashValue"]).lower())
                       for f in fields["logFiles"])
    except (KeyError, TypeError) as exc:
        raise BadDigest(f"{uri}: a logFiles entry lacks s3Bucket, s3Object or hashValue") from exc
    metadata = {k.lower(): v for k, v in metadata.items()}
    return Digest(bucket, key, fields, hashlib.sha256(content).hexdigest(), metadata.get("signature", ""),
                  metadata.get("signature-algorithm", ""), listed)


def string_to_sign(digest: Digest) -> bytes:
    previous = digest.previous_signature or "null"  # 'null' as the Java implementation writes it
    return (f"{digest.end}\n{digest.fields['digestS3Bucket']}/{digest.fields['digestS3Object']}\n"
            f"{digest.content_sha256}\n{previous}").encode()


@dataclass(frozen=True)
class PublicKey:
    """A CloudTrail public key as ListPublicKeys gives it: PKCS#1 DER, its fingerprint, its validity."""

    fingerprint: str
    der: bytes
    valid_from: str | None = None
    valid_until: str | None = None


class BadPublicKey(ValueError):
    """A public key that cannot be used: not RSA DER, or its fingerprint is not its own."""


def fingerprint_of(der: bytes) -> str:
    """CloudTrail's fingerprint of a public key: MD5 of its DER bytes, hex (checked against
    `aws cloudtrail list-public-keys` output). Used to check a key, never to sign."""
    return hashlib.md5(der, usedforsecurity=False).hexdigest()


def checked_key(fingerprint: str, der: bytes, valid_from: str | None = None,
                valid_until: str | None = None) -> PublicKey:
    """A key whose fingerprint is the one it claims, and that loads as an RSA public key."""
    if fingerprint_of(der) != fingerprint.lower():
        raise BadPublicKey(f"public key {fingerprint}: its bytes have fingerprint {fingerprint_of(der)}")
    _rsa_key(PublicKey(fingerprint, der))
    return PublicKey(fingerprint.lower(), der, valid_from, valid_until)


def _rsa_key(key: PublicKey) -> rsa.RSAPublicKey:
    """The key loaded by `cryptography` (imported here, at the first digest: ~60 ms the function's init
    phase would pay on every cold start, though most invocations read log files only)."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    try:
        loaded = load_der_public_key(key.der)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise BadPublicKey(f"public key {key.fingerprint} is not a DER RSA public key: {exc}") from exc
    if not isinstance(loaded, rsa.RSAPublicKey):
        raise BadPublicKey(f"public key {key.fingerprint} is not an RSA key")
    return loaded


def signature_problem(digest: Digest, key: PublicKey | None) -> str | None:
    """Why the digest is not what CloudTrail signed and delivered there, or None when it is."""
    if digest.fields["digestS3Bucket"] != digest.bucket or digest.fields["digestS3Object"] != digest.key:
        return (f"moved: CloudTrail delivered it to s3://{digest.fields['digestS3Bucket']}/"
                f"{digest.fields['digestS3Object']}")
    if not digest.signature:
        return "no signature in the object's metadata (x-amz-meta-signature)"
    if digest.signature_algorithm and digest.signature_algorithm != SIGNATURE_ALGORITHM:
        return f"signed with {digest.signature_algorithm!r}, not {SIGNATURE_ALGORITHM}"
    if key is None:
        return f"no CloudTrail public key has fingerprint {digest.fingerprint} (signed by another key?)"
    try:
        signature = bytes.fromhex(digest.signature)
    except ValueError:
        return "the signature in the object's metadata is not hex"
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    try:
        _rsa_key(key).verify(signature, string_to_sign(digest), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return f"the signature does not verify with CloudTrail's key {key.fingerprint} (forged or altered)"
    except BadPublicKey as exc:
        return str(exc)
    return None


def chain_problem(digest: Digest, previous_signature: str, previous_sha256: str) -> str | None:
    """Why the digest does not follow the previous one it names, or None when it does."""
    return link_problem(digest.previous_signature or "", digest.previous_hash or "", previous_signature,
                        previous_sha256)


def link_problem(claimed_signature: str, claimed_sha256: str, previous_signature: str,
                 previous_sha256: str) -> str | None:
    """Why a digest's claims about the previous digest (its previousDigestSignature and
    previousDigestHashValue, the latter optional) are not that digest's, or None when they are."""
    if claimed_signature.lower() != previous_signature.lower():
        return "chain broken: previousDigestSignature is not the previous digest's signature"
    if claimed_sha256 and claimed_sha256.lower() != previous_sha256.lower():
        return "chain broken: previousDigestHashValue is not the previous digest's SHA-256"
    return None


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
