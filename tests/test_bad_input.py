"""Every bad input ends in exactly one Outcome of the right class: permanent (recorded, never retried)
or transient (retried by the trigger, nothing recorded as failed)."""

from __future__ import annotations

import gzip
import io
import json
import random
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

from core.ingest.pipeline import Pipeline
from core.ingest.selection import Selection
from core.ingest.sinks import DryRunSink, TableSink
from core.ingest.sources import S3Source
from core.ingest.store import EventStore
from core.model import ObjectRef, Outcome, Status
from core.settings import DEFAULT_EVENT_SOURCES
from faults import (
    FlakyDynamoDB,
    bad_files,
    bomb,
    client_error,
    good_file,
    record,
    stored_event_ids,
)

BUCKET = "trail-bucket"
SELECTION = Selection(frozenset(DEFAULT_EVENT_SOURCES))


def ingest_bytes(data: bytes, store: EventStore | None = None, *, key: str = "AWSLogs/f.json.gz",
                 size: int | None = None, cap: int = 64 << 20) -> Outcome:
    sink = TableSink(store) if store is not None else DryRunSink()
    pipeline = Pipeline(open=lambda ref: io.BytesIO(data), selection=SELECTION, sink=sink,
                        max_decompressed_bytes=cap)
    return pipeline.ingest(ObjectRef(BUCKET, key, len(data) if size is None else size))


@pytest.fixture
def store(moto_table: tuple[Any, str]) -> EventStore:
    client, name = moto_table
    return EventStore(client, name, sleep=lambda _: None)


# -- permanent: the file itself is bad ----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(bad_files()))
def test_a_malformed_file_is_a_permanent_failure_recorded_with_its_reason(name: str, store: EventStore) -> None:
    data, fragment = bad_files()[name]
    key = f"AWSLogs/{name}.json.gz"

    outcome = ingest_bytes(data, store, key=key)

    assert (outcome.status, outcome.permanent, outcome.retry) == (Status.FAILED, True, False)
    assert fragment in outcome.reason
    [failure] = store.failed_files()
    assert (failure["bucket"], failure["key"], failure["status"]) == (BUCKET, key, "failed")
    assert failure["reason"] == outcome.reason


def test_a_failure_reason_never_quotes_the_file_text_around_a_parse_error(store: EventStore) -> None:
    """The parser's message shows the text near the error; a password sitting there must not be stored."""
    data = (b'{"Records":[{"eventVersion":"1.08","eventSource":"opsworks.amazonaws.com",'
            b'"requestParameters":{"password":"SECRET-near-the-error"} oops}]}')

    outcome = ingest_bytes(data, store, key="AWSLogs/leaky.json")

    assert outcome.permanent and "invalid JSON" in outcome.reason
    assert "SECRET" not in outcome.reason
    assert "SECRET" not in json.dumps(list(store.failed_files()), default=str)


def test_an_object_over_the_cap_by_its_listed_size_fails_without_being_read(store: EventStore) -> None:
    opened: list[ObjectRef] = []

    def open_object(ref: ObjectRef) -> Any:
        opened.append(ref)
        raise AssertionError("must not be read")

    pipeline = Pipeline(open=open_object, selection=SELECTION, sink=TableSink(store), max_decompressed_bytes=1000)
    outcome = pipeline.ingest(ObjectRef(BUCKET, "AWSLogs/huge.json.gz", size=5000))

    assert outcome.permanent and "over the cap" in outcome.reason
    assert opened == []
    assert [f["key"] for f in store.failed_files()] == ["AWSLogs/huge.json.gz"]


