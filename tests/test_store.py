"""The store: key design, batched idempotent writes with retries, item size, numbers, file state."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import strategies as st

from core.errors import TransientError
from core.ingest.items import DOCUMENT, PACKED, document, event_items, restore
from core.ingest.store import BATCH_SIZE, EventStore, ItemsRefused, deserialize, serialize
from core.keys import FAILED_FILES, MAX_KEY_PART_BYTES, key_part
from core.model import ObjectRef, Outcome, Status

GSI_KEYS = ("actor_pk", "account_pk", "failed_pk", "write_pk")
EVENT_TIME = "2024-03-01T10:15:30Z"


def event(event_id: str = "evt-1", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": event_id, "event_time": EVENT_TIME, "event_source": "opsworks.amazonaws.com",
        "event_name": "CreateLayer", "service": "opsworks", "read_only": False, "outcome": "success",
        "region": "us-east-1", "account_id": "111122223333",
        "actor": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice", "name": "alice"},
        "resources": [{"type": "stack", "id": "stack-1"}, {"type": "layer", "id": "layer-1"}],
        "request_parameters": {"stackId": "stack-1", "name": "web"},
        "response_elements": {"layerId": "layer-1"},
        "ingested_at": "2024-03-01T10:20:00Z",
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def main_item(items: list[dict[str, Any]]) -> dict[str, Any]:
    [main] = [i for i in items if i["sk"] == "EVENT"]
    return main


def links(items: list[dict[str, Any]], ev: dict[str, Any]) -> list[dict[str, Any]]:
    """Resource link items: a pointer to the event under each resource (other helper items are not links)."""
    time_sk = f"{ev['event_time']}#{ev['event_id']}"
    return [i for i in items if i["pk"].startswith("RES#") and i["sk"] == time_sk]


class Recorder:
    """A DynamoDB client that records BatchWriteItem calls and can refuse or hold back items."""

    def __init__(self, client: Any, *, unprocessed_first: int = 0, errors: list[str] | None = None) -> None:
        self._client = client
        self.batches: list[int] = []
        self.unprocessed_first = unprocessed_first
        self.errors = list(errors or [])

    def batch_write_item(self, RequestItems: dict[str, list[Any]]) -> dict[str, Any]:
        [(table, requests)] = RequestItems.items()
        self.batches.append(len(requests))
        if self.errors:
            code = self.errors.pop(0)
            raise ClientError({"Error": {"Code": code, "Message": code},
                               "ResponseMetadata": {"HTTPStatusCode": 400}}, "BatchWriteItem")
        if self.unprocessed_first:
            held, requests = requests[:self.unprocessed_first], requests[self.unprocessed_first:]
            self.unprocessed_first = 0
            self._client.batch_write_item(RequestItems={table: requests})
            return {"UnprocessedItems": {table: held}}
        response: dict[str, Any] = self._client.batch_write_item(RequestItems=RequestItems)
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def scan_all(client: Any, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName=table):
        items += [deserialize(i) for i in page["Items"]]
    return items


def get(client: Any, table: str, pk: str, sk: str) -> dict[str, Any] | None:
    item = client.get_item(TableName=table, Key=serialize({"pk": pk, "sk": sk}), ConsistentRead=True).get("Item")
    return deserialize(item) if item else None


# -- event_items ----------------------------------------------------------------------------------


def test_the_main_item_is_keyed_by_event_id_and_carries_every_index_key() -> None:
    items = event_items(event(outcome="failure", error_code="AccessDenied"))

    main = main_item(items)
    assert main["pk"] == "EVENT#evt-1"
    assert main["sk"] == "EVENT"
    assert main["time_sk"] == f"{EVENT_TIME}#evt-1"
    assert main["actor_pk"] == "arn:aws:iam::111122223333:user/alice"
    assert main["account_pk"] == "111122223333"
    assert main["failed_pk"] == "111122223333"
    assert main["write_pk"] == "111122223333"
    assert restore(main) == event(outcome="failure", error_code="AccessDenied")


def test_one_small_link_item_per_resource_pointing_to_the_event_without_index_keys() -> None:
    ev = event()
    items = event_items(ev)

    found = links(items, ev)
    assert sorted(i["pk"] for i in found) == ["RES#layer#layer-1", "RES#stack#stack-1"]
    for link in found:
        assert link == {"pk": link["pk"], "sk": f"{EVENT_TIME}#evt-1", "event_id": "evt-1"}
    for item in items:
        if item["sk"] != "EVENT":
            for key in GSI_KEYS:
                assert key not in item, (item["pk"], key)


def test_an_event_without_resources_has_only_its_main_item_among_event_copies() -> None:
    ev = event(resources=None)

    items = event_items(ev)

    assert links(items, ev) == []
    assert main_item(items)["pk"] == "EVENT#evt-1"


def test_a_successful_read_has_neither_failed_nor_write_keys() -> None:
    main = main_item(event_items(event(read_only=True, outcome="success")))

    assert "failed_pk" not in main
    assert "write_pk" not in main
    assert main["account_pk"] == "111122223333"


def test_a_call_of_unknown_mutability_is_not_listed_as_a_write() -> None:
    main = main_item(event_items(event(read_only=None)))

    assert "write_pk" not in main


def test_an_assumed_role_is_indexed_by_its_role() -> None:
    actor = {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/DeployRole/s-1",
             "session_issuer_arn": "arn:aws:iam::111122223333:role/DeployRole", "name": "DeployRole"}

    assert main_item(event_items(event(actor=actor)))["actor_pk"] == "arn:aws:iam::111122223333:role/DeployRole"


def test_an_aws_service_is_indexed_by_its_name() -> None:
    actor = {"type": "AWSService", "invoked_by": "opsworks.amazonaws.com", "name": "opsworks.amazonaws.com"}

    assert main_item(event_items(event(actor=actor)))["actor_pk"] == "opsworks.amazonaws.com"


def test_an_event_without_account_or_actor_has_no_such_index_keys() -> None:
    main = main_item(event_items(event(account_id=None, actor=None, outcome="failure")))

    for key in GSI_KEYS:
        assert key not in main


def test_without_retention_nothing_expires() -> None:
    for item in event_items(event()):
        assert "expires_at" not in item


def test_retention_sets_expires_at_on_the_main_item_and_its_links() -> None:
    ev = event()
    expected = int((datetime(2024, 3, 1, 10, 15, 30, tzinfo=UTC) + timedelta(days=30)).timestamp())

    items = event_items(ev, retention_days=30)

    assert main_item(items)["expires_at"] == expected == 1711880130
    for link in links(items, ev):
        assert link["expires_at"] == expected


# -- put_items ------------------------------------------------------------------------------------


def test_put_items_writes_in_batches_of_25(moto_table: tuple[Any, str]) -> None:
    client, table = moto_table
    recorder = Recorder(client)
    store = EventStore(recorder, table)
    items = [{"pk": f"EVENT#e{i:03d}", "sk": "EVENT", "n": i} for i in range(60)]

    written = store.put_items(items)

    assert BATCH_SIZE == 25
    assert recorder.batches == [25, 25, 10]
    assert written == 60
    assert len(scan_all(client, table)) == 60


def test_put_items_drops_repeated_keys_and_keeps_the_last_copy(moto_table: tuple[Any, str]) -> None:
    client, table = moto_table
    recorder = Recorder(client)
    store = EventStore(recorder, table)
    items = [{"pk": "EVENT#same", "sk": "EVENT", "copy": i} for i in range(3)]
    items += [{"pk": f"EVENT#e{i}", "sk": "EVENT"} for i in range(4)]

    written = store.put_items(items)

    assert recorder.batches == [5]  # moto, like DynamoDB, refuses a batch naming a key twice
    assert written == 5
    assert get(client, table, "EVENT#same", "EVENT") == {"pk": "EVENT#same", "sk": "EVENT", "copy": 2}


def test_writing_the_same_items_twice_leaves_one_copy(moto_table: tuple[Any, str]) -> None:
    client, table = moto_table
    store = EventStore(client, table)
    items = event_items(event())

    store.put_items(items)
    store.put_items(items)

    stored = scan_all(client, table)
    assert len(stored) == len({(i["pk"], i["sk"]) for i in items})


def test_unprocessed_items_are_retried_until_written(moto_table: tuple[Any, str]) -> None:
    client, table = moto_table
    recorder = Recorder(client, unprocessed_first=7)
    sleeps: list[float] = []
    store = EventStore(recorder, table, sleep=sleeps.append)
    items = [{"pk": f"EVENT#e{i:02d}", "sk": "EVENT"} for i in range(20)]

    written = store.put_items(items)

    assert written == 20
    assert recorder.batches == [20, 7]
    assert len(sleeps) == 1
    assert sorted(i["pk"] for i in scan_all(client, table)) == sorted(i["pk"] for i in items)


def test_items_left_unprocessed_every_time_are_a_transient_error(moto_table: tuple[Any, str]) -> None:
    client, table = moto_table

    class Stubborn(Recorder):
        def batch_write_item(self, RequestItems: dict[str, list[Any]]) -> dict[str, Any]:
            self.batches.append(len(next(iter(RequestItems.values()))))
            return {"UnprocessedItems": RequestItems}

    stubborn = Stubborn(client)
    store = EventStore(stubborn, table, max_attempts=4, sleep=lambda _: None)

    with pytest.raises(TransientError, match="unprocessed"):
        store.put_items([{"pk": "EVENT#e", "sk": "EVENT"}])
    assert stubborn.batches == [1, 1, 1, 1]


@pytest.mark.parametrize("code", ["ThrottlingException", "ProvisionedThroughputExceededException",
                                  "InternalServerError", "ExpiredTokenException"])
def test_an_environment_error_the_client_raises_is_transient_and_not_retried_again_by_the_store(
        moto_table: tuple[Any, str], code: str) -> None:
    """The client raises only once botocore's own retries (store.RETRIES) are spent: one policy, not two."""
    client, table = moto_table
    recorder = Recorder(client, errors=[code] * 10)
    sleeps: list[float] = []
    store = EventStore(recorder, table, sleep=sleeps.append)

    with pytest.raises(TransientError) as caught:
        store.put_items([{"pk": "EVENT#e", "sk": "EVENT"}])

    assert caught.value.permanent is False and code in caught.value.reason
    assert recorder.batches == [1] and sleeps == []
    assert get(client, table, "EVENT#e", "EVENT") is None


