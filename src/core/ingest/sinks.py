"""Where a file's events go: the table (TableSink), back to the caller on the Outcome (CollectingSink), or
nowhere (DryRunSink). The pipeline reads, selects and normalizes the same way for each; what is written,
and whether the file's own state (ledger entry, permanent failure, attempt count) is kept, is the sink's.

A sink serves many files at once (the CLI reads in threads): what belongs to one file (its buffer) lives
in the FileWriter the sink makes for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from core.event import Event
from core.ingest.items import event_items
from core.ingest.proof import settle_awaiting
from core.ingest.store import EventStore, ItemsRefused
from core.keys import account_head_key, account_registry_key
from core.model import ObjectRef, Outcome, Skip

WRITE_BUFFER = 100
"""Items buffered before a write: a file with many matches is written as it is read."""


class AlreadyIngested(Exception):
    """The file was ingested before with the same content: nothing to write again."""

    def __init__(self, skip: Skip) -> None:
        super().__init__(skip.reason)
        self.skip = skip


class FileWriter(Protocol):
    """One file's events on their way to a sink."""

    @property
    def keeps_ledger(self) -> bool:
        """The file's ledger entry is written: the pipeline hashes its content (SHA-256 costs more than
        inflating, so nothing is hashed that no entry keeps)."""
        ...

    def add(self, event: Event) -> bool:
        """Take one event (raises Unstorable for an event the sink cannot hold); True when enough are
        buffered that they should be written now."""
        ...

    def write(self, unusable: list[str]) -> int:
        """Write what is buffered; returns the events written. Events the sink refused are appended to
        `unusable` as reasons. Raises AlreadyIngested before the first write of a file done before."""
        ...

    def finish(self, outcome: Outcome) -> Skip | None:
        """Every event of the file is written: record the file. A Skip if it had been recorded before."""
        ...


class Sink(Protocol):
    """Where the pipeline's events go, and what is kept of each file."""

    def writer(self, outcome: Outcome) -> FileWriter:
        """The writer of the file `outcome` is for (events kept for the caller go on the outcome)."""
        ...

    def count_attempt(self, ref: ObjectRef, reason: str, limit: int) -> int:
        """One more failed attempt of unknown cause: the attempts so far, 0 where none are counted."""
        ...

    def record_failure(self, ref: ObjectRef, reason: str) -> None:
        """Record a permanent failure where `opsworks-trail failures` lists it, where one is kept."""
        ...


# -- the table -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableSink:
    """Events into the table; for an S3 object also its state: the ledger entry when done, a permanent
    failure, the count of unexplained attempts. A local file's events are written, its state is not (its
    path names nothing the function, `failures` or a digest can find again)."""

    store: EventStore
    retention_days: int | None = None
    """Events expire this many days after they happened (the table's TTL); None keeps them."""
    reread_failed: bool = False
    """Read a file recorded as permanently failed again (`retry-failures`); a redelivery does not."""

    def writer(self, outcome: Outcome) -> FileWriter:
        return _TableWriter(self, outcome.ref)

    def count_attempt(self, ref: ObjectRef, reason: str, limit: int) -> int:
        return 0 if ref.is_local else self.store.count_attempt(ref, reason, limit)

    def record_failure(self, ref: ObjectRef, reason: str) -> None:
        if not ref.is_local:
            self.store.mark_failed(ref, reason)

    def already_ingested(self, ref: ObjectRef) -> Skip | None:
        """Whether the file's state says there is nothing to do: done with this content, or failed and not
        to be read again."""
        state = self.store.file_state(ref)
        if not state or (ref.etag and state.get("etag") and state["etag"] != ref.etag):
            return None  # new, or same key with new content: read it (again)
        if state.get("status") == "ingested":
            return Skip(f"already ingested at {state.get('at')}")
        if state.get("status") == "failed" and not self.reread_failed:
            return Skip(f"already recorded as a permanent failure at {state.get('at')} (retry-failures reads it "
                        "again)")
        return None


