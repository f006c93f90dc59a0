"""Where log files come from: S3 objects (live and backfill) and local files (the CLI, tests, the demo).

Each source opens an object as a binary stream and turns its failures into the pipeline's typed
errors, so the pipeline never needs to know boto3's exceptions.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from core.errors import IngestError, SourceError, TransientError
from core.ingest.store import is_transient
from core.model import BinaryStream, ObjectRef

_NOT_YET_READABLE = frozenset({"NoSuchKey", "404", "NotFound"})


class S3Source:
    """Opens and lists S3 objects through a client the caller created once."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def open(self, ref: ObjectRef) -> BinaryStream:
        try:
            response = self.client.get_object(Bucket=ref.bucket, Key=ref.key)
        except (ClientError, BotoCoreError) as exc:
            raise s3_error(exc, ref) from exc
        return _GuardedStream(response["Body"], ref)

    def list(self, bucket: str, prefix: str = "", start_after: str = "") -> Iterator[ObjectRef]:
        """Every object under a prefix, in key order, with its size and ETag."""
        paginator = self.client.get_paginator("list_objects_v2")
        kwargs = {"Bucket": bucket, "Prefix": prefix}
        if start_after:
            kwargs["StartAfter"] = start_after
        try:
            for page in paginator.paginate(**kwargs):
                for obj in page.get("Contents", []):
                    yield ObjectRef(bucket, obj["Key"], obj.get("Size"), _etag(obj.get("ETag")))
        except (ClientError, BotoCoreError) as exc:
            raise s3_error(exc, ObjectRef(bucket, prefix)) from exc


class LocalSource:
    """Local files and folders, for the CLI and the tests: the key is the path."""

    def open(self, ref: ObjectRef) -> BinaryStream:
        try:
            return open(ref.key, "rb")
        except FileNotFoundError as exc:
            raise SourceError(f"no such file: {ref.key}") from exc
        except OSError as exc:
            raise SourceError(f"cannot read {ref.key}: {exc.strerror}") from exc

    def list(self, path: Path) -> Iterator[ObjectRef]:
        """A file, or every file below a folder in sorted order."""
        if path.is_file():
            yield ObjectRef(None, str(path), path.stat().st_size)
            return
        if not path.is_dir():
            raise SourceError(f"no such file or folder: {path}")
        for folder, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                file = Path(folder, name)
                yield ObjectRef(None, str(file), file.stat().st_size)


def s3_error(exc: Exception, ref: ObjectRef) -> IngestError:
    """Classify an S3 failure: retry what may pass (throttling, 5xx, a key not readable yet)."""
    code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""
    if code in _NOT_YET_READABLE:
        return TransientError(f"{ref.uri}: the key is not readable (yet): {code}")
    if is_transient(exc):
        return TransientError(f"{ref.uri}: S3 is not answering well: {exc}")
    if code in ("AccessDenied", "403", "AllAccessDisabled", "KMS.AccessDeniedException"):
        return SourceError(f"{ref.uri}: access denied (check the function's s3:GetObject and kms:Decrypt)")
    return SourceError(f"{ref.uri}: {code or type(exc).__name__}: {exc}")


class _GuardedStream:
    """A StreamingBody whose read errors become typed errors (a dropped connection is transient)."""

    def __init__(self, body: Any, ref: ObjectRef) -> None:
        self._body = body
        self._ref = ref

    def read(self, size: int = -1) -> bytes:
        try:
            data: bytes = self._body.read(size)
        except (ClientError, BotoCoreError, OSError) as exc:
            raise TransientError(f"{self._ref.uri}: reading the object failed: {exc}") from exc
        return data

    def readinto(self, buffer: memoryview) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        self._body.close()


def _etag(value: str | None) -> str | None:
    return value.strip('"') if value else None