def test_a_batch_refused_for_its_content_is_written_item_by_item_and_only_the_refused_item_reported(
        moto_table: tuple[Any, str]) -> None:
    client, table = moto_table
    recorder = Recorder(client)
    store = EventStore(recorder, table, sleep=lambda _: None)
    good = [{"pk": f"EVENT#e{i}", "sk": "EVENT"} for i in range(3)]
    too_big = {"pk": "EVENT#big", "sk": "EVENT", "blob": "x" * 500_000}

    with pytest.raises(ItemsRefused) as caught:
        store.put_items([good[0], too_big, *good[1:]])

    assert caught.value.permanent
    assert [item["pk"] for item, _ in caught.value.refused] == ["EVENT#big"]
    assert recorder.batches == [4]  # one batch call, then one PutItem per item
    assert sorted(i["pk"] for i in scan_all(client, table)) == ["EVENT#e0", "EVENT#e1", "EVENT#e2"]


# -- size and numbers -----------------------------------------------------------------------------


def test_an_event_over_400_kb_is_compressed_stored_and_restored(moto_table: tuple[Any, str]) -> None:
    """Given an event whose parameters are ~540 KB, when stored, then moto accepts it and it reads back whole."""
    client, table = moto_table
    store = EventStore(client, table)
    big = {"stackId": "stack-1", "customJson": json.dumps({"node": ["recipe[web::deploy]"] * 20000}),
           "volumeSize": Decimal("1.5"), "count": Decimal(3)}
    ev = event(request_parameters=big)
    assert len(json.dumps(ev, default=str)) > 400_000

    with pytest.raises(ClientError, match="size"):  # the reason the document is compressed
        client.put_item(TableName=table, Item=serialize(dict(ev, pk="raw", sk="raw")))
    store.put_items(event_items(ev))

    stored = get(client, table, "EVENT#evt-1", "EVENT")
    assert stored is not None
    assert PACKED in stored and DOCUMENT not in stored  # stored compressed
    restored = restore(stored)
    assert restored["request_parameters"] == big
    assert restored == ev
    link = get(client, table, "RES#stack#stack-1", f"{EVENT_TIME}#evt-1")
    assert link == {"pk": "RES#stack#stack-1", "sk": f"{EVENT_TIME}#evt-1", "event_id": "evt-1"}


