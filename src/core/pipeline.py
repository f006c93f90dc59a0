"""One object in, one Outcome out: classify the key, read, select, normalize, store, record the file.

Every object ends ingested, skipped (with the reason) or failed (permanent or transient). A failure
of one object never reaches its neighbours: the trigger decides from the Outcomes what to retry.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.catalog import Catalog, load_catalog
from core.digests import is_digest_key
from core.errors import IngestError, TooLarge
from core.model import BinaryStream, ObjectRef, Outcome, Status, utc_now
from core.normalize import Event, InvalidRecord, normalize
from core.selection import Selection
from core.store import EventStore, event_items
from core.trailfile import Chunk, FileKind, RecordScan, classify_key, decompressed_chunks

if TYPE_CHECKING:
    from core.proof import DigestCheck

Opener = Callable[[ObjectRef], BinaryStream]
WRITE_BUFFER = 100
"""Items buffered before a write: a file with many matches is written as it is read."""
_RECORD_FAULTS = (TypeError, ValueError, KeyError, AttributeError, ArithmeticError)
"""A record of an unforeseen shape (an eventSource that is a list, ...) breaking the pure steps: a
permanent fault of that record, recorded for `retry-failures` after a fix, never a retry loop."""


@dataclass
class Pipeline:
    open: Opener
    selection: Selection
    store: EventStore | None
    """None is a dry run: everything but the writes."""
    max_decompressed_bytes: int
    retention_days: int | None = None
    catalog: Catalog | None = None
    json_lines: bool = False
    """Also read one-record-per-line files (local CLI only; trail buckets hold none)."""
    keep_events: bool = False
    """Return the normalized events in the Outcome (for `--format jsonl` and tests)."""
    count_records: bool = False
    """Count every record of every file (Outcome.records): one more pass over each file's bytes."""
    digests: DigestCheck | None = None
    """Verifies digest files (core.proof); None skips them as not log files."""
    hash_content: bool | None = None
    """SHA-256 each file's content for the ledger; None: where a ledger entry is written (a store and an
    S3 object), not in a dry run, whose answer proves nothing (SHA-256 costs more than inflating)."""

    def ingest(self, ref: ObjectRef) -> Outcome:
        digest = self.digests is not None and is_digest_key(ref.key)
        kind = FileKind.TRAIL if digest else classify_key(ref.key, ref.size, json_lines=self.json_lines)
        if isinstance(kind, str):
            return Outcome(ref, Status.SKIPPED, kind)
        try:
            outcome = self.digests.check(ref) if self.digests and digest else self._read_and_store(ref, kind)
        except _AlreadyIngested as exc:
            return Outcome(ref, Status.SKIPPED, str(exc))
        except IngestError as exc:
            outcome = Outcome(ref, Status.FAILED, exc.reason, permanent=exc.permanent)
        except Exception as exc:  # an unforeseen fault: retried, and logged with its trace by the caller
            outcome = Outcome(ref, Status.FAILED, f"unexpected {type(exc).__name__}: {exc}", permanent=False)
            outcome.error = exc
        if outcome.status is Status.FAILED and outcome.permanent:
            self._record_failure(outcome)
        return outcome

    def _already_ingested(self, ref: ObjectRef) -> str:
        assert self.store is not None
        state = self.store.file_state(ref)
        if not state or state.get("status") != "ingested":
            return ""
        if ref.etag and state.get("etag") and state["etag"] != ref.etag:
            return ""  # same key, new content: read it again
        return f"already ingested at {state.get('at')}"

    def _read_and_store(self, ref: ObjectRef, kind: FileKind) -> Outcome:
        if ref.size is not None and ref.size > self.max_decompressed_bytes:
            raise TooLarge(f"the object is {ref.size:,} bytes, over the cap of {self.max_decompressed_bytes:,}")
        catalog = self.catalog or load_catalog()
        outcome = Outcome(ref, Status.INGESTED)
        ledger = self.hash_content if self.hash_content is not None else (
            self.store is not None and ref.bucket is not None)
        content = _ContentHash() if ledger else None
        ingested_at = utc_now()
        scan = RecordScan(self.selection.sources, count_records=self.count_records)
        seen: set[str] = set()
        invalid: list[str] = []
        buffer: list[dict[str, Any]] = []
        with contextlib.closing(self._read(ref, content)) as chunks:
            records = (scan.json_lines(chunks) if kind is FileKind.JSON_LINES
                       else scan.trail_records(chunks, lambda: self._read(ref, content)))
            for record in records:
                try:
                    if not self.selection.matches(record):
                        continue
                    event = normalize(record, ref, catalog, ingested_at)
                    if event["event_id"] in seen:
                        continue
                    items = event_items(event, self.retention_days) if self.store is not None else []
                except InvalidRecord as exc:
                    invalid.append(f"{_which(record)}: {exc}")
                    continue
                except _RECORD_FAULTS as exc:  # the same record fails the same way every time: permanent
                    invalid.append(f"{_which(record)}: {type(exc).__name__} while normalizing it")
                    continue
                seen.add(event["event_id"])
                outcome.matched += 1
                self._keep(outcome, event, items, buffer)
                if len(buffer) >= WRITE_BUFFER:
                    outcome.written += self._flush(buffer, ref, outcome)
        outcome.written += self._flush(buffer, ref, outcome)
        outcome.records, outcome.bytes_read = scan.records, scan.bytes_read
        outcome.sha256 = content.sha256 if content is not None else None
        if invalid:
            outcome.status, outcome.permanent = Status.FAILED, True
            outcome.reason = f"{len(invalid)} selected record(s) unusable, the rest stored; first: {invalid[0]}"
        elif self.store is not None and ref.bucket is not None:
            done = self.store.mark_ingested(outcome)
            if done:
                outcome.status, outcome.reason = Status.SKIPPED, f"already ingested at {done}"
        return outcome

    def _keep(self, outcome: Outcome, event: Event, items: list[dict[str, Any]],
              buffer: list[dict[str, Any]]) -> None:
        if self.keep_events:
            outcome.items.append(event)
        buffer.extend(items)

    def _flush(self, buffer: list[dict[str, Any]], ref: ObjectRef, outcome: Outcome) -> int:
        if self.store is None or not buffer:
            return 0
        if not outcome.written and ref.bucket is not None:
            done = self._already_ingested(ref)  # asked only of files with events to write: the others
            if done:                            # cost one conditional write (mark_ingested), no read
                raise _AlreadyIngested(done)
        items = list(buffer)
        buffer.clear()
        self.store.put_items(items)
        return sum(1 for item in items if item["sk"] == "EVENT")

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

    def _record_failure(self, outcome: Outcome) -> None:
        """Record a permanent failure; if even that fails, make the failure transient so it is retried."""
        if self.store is None or outcome.ref.bucket is None:
            return
        try:
            self.store.mark_failed(outcome.ref, outcome.reason)
        except Exception as exc:
            outcome.permanent = False
            outcome.reason += f" (recording the failure failed too, so it will be retried: {exc})"
            outcome.error = exc


class _ContentHash:
    """The SHA-256 of a file's whole decompressed content, set only when a read reached its end."""

    sha256: str | None = None


class _AlreadyIngested(Exception):
    """The file was ingested before with the same content: nothing to write again."""


def _which(record: dict[str, Any]) -> str:
    """Names a selected record in a failure reason: its eventID, else its time and name."""
    if isinstance(record.get("eventID"), str):
        return f"event {record['eventID']}"
    return f"the {record.get('eventName')} record of {record.get('eventTime')} (no eventID)"
