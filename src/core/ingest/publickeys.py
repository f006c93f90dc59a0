"""CloudTrail's public keys, through one port: the ListPublicKeys API, or a file the AWS CLI saved.

    aws cloudtrail list-public-keys --start-time 2024-01-01T00:00:00Z --output json > keys.json

Either way every key's fingerprint is checked against its bytes before it is used, and a digest gets
the key whose fingerprint it names. CloudTrail signs with one key pair per Region.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from core.errors import SourceError, TransientError
from core.ingest.digests import BadPublicKey, PublicKey, checked_key, iso, parse_time
from core.ingest.store import is_transient


class PublicKeys(Protocol):
    def key_for(self, fingerprint: str, region: str, at: str) -> PublicKey | None:
        """The key with this fingerprint that signed a digest of `region` ending at `at`, or None."""
        ...


def keys_from_list(listing: Mapping[str, Any]) -> list[PublicKey]:
    """Keys from a ListPublicKeys response (boto3: Value is bytes) or the CLI's JSON (Value is base64)."""
    keys = []
    for entry in listing.get("PublicKeyList", []):
        value = entry.get("Value")
        if isinstance(value, str):
            try:
                value = base64.b64decode(value, validate=True)
            except binascii.Error as exc:
                raise BadPublicKey(f"public key {entry.get('Fingerprint')}: Value is not base64") from exc
        if not isinstance(value, bytes | bytearray) or not entry.get("Fingerprint"):
            raise BadPublicKey(f"a PublicKeyList entry has no Value or Fingerprint: {sorted(entry)}")
        keys.append(checked_key(str(entry["Fingerprint"]), bytes(value), _when(entry.get("ValidityStartTime")),
                                _when(entry.get("ValidityEndTime"))))
    return keys


def _when(value: Any) -> str | None:
    """A validity time as boto3 (datetime), the CLI v1 (epoch seconds) or v2 (ISO text) gives it."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, int | float):
        return iso(datetime.fromtimestamp(value, UTC))
    return iso(parse_time(str(value)))


class KeyRing:
    """Keys known by fingerprint (any Region: fingerprints are unique)."""

    def __init__(self, keys: Iterable[PublicKey] = ()) -> None:
        self._keys = {key.fingerprint: key for key in keys}

    def add(self, keys: Iterable[PublicKey]) -> None:
        self._keys.update((key.fingerprint, key) for key in keys)

    def key_for(self, fingerprint: str, region: str, at: str) -> PublicKey | None:
        return self._keys.get(fingerprint.lower())

    def __len__(self) -> int:
        return len(self._keys)


def keys_from_files(paths: Iterable[Path]) -> KeyRing:
    """The keys of one or more saved `aws cloudtrail list-public-keys --output json` outputs."""
    ring = KeyRing()
    for path in paths:
        try:
            listing = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise BadPublicKey(f"{path}: cannot read it: {exc.strerror}") from exc
        except json.JSONDecodeError as exc:
            raise BadPublicKey(f"{path}: not JSON ({exc}): save it with --output json") from exc
        if not isinstance(listing, dict) or "PublicKeyList" not in listing:
            raise BadPublicKey(f"{path}: no PublicKeyList: not the output of aws cloudtrail list-public-keys")
        try:
            ring.add(keys_from_list(listing))
        except BadPublicKey as exc:
            raise BadPublicKey(f"{path}: {exc}") from exc
    return ring


class CloudTrailPublicKeys:
    """ListPublicKeys in the digest's Region, for the day around the digest; keys cached by fingerprint,
    so a warm function asks once per key (a key signs for weeks)."""

    def __init__(self, client_for: Callable[[str], Any]) -> None:
        self._client_for = client_for
        self._ring = KeyRing()
        self._asked: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def key_for(self, fingerprint: str, region: str, at: str) -> PublicKey | None:
        key = self._ring.key_for(fingerprint, region, at)
        if key is not None:
            return key
        moment = parse_time(at)
        asked = (region, moment.strftime("%Y-%m-%d"))
        with self._lock:
            if asked not in self._asked:
                self._ring.add(self._list(region, moment - timedelta(days=1), moment + timedelta(hours=1)))
                self._asked.add(asked)
        return self._ring.key_for(fingerprint, region, at)

    def _list(self, region: str, start: datetime, end: datetime) -> list[PublicKey]:
        client = self._client_for(region)
        keys: list[PublicKey] = []
        try:
            for page in client.get_paginator("list_public_keys").paginate(StartTime=start, EndTime=end):
                keys += keys_from_list(page)
        except (ClientError, BotoCoreError) as exc:
            if is_transient(exc):
                raise TransientError(f"CloudTrail ListPublicKeys in {region} is not answering well: {exc}") from exc
            raise SourceError(f"CloudTrail ListPublicKeys in {region} failed (check the function's "
                              f"cloudtrail:ListPublicKeys permission): {exc}") from exc
        return keys