def test_a_small_event_is_stored_as_readable_json_text() -> None:
    ev = event()

    stored = document(ev)

    assert list(stored) == [DOCUMENT]
    assert json.loads(stored[DOCUMENT]) == json.loads(json.dumps(ev))


def test_decimal_and_float_numbers_are_stored_as_numbers_and_read_back_as_decimal(
        moto_table: tuple[Any, str]) -> None:
    client, table = moto_table
    store = EventStore(client, table)
    params = {"volumeSize": Decimal("1.5"), "iops": Decimal(3000), "ratio": 0.25, "nested": [{"n": Decimal("-7")}]}

    store.put_items(event_items(event(request_parameters=params)))

    stored = get(client, table, "EVENT#evt-1", "EVENT")
    assert stored is not None
    assert restore(stored)["request_parameters"] == {"volumeSize": Decimal("1.5"), "iops": Decimal(3000),
                                                     "ratio": Decimal("0.25"), "nested": [{"n": Decimal("-7")}]}
    raw = client.get_item(TableName=table, Key=serialize({"pk": "EVENT#evt-1", "sk": "EVENT"}))["Item"]
    assert '"volumeSize":1.5,"iops":3000' in raw[DOCUMENT]["S"]  # numbers written exactly as read


# -- file state -----------------------------------------------------------------------------------


