"""The event item carries its headline (when, what, who, on what, how it went) as plain attributes beside
the document, so the console, PartiQL and an export show what happened; the document stays the truth."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from core.event import Event
from core.ingest.catalog import load_catalog
from core.ingest.items import HEADLINE, MAX_HEADLINE_CHARS, event_items, restore
from core.ingest.normalize import normalize
from core.ingest.store import EventStore
from test_safe_output import hostile_record

CATALOG = load_catalog()


def event_of(text: str) -> Event:
    return normalize(hostile_record(text), None, CATALOG, "2024-06-02T00:00:00Z")


def test_an_event_item_shows_when_what_who_on_what_and_how_it_went() -> None:
    event = event_of("ValidationException")

    main = event_items(event)[0]

    assert main["at"] == "2024-06-01T10:15:30Z"
    assert main["action"] == "opsworks:CreateLayer"
    assert main["caller"] == "arn:aws:iam::111122223333:user/ValidationException"
    assert main["resource"] == "stack/ValidationException"
    assert main["outcome"] == "failure"
    assert main["error_code"] == "ValidationException"


@settings(max_examples=80, deadline=None)
@given(st.text(min_size=1, max_size=3000))
def test_headline_values_are_bounded_encodable_and_ignored_by_restore(text: str) -> None:
    event = event_of(text)

    main = event_items(event)[0]

    for name in HEADLINE:
        if name in main:
            assert len(main[name]) <= MAX_HEADLINE_CHARS
            main[name].encode("utf-8")
    assert restore(main) == event


def test_the_headline_is_stored_and_read_back_as_plain_strings(moto_table: tuple[Any, str]) -> None:
    client, table = moto_table
    event = event_of("AccessDenied")
    EventStore(client, table).put_items(event_items(event))

    item = client.get_item(TableName=table, Key={"pk": {"S": "EVENT#evt-1"}, "sk": {"S": "EVENT"}})["Item"]

    assert item["action"] == {"S": "opsworks:CreateLayer"}
    assert item["outcome"] == {"S": "failure"}
    assert item["at"] == {"S": "2024-06-01T10:15:30Z"}