@dataclass
class _TableWriter:
    sink: TableSink
    ref: ObjectRef
    buffer: list[dict[str, Any]] = field(default_factory=list)
    written: int = 0

    @property
    def keeps_ledger(self) -> bool:
        return not self.ref.is_local

    def add(self, event: Event) -> bool:
        self.buffer.extend(event_items(event, self.sink.retention_days))
        if event.get("account_id"):  # once per account: the registry's one partition is not written per event
            account = str(event["account_id"])
            self.sink.store.register_once(account_head_key(account), account_registry_key(account))
        return len(self.buffer) >= WRITE_BUFFER

    def write(self, unusable: list[str]) -> int:
        """Events DynamoDB refused (after the others were written) are unusable records of the file, like
        records normalize refuses."""
        if not self.buffer:
            return 0
        if not self.written and not self.ref.is_local:
            done = self.sink.already_ingested(self.ref)  # asked only of files with events to write: the others
            if done:                                     # cost one conditional write (finish), no read
                raise AlreadyIngested(done)
        items, self.buffer = self.buffer, []
        refused: set[str] = set()
        try:
            self.sink.store.put_items(items)
        except ItemsRefused as exc:
            for item, reason in exc.refused:
                refused.add(str(item["pk"]))
                unusable.append(f"item {str(item['pk'])[:100]}: {reason}")
        written = sum(1 for item in items if item["sk"] == "EVENT" and item["pk"] not in refused)
        self.written += written
        return written

    def finish(self, outcome: Outcome) -> Skip | None:
        if self.ref.is_local:
            return None
        ledgered = self.sink.store.mark_ingested(outcome)
        if ledgered.earlier:
            return Skip(f"already ingested at {ledgered.earlier}")
        if ledgered.awaiting:  # digests read before this file: their verdicts are settled now
            settle_awaiting(self.sink.store, ledgered.awaiting, outcome)
        return None


# -- nowhere -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DryRunSink:
    """Nothing written, no state kept: everything but the writes (`--dry-run`)."""

    keeps_ledger: bool = False
    """Hash every file as if its ledger entry were written (what the function costs, less the writes:
    bench/bench.py). A dry run's hash proves nothing, so by default none is computed."""

    def writer(self, outcome: Outcome) -> FileWriter:
        return _NoWriter(self.keeps_ledger)

    def count_attempt(self, ref: ObjectRef, reason: str, limit: int) -> int:
        return 0

    def record_failure(self, ref: ObjectRef, reason: str) -> None:
        return None


@dataclass(frozen=True)
class _NoWriter:
    keeps_ledger: bool

    def add(self, event: Event) -> bool:
        return False

    def write(self, unusable: list[str]) -> int:
        return 0

    def finish(self, outcome: Outcome) -> Skip | None:
        return None


# -- the caller --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CollectingSink:
    """Each file's events handed back on its Outcome (`outcome.items`: `ingest --format jsonl`, tests),
    and passed on to `then` (the table, or nowhere in a dry run)."""

    then: Sink = DryRunSink()

    def writer(self, outcome: Outcome) -> FileWriter:
        return _CollectingWriter(self.then.writer(outcome), outcome)

    def count_attempt(self, ref: ObjectRef, reason: str, limit: int) -> int:
        return self.then.count_attempt(ref, reason, limit)

    def record_failure(self, ref: ObjectRef, reason: str) -> None:
        self.then.record_failure(ref, reason)


@dataclass
class _CollectingWriter:
    then: FileWriter
    outcome: Outcome

    @property
    def keeps_ledger(self) -> bool:
        return self.then.keeps_ledger

    def add(self, event: Event) -> bool:
        full = self.then.add(event)  # an event `then` refuses is not handed back either
        self.outcome.items.append(event)
        return full

    def write(self, unusable: list[str]) -> int:
        return self.then.write(unusable)

    def finish(self, outcome: Outcome) -> Skip | None:
        return self.then.finish(outcome)
