"""Records that come without a log file (CloudTrail Event history, the tripwire's EventBridge events) through
the steps a trail record takes: the same selection, normalize (with its redaction), the same items.

The event id is the record's eventID, so an event stored here and later read from a trail file is one item.
Events already in the table are not written again: a second sweep writes nothing, and an event a trail file
stored first keeps that file as its source_object.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from core.errors import IngestError, Unstorable
from core.event import Event
from core.ingest.catalog import Catalog, load_catalog
from core.ingest.items import event_items
from core.ingest.normalize import InvalidRecord, normalize, redact_text
from core.ingest.selection import Selection
from core.ingest.store import EventStore, storable_text
from core.keys import account_head_key, account_registry_key
from core.model import ObjectRef, Outcome, Status, utc_now

_RECORD_FAULTS = (InvalidRecord, Unstorable, TypeError, ValueError, KeyError, AttributeError, ArithmeticError,
                  RecursionError)
"""What a record of an unforeseen shape raises in the pure steps (as in core.ingest.pipeline): a fault of
that record, the same every time."""


def events_from_records(records: Iterable[Any], origin: ObjectRef, selection: Selection, catalog: Catalog,
                        ingested_at: str) -> tuple[list[Event], list[str]]:
    """The selected records normalized (one event per eventID), and a reason for each unusable one."""
    events: dict[str, Event] = {}
    unusable: list[str] = []
    for record in records:
        try:
            if not selection.matches(record):
                continue
            event = normalize(record, origin, catalog, ingested_at)
        except _RECORD_FAULTS as exc:
            which = record.get("eventID") if isinstance(record, dict) else None
            unusable.append(storable_text(redact_text(f"event {which}: {type(exc).__name__}: {exc}")))
            continue
        events.setdefault(event["event_id"], event)
    return list(events.values()), unusable


@dataclass(frozen=True)
class RecordIngest:
    """Select, normalize and store records handed over whole; `store` None is a dry run."""

    selection: Selection
    store: EventStore | None
    retention_days: int | None = None
    catalog: Catalog | None = None

    def ingest(self, origin: ObjectRef, records: Iterable[Any]) -> Outcome:
        """One Outcome for the records of one origin: `items` the events, `matched` how many, `written` those
        new to the table. Unusable records make it a permanent failure (the others still stored); a
        DynamoDB failure a transient or permanent one, as the store classifies it."""
        outcome = Outcome(origin, Status.INGESTED)
        events, unusable = events_from_records(records, origin, self.selection, self.catalog or load_catalog(),
                                               utc_now())
        outcome.items, outcome.matched = events, len(events)
        if self.store is not None and events:
            try:
                outcome.written = store_new_events(self.store, events, self.retention_days)
            except IngestError as exc:
                outcome.status, outcome.permanent, outcome.reason = Status.FAILED, exc.permanent, exc.reason
                return outcome
        if unusable:
            outcome.status, outcome.permanent = Status.FAILED, True
            outcome.reason = f"{len(unusable)} selected record(s) unusable, the rest stored; first: {unusable[0]}"
        return outcome


def store_new_events(store: EventStore, events: list[Event], retention_days: int | None = None) -> int:
    """Write the events the table does not hold yet (one BatchGetItem per 100 first); returns how many."""
    items = {event["event_id"]: event_items(event, retention_days) for event in events}
    held = store.get_events(str(made[0]["pk"]) for made in items.values())
    new = [item for made in items.values() if made[0]["pk"] not in held for item in made]
    if new:
        store.put_items(new)
    for account in sorted({str(event["account_id"]) for event in events if event.get("account_id")}):
        store.register_once(account_head_key(account), account_registry_key(account))  # once, not per event
    return sum(1 for item in new if item["sk"] == "EVENT")
