"""The table does not depend on the order of arrival: CloudTrail sometimes delivers one event in two files,
and whichever order the files are read in, one after another or by several writers at once, the table ends
with the same items (the times of ingest aside): the event's document names its earliest delivered file
(`source_object`), and `source_files` lists every file that held it."""

from __future__ import annotations

import functools
import gzip
import json
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.ingest.items import DOCUMENT, PACKED, SOURCE_FILES, encode, restore, source_rank
from core.ingest.pipeline import Pipeline
from core.ingest.selection import Selection
from core.ingest.sinks import TableSink
from core.ingest.sources import S3Source
from core.ingest.store import EventStore, deserialize
from core.model import ObjectRef, Status
from core.settings import DEFAULT_EVENT_SOURCES

ACCOUNT, REGION = "111122223333", "us-east-1"
START = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
BUCKET = "trail-bucket"


def log_key(t: datetime, n: int) -> str:
    return (f"AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/{t:%Y/%m/%d}/"
            f"{ACCOUNT}_CloudTrail_{REGION}_{t:%Y%m%dT%H%MZ}_{n:04d}abcd.json.gz")


def record(n: int) -> dict[str, Any]:
    return {"eventVersion": "1.08", "eventID": f"00000000-0000-4000-8000-{n:012d}",
            "eventTime": f"{START + timedelta(minutes=n):%Y-%m-%dT%H:%M:%SZ}", "eventSource": "opsworks.amazonaws.com",
            "eventName": "CreateLayer", "awsRegion": REGION, "recipientAccountId": ACCOUNT,
            "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/alice", "accountId": ACCOUNT},
            "requestParameters": {"stackId": "s-1", "name": f"layer {n}"}, "responseElements": {"layerId": f"l-{n}"}}


FILES = {
    # key -> the events it holds; events 1, 2 and 4 are delivered twice or three times
    log_key(START + timedelta(minutes=5), 1): [1, 2, 3],
    log_key(START + timedelta(minutes=5), 2): [2, 4],  # the same minute as file 1: the key decides
    log_key(START + timedelta(minutes=25), 3): [1, 4, 5],
    log_key(START + timedelta(minutes=45), 4): [4, 6],
}


def put_files(s3: Any) -> None:
    for key, numbers in FILES.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(json.dumps(
            {"Records": [record(n) for n in numbers]}).encode(), mtime=0))


def ingest(s3: Any, ddb: Any, table: str, keys: list[str]) -> None:
    pipeline = Pipeline(open=S3Source(s3).open, selection=Selection(frozenset(DEFAULT_EVENT_SOURCES)),
                        sink=TableSink(EventStore(ddb, table, sleep=lambda _: None)), max_decompressed_bytes=1 << 24)
    done: set[str] = set()
    for key in keys:
        outcome = pipeline.ingest(ObjectRef(BUCKET, key))
        assert outcome.status is (Status.SKIPPED if key in done else Status.INGESTED), outcome.reason
        done.add(key)


def snapshot(ddb: Any, table: str) -> list[dict[str, Any]]:
    """Every item of the table (a Scan: a test's view, not the product's), the times of ingest left out:
    `ingested_at` in event documents, `at` on the ledger entries."""
    items = []
    for page in ddb.get_paginator("scan").paginate(TableName=table):
        for raw in page["Items"]:
            item = deserialize(raw)
            if DOCUMENT in item or PACKED in item:
                event = dict(restore(item))
                event.pop("ingested_at")
                item.pop(PACKED, None)
                item[DOCUMENT] = encode(event)
            if item["sk"] == "FILE":
                item.pop("at")
            items.append(item)
    return sorted(items, key=lambda i: (i["pk"], i["sk"]))


def new_table(ddb: Any, definition: dict[str, Any]) -> str:
    name = f"events-{uuid.uuid4().hex[:8]}"
    ddb.create_table(TableName=name, **definition)
    return name


@pytest.fixture
def clients(moto_aws: None, table_definition: dict[str, Any]) -> tuple[Any, Any, dict[str, Any]]:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    put_files(s3)
    return s3, boto3.client("dynamodb", region_name="us-east-1"), table_definition


def in_order(clients: tuple[Any, Any, dict[str, Any]]) -> list[dict[str, Any]]:
    s3, ddb, definition = clients
    table = new_table(ddb, definition)
    ingest(s3, ddb, table, sorted(FILES))
    return snapshot(ddb, table)


