"""An organization's history held in memory, for a digest backfill through the function's pipeline (the
tests, bench/backfill_digests.py): log files over accounts, Regions and hours, and the signed, chained
digests that list them, with an opener and a fetcher standing in for S3.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from core.errors import SourceError
from core.model import BinaryStream, ObjectRef
from workshop.sample_digests import DigestSigner, SignedDigest, chained_digests

START = datetime(2024, 5, 1, 0, 0, tzinfo=UTC)


def log_key(account: str, region: str, t: datetime, n: int) -> str:
    return (f"AWSLogs/o-abc123/{account}/CloudTrail/{region}/{t:%Y/%m/%d}/"
            f"{account}_CloudTrail_{region}_{t:%Y%m%dT%H%MZ}_{n:06d}abcd.json.gz")


def log_body(account: str, region: str, n: int, t: datetime) -> bytes:
    """A small log file; one in three holds an OpsWorks record (so events and the account registry are
    written too), the others only records the function leaves out."""
    source = "opsworks.amazonaws.com" if n % 3 == 0 else "ec2.amazonaws.com"
    record = {"eventVersion": "1.08", "eventID": f"00000000-0000-4000-8000-{n:012d}",
              "eventTime": f"{t:%Y-%m-%dT%H:%M:%SZ}", "eventName": "DescribeStacks", "awsRegion": region,
              "eventSource": source, "recipientAccountId": account,
              "userIdentity": {"type": "Root", "accountId": account}}
    return gzip.compress(json.dumps({"Records": [record]}).encode(), mtime=0)


@dataclass
class OrganizationHistory:
    """Log files and digests of `accounts` x `regions` over `hours`, `per_hour` log files an hour."""

    bucket: str = "org-trail"
    accounts: int = 2
    regions: tuple[str, ...] = ("us-east-1",)
    hours: int = 3
    per_hour: int = 2
    signer: DigestSigner = field(default_factory=DigestSigner)
    logs: dict[str, bytes] = field(default_factory=dict)
    digests: list[SignedDigest] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = 0
        for a in range(self.accounts):
            account = f"{100000000000 + a:012d}"
            for region in self.regions:
                for hour in range(self.hours):
                    for i in range(self.per_hour):
                        n += 1
                        t = START + timedelta(hours=hour, minutes=5 + (50 * i) // max(1, self.per_hour))
                        self.logs[log_key(account, region, t, n)] = log_body(account, region, n, t)
        self.digests = chained_digests(self.signer, self.bucket, self.logs)
        self._metadata = {d.key: d.metadata for d in self.digests}
        self._digest_bodies = {d.key: d.body for d in self.digests}

    @property
    def refs(self) -> list[ObjectRef]:
        """Every object a backfill hands over: the log files, then the digests (shuffle them to taste)."""
        return [ObjectRef(self.bucket, key, len(body)) for key, body in self.logs.items()] + [
            ObjectRef(self.bucket, d.key, len(d.body)) for d in self.digests]

    @property
    def streams(self) -> int:
        return self.accounts * len(self.regions)

    def replace_digest(self, digest: SignedDigest) -> None:
        """Hand over another digest under the same key (a tampered one, in the tests)."""
        self.digests = [digest if d.key == digest.key else d for d in self.digests]
        self._metadata[digest.key], self._digest_bodies[digest.key] = digest.metadata, digest.body

    def open(self, ref: ObjectRef) -> BinaryStream:
        try:
            return io.BytesIO(self.logs[ref.key])
        except KeyError as exc:
            raise SourceError(f"{ref.uri}: no such object") from exc

    def fetch(self, ref: ObjectRef) -> tuple[bytes, Mapping[str, str]]:
        try:
            return self._digest_bodies[ref.key], self._metadata[ref.key]
        except KeyError as exc:
            raise SourceError(f"{ref.uri}: no such object") from exc