REF = ObjectRef("trail-bucket", "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/f.json.gz", 1234, "abc123")


def test_an_unknown_file_has_no_state(moto_table: tuple[Any, str]) -> None:
    client, table = moto_table

    assert EventStore(client, table).file_state(REF) is None


def test_mark_ingested_records_sizes_counts_and_etag(moto_table: tuple[Any, str]) -> None:
    client, table = moto_table
    store = EventStore(client, table)

    store.mark_ingested(Outcome(REF, Status.INGESTED, records=120, bytes_read=150_000, matched=3))

    state = store.file_state(REF)
    assert state is not None
    assert state["pk"] == f"FILE#trail-bucket/{REF.key}"
    assert state["sk"] == "FILE"
    assert state["status"] == "ingested"
    assert state["records"] == 120 and state["bytes"] == 150_000 and state["matched"] == 3
    assert state["etag"] == "abc123"
    assert state["bucket"] == "trail-bucket" and state["key"] == REF.key
    assert state["at"].endswith("Z")
    assert "failed_pk" not in state


def test_mark_failed_lists_the_file_until_a_later_success_replaces_it(moto_table: tuple[Any, str]) -> None:
    client, table = moto_table
    store = EventStore(client, table)
    other = ObjectRef("trail-bucket", "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/g.json.gz")

    store.mark_failed(REF, "corrupt gzip data: invalid block type")
    store.mark_failed(other, "no Records list")

    state = store.file_state(REF)
    assert state is not None
    assert state["status"] == "failed"
    assert state["reason"] == "corrupt gzip data: invalid block type"
    assert state["failed_pk"] == FAILED_FILES
    assert sorted((f["key"], f["reason"]) for f in store.failed_files()) == [
        (REF.key, "corrupt gzip data: invalid block type"), (other.key, "no Records list")]

    store.mark_ingested(Outcome(REF, Status.INGESTED, bytes_read=1000))

    assert [f["key"] for f in store.failed_files()] == [other.key]
    state = store.file_state(REF)
    assert state is not None and state["status"] == "ingested"
    assert "records" not in state  # not counted: not stored


def test_failed_files_is_empty_on_a_new_table(moto_table: tuple[Any, str]) -> None:
    client, table = moto_table

    assert list(EventStore(client, table).failed_files()) == []


# -- keys and documents from any content ------------------------------------------------------------


@given(st.text(st.characters(exclude_categories=()), max_size=700))
def test_a_key_part_is_short_encodable_and_stable_whatever_the_text(text: str) -> None:
    part = key_part(text)

    assert len(part.encode("utf-8")) <= MAX_KEY_PART_BYTES
    assert key_part(part) == part == key_part(text)


ANY_TEXT = st.text(st.characters(exclude_categories=()))


@given(st.recursive(st.none() | st.booleans() | st.integers(-(10**37), 10**37) | ANY_TEXT,
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
                    max_leaves=30))
def test_any_parameters_survive_the_document_form_exactly(params: Any) -> None:
    """(Numbers DynamoDB could not hold come back as their text: tests/test_hostile.py.)"""
    ev = event(request_parameters=params)

    [main] = [i for i in event_items(ev) if i["sk"] == "EVENT"]

    assert restore(deserialize(serialize(main))) == ev
    assert all(ord(c) < 128 for c in main[DOCUMENT])


def test_an_item_written_before_the_document_form_is_read_as_it_was_written() -> None:
    import zlib

    from boto3.dynamodb.types import Binary

    params = {"stackId": "stack-1", "n": Decimal(2)}
    legacy = dict(event(request_parameters=None), pk="EVENT#evt-1", sk="EVENT", time_sk="t", account_pk="1",
                  request_parameters_zlib=Binary(zlib.compress(json.dumps({"stackId": "stack-1", "n": 2}).encode())))

    assert restore(legacy) == event(request_parameters=params)