def test_an_event_names_its_earliest_delivered_file_and_lists_every_file_holding_it(
        clients: tuple[Any, Any, dict[str, Any]]) -> None:
    s3, ddb, definition = clients
    table = new_table(ddb, definition)
    ingest(s3, ddb, table, sorted(FILES, reverse=True))
    events = {item["event_id"]: item for item in snapshot(ddb, table) if item["sk"] == "EVENT"}
    keys = sorted(FILES)
    for n in range(1, 7):
        holders = [k for k in keys if n in FILES[k]]
        item = events[f"00000000-0000-4000-8000-{n:012d}"]
        assert json.loads(item[DOCUMENT])["source_object"] == {"bucket": BUCKET, "key": holders[0]}
        assert item[SOURCE_FILES] == {f"s3://{BUCKET}/{k}" for k in holders}


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(sorted(FILES)), again=st.lists(st.sampled_from(sorted(FILES)), max_size=2))
def test_any_order_of_arrival_ends_in_the_same_table(clients: tuple[Any, Any, dict[str, Any]], order: list[str],
                                                     again: list[str]) -> None:
    s3, ddb, definition = clients
    expected = in_order(clients)
    table = new_table(ddb, definition)
    ingest(s3, ddb, table, [*order, *again])  # a redelivered file is skipped as already ingested
    assert snapshot(ddb, table) == expected


class AtomicCalls:
    """A client whose calls are each applied whole, as DynamoDB applies them: moto reads, changes and writes
    an item in separate steps with no lock, so two threads can lose each other's update inside one call.
    The writers still interleave freely between calls (the test on DynamoDB Local below has no such aid)."""

    def __init__(self, client: Any) -> None:
        self._client, self._lock = client, threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute) or name == "get_paginator":
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)
        return call


def concurrently(work: Callable[[str], None], keys: list[str]) -> None:
    with ThreadPoolExecutor(max_workers=len(keys)) as pool:
        for future in [pool.submit(work, key) for key in keys]:
            future.result()


def test_concurrent_writers_end_in_the_same_table_as_one_in_order(clients: tuple[Any, Any, dict[str, Any]]) -> None:
    s3, ddb, definition = clients
    expected = in_order(clients)
    atomic = AtomicCalls(ddb)
    for round_ in range(4):
        table = new_table(ddb, definition)
        concurrently(functools.partial(lambda t, key: ingest(s3, atomic, t, [key]), table),
                     sorted(FILES, reverse=bool(round_ % 2)))
        assert snapshot(ddb, table) == expected


@pytest.mark.dynamodb_local
def test_concurrent_writers_of_one_event_agree_on_dynamodb_local(
        dynamodb_local_table: tuple[Any, str]) -> None:
    """DynamoDB's own conditional writes (not moto's): eight writers of the same event from eight files."""
    ddb, table = dynamodb_local_table
    store = EventStore(ddb, table, sleep=lambda _: None)
    from core.ingest.catalog import load_catalog
    from core.ingest.items import event_items
    from core.ingest.normalize import normalize

    keys = [log_key(START + timedelta(minutes=5 * (i % 4)), i) for i in range(8)]
    events = [normalize(record(1), ObjectRef(BUCKET, key), load_catalog(), "2024-05-01T12:00:00Z") for key in keys]
    for _ in range(3):
        with ThreadPoolExecutor(max_workers=8) as pool:
            for future in [pool.submit(store.put_items, event_items(event)) for event in reversed(events)]:
                future.result()
    item = deserialize(ddb.get_item(TableName=table, Key={"pk": {"S": "EVENT#00000000-0000-4000-8000-000000000001"},
                                                          "sk": {"S": "EVENT"}})["Item"])
    earliest = min(keys, key=lambda k: source_rank({"bucket": BUCKET, "key": k}))
    assert json.loads(item[DOCUMENT])["source_object"]["key"] == earliest
    assert item[SOURCE_FILES] == {f"s3://{BUCKET}/{k}" for k in keys}


@given(st.lists(st.tuples(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1)),
                          st.integers(0, 9999)), min_size=2, max_size=6, unique=True))
def test_the_rank_orders_files_by_delivery_time_then_key(deliveries: list[tuple[datetime, int]]) -> None:
    keys = [log_key(t.replace(tzinfo=UTC), n) for t, n in deliveries]
    ranked = sorted(keys, key=lambda k: source_rank({"bucket": BUCKET, "key": k}))
    assert ranked == sorted(keys, key=lambda k: (k.rsplit("_", 2)[-2], k))
    assert source_rank({"key": "/tmp/local.json"}) > source_rank({"bucket": BUCKET, "key": keys[0]})
