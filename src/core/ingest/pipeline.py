"""One object in, one Outcome out: classify the key, read, select, normalize, hand to the sink.

Every object ends ingested, skipped (with the reason) or failed (permanent or transient). A failure
of one object never reaches its neighbours: the trigger decides from the Outcomes what to retry. Where
the events go (the table, the caller, nowhere) and what is kept of the file is the sink's (ingest.sinks).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.errors import BadTrailFile, IngestError, TooLarge, Unstorable
from core.ingest.catalog import Catalog, load_catalog
from core.ingest.logfile import Chunk, FileKind, classify_key, decompressed_chunks
from core.ingest.normalize import InvalidRecord, normalize, redact_text
from core.ingest.selection import Selection
from core.ingest.sinks import AlreadyIngested, Sink
from core.ingest.store import storable_text
from core.ingest.trailfile import RecordScan
from core.model import BinaryStream, ObjectRef, Outcome, Skip, Status, utc_now

Opener = Callable[[ObjectRef], BinaryStream]
_RECORD_FAULTS = (TypeError, ValueError, KeyError, AttributeError, ArithmeticError, RecursionError)
"""A record of an unforeseen shape (an eventSource that is a list, nesting too deep to walk, ...) breaking
the pure steps: a permanent fault of that record, recorded for `retry-failures` after a fix, never a
retry loop."""
MAX_UNEXPECTED_ATTEMPTS = 3
"""An exception of no known class is retried (it may be the environment), but only this many times for
the same object: then it is recorded as a permanent failure with its reason, never left to loop. The
count is kept by the sink (the table: on the object's file state item, status `retrying`); where no sink
counts (a dry run, a local file), nothing retries."""


class DigestFiles(Protocol):
    """What the pipeline does with CloudTrail digest files: check them against the ledger
    (core.ingest.proof.DigestCheck), or leave them to the key classification, which skips them as not log
    files (NoDigestCheck)."""

    def claims(self, key: str) -> bool:
        """Whether the object at ``key`` is a digest file this checks (rather than a file to read)."""
        ...

    def check(self, ref: ObjectRef) -> Outcome:
        """The digest's outcome: verified, with its integrity findings, or skipped."""
        ...


@dataclass(frozen=True)
class NoDigestCheck:
    """Digests not checked (DIGEST_PUBLIC_KEYS unset or `off`; a local ingest): a digest file is skipped
    as not a log file, as any other non-log key."""

    def claims(self, key: str) -> bool:
        return False

    def check(self, ref: ObjectRef) -> Outcome:
        return Outcome(ref, Status.SKIPPED, "digest file (digests are not checked)")


@dataclass
class Pipeline:
    open: Opener
    selection: Selection
    sink: Sink
    """Where the events go and what is kept of each file (ingest.sinks: the table, the caller, nowhere)."""
    max_decompressed_bytes: int
    catalog: Catalog | None = None
    json_lines: bool = False
    """Also read one-record-per-line files (local CLI only; trail buckets hold none)."""
    count_records: bool = False
    """Count every record of every file (Outcome.records): one more pass over each file's bytes."""
    digests: DigestFiles = field(default_factory=NoDigestCheck)
    """Verifies digest files (core.ingest.proof.DigestCheck), or not (NoDigestCheck: skipped as not log files)."""

    def ingest(self, ref: ObjectRef) -> Outcome:
        digest = self.digests.claims(ref.key)
        kind = FileKind.TRAIL if digest else classify_key(ref.key, ref.size, json_lines=self.json_lines)
        if isinstance(kind, Skip):
            return _skipped(ref, kind)
        try:
            outcome = self.digests.check(ref) if digest else self._read_and_store(ref, kind)
        except AlreadyIngested as exc:
            return _skipped(ref, exc.skip)
        except IngestError as exc:
            outcome = Outcome(ref, Status.FAILED, _reason(exc.reason), permanent=exc.permanent)
        except RecursionError:  # nesting in the object's bytes, the same every time (no trace: it is 1,000 frames)
            outcome = Outcome(ref, Status.FAILED, "a record nests too deeply to parse", permanent=True)
        except Exception as exc:  # an unforeseen fault: retried a bounded number of times
            outcome = self._unexpected(ref, exc)
        if outcome.status is Status.FAILED and outcome.permanent:
            self._record_failure(outcome)
        return outcome

    def _read_and_store(self, ref: ObjectRef, kind: FileKind) -> Outcome:
        if ref.size is not None and ref.size > self.max_decompressed_bytes:
            raise TooLarge(f"the object is {ref.size:,} bytes, over the cap of {self.max_decompressed_bytes:,}")
        catalog = self.catalog or load_catalog()
        outcome = Outcome(ref, Status.INGESTED)
        writer = self.sink.writer(outcome)
        content = _ContentHash() if writer.keeps_ledger else None
        ingested_at = utc_now()
        scan = RecordScan(self.selection.sources, count_records=self.count_records)
        seen: set[str] = set()
        invalid: list[str] = []
        read_error: list[Exception] = []
        with contextlib.closing(self._read(ref, content)) as chunks:
            records = (scan.json_lines(chunks) if kind is FileKind.JSON_LINES
                       else scan.trail_records(chunks, lambda: self._read(ref, content)))
            for record in _until_error(records, read_error):
                try:
                    if not self.selection.matches(record):
                        continue
                    event = normalize(record, ref, catalog, ingested_at)
                    if event["event_id"] in seen:
                        continue
                    full = writer.add(event)
                except (InvalidRecord, Unstorable) as exc:
                    invalid.append(f"{_which(record)}: {exc}")
                    continue
                except _RECORD_FAULTS as exc:  # the same record fails the same way every time: permanent
                    invalid.append(f"{_which(record)}: {type(exc).__name__} while normalizing it")
                    continue
                seen.add(event["event_id"])
                outcome.matched += 1
                if full:
                    outcome.written += writer.write(invalid)
        # What was read is stored, even if reading then failed.
        outcome.written += writer.write(invalid)
        outcome.records, outcome.bytes_read = scan.records, scan.bytes_read
        outcome.sha256 = content.sha256 if content is not None else None
        if read_error:
            raise _after_reading(read_error[0], outcome.written, invalid)
        if invalid:
            outcome.status, outcome.permanent = Status.FAILED, True
            outcome.reason = _reason(f"{len(invalid)} selected record(s) unusable, the rest stored; "
                                     f"first: {invalid[0]}")
        elif done := writer.finish(outcome):
            outcome.status, outcome.reason = Status.SKIPPED, done.reason
        return outcome

    def _read(self, ref: ObjectRef, content: _ContentHash | None) -> Generator[Chunk, None, None]:
        """The object's decompressed chunks, hashed as they pass, its stream closed when they end or are
        closed. Called again for the rare file whose first candidate comes after the start the reader
        keeps (nothing has been yielded from it by then): the hash starts again with the stream."""
        stream = self.open(ref)
        try:
            if content is None:
                yield from decompressed_chunks(stream, self.max_decompressed_bytes)
                return
            sha256 = hashlib.sha256()
            for chunk in decompressed_chunks(stream, self.max_decompressed_bytes):
                sha256.update(chunk)
                yield chunk
            content.sha256 = sha256.hexdigest()
        finally:
            stream.close()

    def _unexpected(self, ref: ObjectRef, exc: Exception) -> Outcome:
        """Retried (logged with its trace by the caller) until MAX_UNEXPECTED_ATTEMPTS, then permanent."""
        outcome = Outcome(ref, Status.FAILED, _reason(f"unexpected {type(exc).__name__}: {exc}"))
        outcome.error = exc
        try:
            attempts = self.sink.count_attempt(ref, outcome.reason, MAX_UNEXPECTED_ATTEMPTS)
        except Exception as count_exc:
            outcome.reason += f" (counting the attempt failed too: {type(count_exc).__name__})"
            return outcome
        if attempts >= MAX_UNEXPECTED_ATTEMPTS:
            outcome.permanent = True
            outcome.reason += f" (the same object failed {attempts} times in a row; not retried again)"
        return outcome

    def _record_failure(self, outcome: Outcome) -> None:
        """Record a permanent failure; if even that fails, make the failure transient so it is retried."""
        try:
            self.sink.record_failure(outcome.ref, outcome.reason)
        except Exception as exc:
            outcome.permanent = False
            outcome.reason += f" (recording the failure failed too, so it will be retried: {exc})"
            outcome.error = exc


class _ContentHash:
    """The SHA-256 of a file's whole decompressed content, set only when a read reached its end."""

    sha256: str | None = None


def _skipped(ref: ObjectRef, skip: Skip) -> Outcome:
    return Outcome(ref, Status.SKIPPED, skip.reason)


def _reason(text: str) -> str:
    """A failure reason fit to store and log: secrets in it redacted (an exception may quote a value),
    short and encodable."""
    return storable_text(redact_text(text))


def _until_error(records: Iterator[Any], error: list[Exception]) -> Iterator[Any]:
    """The records until the reader fails; its exception is kept in `error`, so that the records read
    before it are stored before the failure is reported."""
    try:
        yield from records
    except Exception as exc:
        error.append(exc)


def _after_reading(error: Exception, stored: int, invalid: list[str]) -> Exception:
    """The reader's failure, saying what became of the records read before it."""
    if isinstance(error, RecursionError):
        error = BadTrailFile("a record nests too deeply to parse")
    if not isinstance(error, IngestError) or not (stored or invalid):
        return error
    done = f"{stored} selected record(s) read before it were stored"
    if invalid:
        done += f", {len(invalid)} unusable (first: {invalid[0]})"
    failure = type(error)(_reason(f"{error.reason}; {done}"))
    failure.__cause__ = error
    return failure


def _which(record: dict[str, Any]) -> str:
    """Names a selected record in a failure reason: its eventID, else its time and name."""
    if isinstance(record.get("eventID"), str):
        return f"event {record['eventID']}"
    return f"the {record.get('eventName')} record of {record.get('eventTime')} (no eventID)"