@pytest.mark.parametrize("fill", [b" ", b"\n"])
def test_a_decompression_bomb_stops_at_the_cap_in_bounded_memory(tmp_path: Path, fill: bytes,
                                                                  store: EventStore) -> None:
    data = bomb(tmp_path / "bomb.json.gz", inflated=96 << 20, fill=fill).read_bytes()

    tracemalloc.start()
    try:
        outcome = ingest_bytes(data, store, cap=32 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # Refused by a cap: the file's (32 MiB here) or, for a bomb of blank space, the record cap that comes first.
    assert outcome.permanent and "cap of" in outcome.reason
    assert peak < 24 << 20, f"peak {peak:,} bytes while inflating past a 32 MiB cap"


def test_a_bomb_of_zeros_is_rejected_at_its_first_bytes(tmp_path: Path, store: EventStore) -> None:
    data = bomb(tmp_path / "zeros.json.gz", inflated=64 << 20, fill=b"\0").read_bytes()

    outcome = ingest_bytes(data, store, cap=32 << 20)

    assert outcome.permanent and "invalid JSON" in outcome.reason


def _endless_record(head: bytes, inflated: int) -> bytes:
    """One record that never ends: a JSON string of 'a's, gzip-streamed."""
    import zlib

    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"a" * (1 << 20)
    parts = [compressor.compress(head)] + [compressor.compress(block) for _ in range(inflated >> 20)]
    return b"".join([*parts, compressor.flush()])


def test_one_endless_record_is_refused_in_bounded_memory() -> None:
    data = _endless_record(b'{"Records":[{"eventVersion":"1.08","x":"', 48 << 20)
    tracemalloc.start()
    try:
        outcome = ingest_bytes(data, cap=40 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert outcome.permanent
    assert peak < 24 << 20, f"peak {peak:,} bytes"


def test_one_endless_record_is_refused_in_linear_time() -> None:
    import time

    data = _endless_record(b'{"Records":[{"eventSource":"opsworks.amazonaws.com","x":"', 104 << 20)
    started = time.perf_counter()
    outcome = ingest_bytes(data, cap=96 << 20)
    elapsed = time.perf_counter() - started
    assert outcome.permanent and "cap" in outcome.reason
    assert elapsed < 2.5, f"{elapsed:.1f} s for 96 MiB"


def test_records_of_unforeseen_shape_fail_the_file_permanently_and_the_rest_is_stored(
        store: EventStore, moto_table: tuple[Any, str]) -> None:
    """A record whose fields have odd types is a property of the data: never a retry loop."""
    odd = record("odd-0001", eventTime=12345)
    data = json.dumps({"Records": [record("fine-0001"), odd, record("fine-0002")]}).encode()

    outcome = ingest_bytes(data, store, key="AWSLogs/odd.json")

    assert outcome.permanent and "1 selected record(s) unusable" in outcome.reason
    assert "first: event odd-0001: " in outcome.reason  # the record is named by its eventID
    assert stored_event_ids(*moto_table) == ["fine-0001", "fine-0002"]
    assert [f["key"] for f in store.failed_files()] == ["AWSLogs/odd.json"]


def test_an_event_source_that_is_not_a_string_is_simply_not_selected(store: EventStore) -> None:
    data = json.dumps({"Records": [record("a-1", eventSource=["opsworks.amazonaws.com"])]}, indent=1).encode()

    outcome = ingest_bytes(data, store, key="AWSLogs/list-source.json")

    assert (outcome.status, outcome.matched) == (Status.INGESTED, 0)


def test_numbers_dynamodb_cannot_hold_are_stored_as_text_not_retried_forever(
        store: EventStore, moto_table: tuple[Any, str]) -> None:
    numbers = '{"huge":1' + "0" * 40 + ',"precise":0.' + "1234567890" * 5 + ',"far":1.5e300,"nan":NaN}'
    text = json.dumps({"Records": [record("num-0001", requestParameters="@@")]}, separators=(",", ":"))
    data = text.replace('"@@"', numbers).encode()

    outcome = ingest_bytes(data, store, key="AWSLogs/numbers.json")

    assert outcome.status is Status.INGESTED, outcome.reason
    assert stored_event_ids(*moto_table) == ["num-0001"]


# -- S3: which read failures are transient --------------------------------------------------------------


class RaisingS3:
    """An S3 client whose get_object raises the given error."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def get_object(self, **_: Any) -> Any:
        raise self.error


@pytest.mark.parametrize(("error", "permanent", "fragment"), [
    (client_error("NoSuchKey", "GetObject", 404), False, "not readable (yet)"),
    (client_error("SlowDown", "GetObject", 503), False, "not answering"),
    (client_error("InternalError", "GetObject", 500), False, "not answering"),
    (client_error("ServiceUnavailable", "GetObject", 503), False, "not answering"),
    (ReadTimeoutError(endpoint_url="https://s3.amazonaws.com"), False, "not answering"),
    (ConnectTimeoutError(endpoint_url="https://s3.amazonaws.com"), False, "not answering"),
    (EndpointConnectionError(endpoint_url="https://s3.amazonaws.com"), False, "not answering"),
    (client_error("AccessDenied", "GetObject", 403), True, "access denied"),
    (client_error("KMS.AccessDeniedException", "GetObject", 403), True, "access denied"),
], ids=lambda v: getattr(v, "__class__", type(v)).__name__ if isinstance(v, Exception) else str(v))
def test_s3_read_failures_are_classified(error: Exception, permanent: bool, fragment: str,
                                         store: EventStore) -> None:
    """Access denied is permanent on purpose: retrying cannot fix IAM; an operator fixes the policy and runs
    `opsworks-trail retry-failures`. A missing key is transient: S3 may not show a new object at once."""
    pipeline = Pipeline(open=S3Source(RaisingS3(error)).open, selection=SELECTION, sink=TableSink(store),
                        max_decompressed_bytes=1 << 20)

    outcome = pipeline.ingest(ObjectRef(BUCKET, "AWSLogs/f.json.gz", 100))

    assert (outcome.status, outcome.permanent) == (Status.FAILED, permanent)
    assert fragment in outcome.reason
    assert [f["key"] for f in store.failed_files()] == (["AWSLogs/f.json.gz"] if permanent else [])


def test_a_connection_dropped_mid_read_is_transient_even_inside_the_json_parser(store: EventStore) -> None:
    from core.errors import TransientError

    data = json.dumps({"Records": [record(f"e-{i}") for i in range(50)]}, indent=2).encode()

    class Dropping(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            if self.tell() > 0:
                raise TransientError("s3://trail-bucket/f.json: reading the object failed: connection reset")
            return super().read(1000)

    pipeline = Pipeline(open=lambda ref: Dropping(data), selection=SELECTION, sink=TableSink(store),
                        max_decompressed_bytes=1 << 20)
    outcome = pipeline.ingest(ObjectRef(BUCKET, "AWSLogs/f.json", len(data)))

    assert (outcome.status, outcome.permanent, outcome.retry) == (Status.FAILED, False, True)
    assert list(store.failed_files()) == []


def test_a_connection_dropped_mid_read_is_transient_inside_the_gzip_reader(store: EventStore) -> None:
    """The S3 stream's error passes through isal's gzip reader unchanged: retried, not recorded."""
    noise = random.Random(5).randbytes(300_000).hex()  # does not compress: several reads of the object
    data = gzip.compress(json.dumps({"Records": [record("e-1", requestParameters={"noise": noise})]}).encode())
    assert len(data) > 3 * (64 << 10)

    class Body(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            if self.tell() > 100_000:
                raise ConnectionResetError("connection reset by peer")
            return super().read(size)

    class Client:
        def get_object(self, **_: Any) -> dict[str, Any]:
            return {"Body": Body(data)}

    pipeline = Pipeline(open=S3Source(Client()).open, selection=SELECTION, sink=TableSink(store),
                        max_decompressed_bytes=64 << 20)
    outcome = pipeline.ingest(ObjectRef(BUCKET, "AWSLogs/f.json.gz", len(data)))

    assert (outcome.status, outcome.permanent, outcome.retry) == (Status.FAILED, False, True)
    assert "reading the object failed: connection reset by peer" in outcome.reason
    assert list(store.failed_files()) == []


def test_a_missing_object_in_moto_s3_is_transient(moto_bucket: tuple[Any, str], store: EventStore) -> None:
    client, bucket = moto_bucket
    pipeline = Pipeline(open=S3Source(client).open, selection=SELECTION, sink=TableSink(store),
                        max_decompressed_bytes=1 << 20)

    outcome = pipeline.ingest(ObjectRef(bucket, "AWSLogs/not-there-yet.json.gz", 100))

    assert outcome.retry and "NoSuchKey" in outcome.reason


# -- DynamoDB: throttling is retried by botocore (store.RETRIES), then handed to the trigger ----------------


def test_throttling_past_the_store_budget_is_transient_and_nothing_is_marked(moto_table: tuple[Any, str]) -> None:
    client, name = moto_table
    flaky = FlakyDynamoDB(client, throttle_times=100)
    store = EventStore(flaky, name, max_attempts=4, sleep=lambda _: None)
    data, _ = good_file("thr", 5)

    outcome = ingest_bytes(data, store)

    assert outcome.retry and "ProvisionedThroughputExceededException" in outcome.reason
    assert store.file_state(ObjectRef(BUCKET, "AWSLogs/f.json.gz")) is None


def test_dynamodb_5xx_is_transient(moto_table: tuple[Any, str]) -> None:
    client, name = moto_table

    class Broken(FlakyDynamoDB):
        def batch_write_item(self, RequestItems: dict[str, list[Any]], **kwargs: Any) -> Any:
            raise client_error("InternalServerError", "BatchWriteItem", 500)

    data, _ = good_file("5xx", 2)
    outcome = ingest_bytes(data, EventStore(Broken(client), name, max_attempts=2, sleep=lambda _: None))

    assert outcome.retry and "InternalServerError" in outcome.reason


def test_a_failure_that_cannot_even_be_recorded_becomes_transient(moto_table: tuple[Any, str]) -> None:
    """Never acknowledged and unrecorded at once: if the failure state cannot be written, retry instead."""
    client, name = moto_table

    class NoPut(FlakyDynamoDB):  # a file's state is written by UpdateItem (it keeps the digests awaiting it)
        def put_item(self, **_: Any) -> Any:
            raise client_error("ProvisionedThroughputExceededException", "PutItem")

        def update_item(self, **_: Any) -> Any:
            raise client_error("ProvisionedThroughputExceededException", "UpdateItem")

    store = EventStore(NoPut(client), name, max_attempts=2, sleep=lambda _: None)

    outcome = ingest_bytes(b"garbage", store, key="AWSLogs/g.json")

    assert outcome.retry and "recording the failure failed too" in outcome.reason
