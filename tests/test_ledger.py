"""The ledger: every file read leaves its SHA-256 (as digests list it), its sizes and when, computed in
the one read; a file without OpsWorks records costs two AWS requests, the GET and one write."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.ingest.pipeline import Pipeline, _ContentHash
from core.ingest.selection import Selection
from core.ingest.sinks import DryRunSink, TableSink
from core.ingest.sources import S3Source
from core.ingest.store import EventStore
from core.model import ObjectRef, Status
from core.settings import DEFAULT_EVENT_SOURCES

OPSWORKS = Selection(frozenset(DEFAULT_EVENT_SOURCES))
KEY = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/01/111122223333_CloudTrail_us-east-1_20240501T1005Z_a.json.gz"


def record(source: str, n: int) -> dict[str, Any]:
    return {"eventVersion": "1.08", "eventID": f"00000000-0000-0000-0000-{n:012d}", "eventTime": "2024-05-01T10:00:00Z",
            "eventSource": source, "eventName": "DescribeStacks", "awsRegion": "us-east-1",
            "recipientAccountId": "111122223333", "userIdentity": {"type": "Root", "accountId": "111122223333"}}


def log_file(sources: list[str]) -> tuple[bytes, str]:
    content = json.dumps({"Records": [record(s, i) for i, s in enumerate(sources)]}).encode()
    return gzip.compress(content), hashlib.sha256(content).hexdigest()


class Calls:
    """Counts every AWS request the clients send (botocore's before-call event)."""

    def __init__(self, *clients: Any) -> None:
        self.made: Counter[str] = Counter()
        for client in clients:
            client.meta.events.register("before-call.*.*", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.made[model.name] += 1

    def take(self) -> Counter[str]:
        made, self.made = self.made, Counter()
        return made


@pytest.fixture
def world(moto_bucket: tuple[Any, str], moto_table: tuple[Any, str]) -> tuple[Any, str, Any, str, Pipeline, Calls]:
    s3, bucket = moto_bucket
    ddb, table = moto_table
    pipeline = Pipeline(open=S3Source(s3).open, selection=OPSWORKS, sink=TableSink(EventStore(ddb, table)),
                        max_decompressed_bytes=64 << 20)
    return s3, bucket, ddb, table, pipeline, Calls(s3, ddb)


def put(s3: Any, bucket: str, key: str, body: bytes) -> ObjectRef:
    etag = s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"].strip('"')
    return ObjectRef(bucket, key, len(body), etag)


def state(world: tuple[Any, ...], key: str = KEY) -> dict[str, Any]:
    _, bucket, ddb, table, _, _ = world
    item = EventStore(ddb, table).get_item({"pk": f"FILE#{bucket}/{key}", "sk": "FILE"})
    assert item is not None
    return item


def test_a_file_without_opsworks_costs_the_get_and_one_write_and_leaves_its_ledger_entry(world: Any) -> None:
    s3, bucket, _, _, pipeline, calls = world
    body, sha = log_file(["ec2.amazonaws.com"] * 5)
    ref = put(s3, bucket, KEY, body)
    calls.take()
    outcome = pipeline.ingest(ref)
    assert outcome.status is Status.INGESTED and outcome.sha256 == sha
    assert calls.take() == {"GetObject": 1, "UpdateItem": 1}  # the ledger entry, taking any awaiting digests
    entry = state(world)
    assert (entry["sha256"], entry["size"], entry["bytes"], entry["etag"]) == (
        sha, len(body), len(gzip.decompress(body)), ref.etag)
    assert entry["at"].endswith("Z")


def test_a_redelivered_file_costs_two_requests_and_changes_nothing(world: Any) -> None:
    s3, bucket, _, _, pipeline, calls = world
    ref = put(s3, bucket, KEY, log_file(["ec2.amazonaws.com"])[0])
    pipeline.ingest(ref)
    first = state(world)
    calls.take()
    again = pipeline.ingest(ref)
    assert again.status is Status.SKIPPED and again.reason == f"already ingested at {first['at']}"
    assert calls.take() == {"GetObject": 1, "UpdateItem": 1}  # the ledger entry, taking any awaiting digests
    assert state(world) == first


def test_a_file_with_opsworks_is_checked_before_its_events_are_written_again(world: Any) -> None:
    s3, bucket, ddb, table, pipeline, calls = world
    body, sha = log_file(["opsworks.amazonaws.com", "ec2.amazonaws.com", "opsworks-cm.amazonaws.com"])
    ref = put(s3, bucket, KEY, body)
    outcome = pipeline.ingest(ref)
    assert (outcome.status, outcome.written, state(world)["sha256"]) == (Status.INGESTED, 2, sha)
    event = EventStore(ddb, table).get_item({"pk": f"EVENT#{record('x', 0)['eventID']}", "sk": "EVENT"})
    calls.take()
    again = pipeline.ingest(ref)
    assert again.status is Status.SKIPPED and again.reason.startswith("already ingested at")
    assert "BatchWriteItem" not in calls.take()
    assert EventStore(ddb, table).get_item({"pk": f"EVENT#{record('x', 0)['eventID']}", "sk": "EVENT"}) == event


def test_a_file_edited_in_the_bucket_is_read_again_and_its_new_hash_recorded(world: Any) -> None:
    s3, bucket, _, _, pipeline, _ = world
    pipeline.ingest(put(s3, bucket, KEY, log_file(["ec2.amazonaws.com"])[0]))
    edited, sha = log_file(["ec2.amazonaws.com", "s3.amazonaws.com"])
    outcome = pipeline.ingest(put(s3, bucket, KEY, edited))
    assert outcome.status is Status.INGESTED and state(world)["sha256"] == sha


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.lists(st.dictionaries(st.sampled_from(["eventSource", "eventName", "x", "eventID"]),
                                        st.one_of(st.text(max_size=30), st.integers(), st.none()), max_size=4),
                        max_size=30),
       compressed=st.booleans(), pad=st.integers(0, 3 << 20))
def test_the_hash_is_of_the_decompressed_content_read_once(records: list[dict[str, Any]], compressed: bool,
                                                           pad: int) -> None:
    content = json.dumps({"Records": records, "pad": "x" * (pad if pad > (2 << 20) else 0)}).encode()
    body = gzip.compress(content, compresslevel=1) if compressed else content
    opened: list[int] = []

    def open_object(ref: ObjectRef) -> Any:
        opened.append(1)
        return io.BytesIO(body)

    pipeline = Pipeline(open=open_object, selection=Selection(None), sink=DryRunSink(keeps_ledger=True),
                        max_decompressed_bytes=64 << 20)
    outcome = pipeline.ingest(ObjectRef(None, "f.json.gz" if compressed else "f.json", len(body)))
    if outcome.status is Status.INGESTED:
        assert outcome.sha256 == hashlib.sha256(content).hexdigest()
        assert outcome.bytes_read == len(content)


def test_a_dry_run_keeps_no_ledger_so_it_hashes_nothing() -> None:
    record = {"eventVersion": "1.08", "eventSource": "opsworks.amazonaws.com", "eventID": "a",
              "eventName": "DescribeStacks", "eventTime": "2024-01-01T00:00:00Z", "awsRegion": "us-east-1",
              "recipientAccountId": "111122223333", "userIdentity": {"type": "Root"}}
    content = json.dumps({"Records": [record]}).encode()
    pipeline = Pipeline(open=lambda ref: io.BytesIO(content), selection=OPSWORKS, sink=DryRunSink(),
                        max_decompressed_bytes=64 << 20)

    outcome = pipeline.ingest(ObjectRef(None, "f.json"))

    assert outcome.status is Status.INGESTED and outcome.matched == 1
    assert outcome.sha256 is None


def test_the_hash_starts_again_when_the_stream_is_reopened() -> None:
    content = b'{"Records": [' + b",".join(b'{"n": %d}' % i for i in range(200_000)) + b"]}"
    pipeline = Pipeline(open=lambda ref: io.BytesIO(gzip.compress(content, 1)), selection=OPSWORKS, sink=DryRunSink(),
                        max_decompressed_bytes=64 << 20)
    ref = ObjectRef(None, "f.json.gz")
    hashed = _ContentHash()
    first = pipeline._read(ref, hashed)
    next(first)  # the fast path read a chunk, then hands the file to the exact parser
    second = pipeline._read(ref, hashed)
    assert b"".join(bytes(c) for c in second) == content
    first.close()
    assert hashed.sha256 == hashlib.sha256(content).hexdigest()


def test_an_unfinished_read_leaves_no_hash() -> None:
    pipeline = Pipeline(open=lambda ref: io.BytesIO(gzip.compress(b"x" * (4 << 20))), selection=OPSWORKS,
                        sink=DryRunSink(), max_decompressed_bytes=64 << 20)
    hashed = _ContentHash()
    chunks = pipeline._read(ObjectRef(None, "f.json.gz"), hashed)
    next(chunks)
    chunks.close()
    assert hashed.sha256 is None
