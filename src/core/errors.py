"""Typed failures. Permanent ones are recorded and acknowledged; transient ones are retried."""

from __future__ import annotations


class IngestError(Exception):
    """Reading one object failed. `permanent` says whether a retry could ever succeed."""

    permanent = True

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BadTrailFile(IngestError):
    """The object is not a readable CloudTrail log file (corrupt gzip, invalid JSON, no Records ...)."""


class TooLarge(IngestError):
    """The object, or what it inflates to, is over the size cap (a decompression bomb, say)."""


class TransientError(IngestError):
    """Throttling, a 5xx, a timeout, a key not yet readable: try again later."""

    permanent = False


class SourceError(IngestError):
    """The object could not be read for a reason a retry will not fix (access denied, ...)."""


class Unstorable(ValueError):
    """A selected record no storage form can hold (an eventID of megabytes, say): a fault of that record."""
