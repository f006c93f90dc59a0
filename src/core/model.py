"""The small value types that flow between the pipeline's steps."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from core.event import Event


@dataclass(frozen=True)
class ObjectRef:
    """One object to ingest: an S3 object (bucket set) or a local file (is_local: bucket None, key = path)."""

    bucket: str | None
    key: str
    size: int | None = None
    etag: str | None = None

    @property
    def is_local(self) -> bool:
        """A file on this machine, not an S3 object: no table keeps its state (a path names nothing the
        function, `failures` or a digest can find again)."""
        return self.bucket is None

    @property
    def uri(self) -> str:
        return self.key if self.is_local else f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class Skip:
    """Why an object is passed over: not a log file, or one already ingested. A skip is never a failure."""

    reason: str


class BinaryStream(Protocol):
    """What the pipeline needs of an opened object: read it in pieces (or into a buffer), then close it."""

    def read(self, size: int = -1, /) -> bytes: ...

    def readinto(self, buffer: memoryview, /) -> int: ...

    def close(self) -> None: ...


class Status(StrEnum):
    INGESTED = "ingested"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass
class Outcome:
    """What became of one object: every object ends in exactly one of these."""

    ref: ObjectRef
    status: Status
    reason: str = ""
    permanent: bool = False
    records: int | None = None
    """Every record in the file, when the reader was asked to count them (that parses every file, so it
    is off by default: a file that cannot hold a selected record is searched, never parsed)."""
    bytes_read: int = 0
    """The file's decompressed size: the reader always reads all of it (the gzip trailer's CRC proves it)."""
    matched: int = 0
    written: int = 0
    items: list[Event] = field(default_factory=list, repr=False)
    """The normalized events, when the sink hands them back (ingest.sinks.CollectingSink)."""
    error: BaseException | None = field(default=None, repr=False)
    """An unforeseen exception behind a failure, for the caller to log with its trace."""
    sha256: str | None = None
    """SHA-256 (hex) of the decompressed content, as CloudTrail's digests list it: the ledger entry."""
    findings: list[str] = field(default_factory=list)
    """Integrity findings of a digest file (bad signature, broken chain, altered log files)."""
    missing_files: int = 0
    """Log files a digest listed that were still not ingested after the grace period."""

    @property
    def retry(self) -> bool:
        """A transient failure: the trigger should deliver this object again."""
        return self.status is Status.FAILED and not self.permanent


def utc_now() -> str:
    """Now as ISO 8601 UTC with a Z, to the second: the form of every time the project stores."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
