"""A backfill hands the function log files and digests in any order: whatever the order, every digest ends
verified, every file it lists proven (or its alteration found once), every chain link judged; the
registries are written once per thing they register; a re-run stores nothing; `verify` then answers from
the stored verdicts without reading a digest again."""

from __future__ import annotations

import gzip
import io
import json
import random
import uuid
from contextlib import redirect_stdout
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from workshop.backfill_sample import OrganizationHistory
from workshop.recording import RecordingClient
from workshop.sample_digests import DigestSigner

from cli.main import main
from core.ingest.pipeline import Pipeline
from core.ingest.proof import DigestCheck
from core.ingest.publickeys import KeyRing
from core.ingest.selection import Selection
from core.ingest.sinks import TableSink
from core.ingest.store import EventStore, deserialize
from core.keys import ACCOUNTS_PK, AWAITING, PROOF_STREAMS_PK
from core.model import ObjectRef, Status
from core.read.verify import coverage_from_table, stored_verdicts
from core.settings import DEFAULT_EVENT_SOURCES

SIGNER = DigestSigner()
HISTORY = OrganizationHistory(accounts=2, regions=("us-east-1", "eu-west-1"), hours=3, per_hour=2, signer=SIGNER)


def new_table(client: Any, definition: dict[str, Any]) -> str:
    name = f"events-{uuid.uuid4().hex[:8]}"
    client.create_table(TableName=name, **definition)
    return name


def function(history: OrganizationHistory, client: Any, table: str) -> Pipeline:
    """The function's pipeline as the handler builds it, over the history's objects."""
    store = EventStore(client, table, sleep=lambda _: None)
    return Pipeline(open=history.open, selection=Selection(frozenset(DEFAULT_EVENT_SOURCES)),
                    sink=TableSink(store), max_decompressed_bytes=1 << 26,
                    digests=DigestCheck(history.fetch, KeyRing([SIGNER.public_key()]), store))


def scan(client: Any, table: str) -> list[dict[str, Any]]:
    items = [deserialize(i) for page in client.get_paginator("scan").paginate(TableName=table) for i in page["Items"]]
    return sorted(items, key=lambda i: (i["pk"], i["sk"]))


def digest_records(client: Any, table: str) -> list[dict[str, Any]]:
    return [i for i in scan(client, table) if str(i["sk"]).startswith("DIGEST#")]


def run(pipeline: Pipeline, refs: list[ObjectRef]) -> None:
    for ref in refs:
        outcome = pipeline.ingest(ref)
        assert outcome.status is not Status.FAILED, outcome.reason


@pytest.fixture
def ddb(moto_aws: None) -> Any:
    return boto3.client("dynamodb", region_name="us-east-1")


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(HISTORY.refs))
def test_any_order_of_a_backfill_ends_with_every_digest_verified_and_every_file_proven(
        ddb: Any, table_definition: dict[str, Any], order: list[ObjectRef]) -> None:
    table = new_table(ddb, table_definition)
    run(function(HISTORY, ddb, table), order)

    records = digest_records(ddb, table)
    assert len(records) == len(HISTORY.digests)
    assert all(r["status"] == "verified" and not r.get("findings") and AWAITING not in r for r in records)
    assert sum(int(r["proven"]) for r in records) == len(HISTORY.logs)
    linked = [r for r in records if r.get("previous_key")]
    assert len(linked) == len(HISTORY.digests) - HISTORY.streams  # all but the first of each chain
    assert all(r.get("chain") == "ok" for r in linked)
    assert not any(AWAITING in i for i in scan(ddb, table))  # every marker taken
    coverage = coverage_from_table(EventStore(ddb, table))
    assert [(s.verified, s.listed, s.ingested, s.pending, s.missing, s.findings) for s in coverage] == [
        (3, 6, 6, 0, 0, [])] * HISTORY.streams


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(HISTORY.refs), victim=st.sampled_from(sorted(HISTORY.logs)))
def test_an_altered_file_is_found_once_whichever_side_arrives_second(
        ddb: Any, table_definition: dict[str, Any], order: list[ObjectRef], victim: str) -> None:
    table = new_table(ddb, table_definition)
    history = OrganizationHistory(accounts=2, regions=("us-east-1", "eu-west-1"), hours=3, per_hour=2,
                                  signer=SIGNER)
    history.logs[victim] = gzip.compress(json.dumps({"Records": []}).encode())  # not what the digest lists
    run(function(history, ddb, table), order)

    findings = [f for r in digest_records(ddb, table) for f in r.get("findings") or []]
    assert len(findings) == 1 and victim in findings[0] and "altered" in findings[0]
    assert [k for r in digest_records(ddb, table) for k in r.get("altered") or []] == [victim]


def test_the_registries_are_written_once_per_stream_and_account_and_a_rerun_stores_nothing(
        ddb: Any, table_definition: dict[str, Any]) -> None:
    table = new_table(ddb, table_definition)
    recording = RecordingClient(ddb)
    refs = HISTORY.refs[::-1]  # digests first: every file is awaited, then settled by its ingest
    run(function(HISTORY, recording, table), refs)

    assert recording.stored[PROOF_STREAMS_PK] == HISTORY.streams
    assert recording.attempts[PROOF_STREAMS_PK] == HISTORY.streams
    assert recording.stored[ACCOUNTS_PK] == recording.attempts[ACCOUNTS_PK] == HISTORY.accounts
    assert max(recording.attempts.values()) <= 4 * 3 + 6  # a stream's partition: its digests and its files
    before = scan(ddb, table)

    recording.reset()
    run(function(HISTORY, recording, table), refs)  # a new container, the same objects again
    assert scan(ddb, table) == before
    assert sum(recording.stored.values()) == 0


def test_a_digest_redelivered_after_an_interrupted_check_completes_it(
        ddb: Any, table_definition: dict[str, Any]) -> None:
    table = new_table(ddb, table_definition)
    store = EventStore(ddb, table, sleep=lambda _: None)
    first = HISTORY.digests[0]
    check = DigestCheck(HISTORY.fetch, KeyRing([SIGNER.public_key()]), store)
    interrupted = check._follow_up  # the check stops after writing its record: no file is marked yet
    check._follow_up = lambda record, outcome: 0  # type: ignore[method-assign]
    check.check(ObjectRef(HISTORY.bucket, first.key))
    check._follow_up = interrupted  # type: ignore[method-assign]
    pipeline = function(HISTORY, ddb, table)
    assert pipeline.ingest(ObjectRef(HISTORY.bucket, first.key)).status is Status.SKIPPED  # the redelivery
    listed = [k for k in HISTORY.logs if k in gzip.decompress(first.body).decode()]
    run(pipeline, [ObjectRef(HISTORY.bucket, k) for k in listed])
    record = digest_records(ddb, table)[0]
    assert int(record["proven"]) == len(listed) and AWAITING not in record


def test_verify_answers_from_the_stored_verdicts_without_reading_the_bucket(
        ddb: Any, table_definition: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import cli.verify

    table = new_table(ddb, table_definition)
    run(function(HISTORY, ddb, table), HISTORY.refs[::-1])

    def no_s3(args: Any) -> Any:
        raise AssertionError("verify read the bucket")

    monkeypatch.setattr(cli.verify, "s3_client", no_s3)
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["verify", f"s3://{HISTORY.bucket}/", "--table", table, "--format", "json"]) == 0
    result = json.loads(out.getvalue())
    assert result["answered_from"] == "stored" and result["findings"] == 0
    assert [(s["digests"]["verified"], s["log_files"]["ingested"]) for s in result["streams"]] == [(3, 6)] * 4
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["verify", f"s3://{HISTORY.bucket}/", "--table", table]) == 0
    assert "Answered from the verdicts the function stored" in out.getvalue()


def test_stored_verdicts_cover_only_the_range_asked(ddb: Any, table_definition: dict[str, Any]) -> None:
    from datetime import UTC, datetime

    table = new_table(ddb, table_definition)
    run(function(HISTORY, ddb, table), HISTORY.refs)
    report = stored_verdicts(EventStore(ddb, table), bucket=HISTORY.bucket, account="100000000001",
                             since=datetime(2024, 5, 1, 1, 30, tzinfo=UTC))
    assert sorted(report.streams) == [("100000000001", "eu-west-1"), ("100000000001", "us-east-1")]
    assert report.total("digests") == 4  # the digests ending 02:01 and 03:01 of each Region


def test_the_bench_table_agrees_with_moto_on_a_shuffled_backfill(ddb: Any, table_definition: dict[str, Any]) -> None:
    """bench/backfill_digests.py counts writes on workshop/fake_table.py: the same items and writes as moto."""
    from workshop.fake_table import FakeTable

    random_order = HISTORY.refs
    random.Random(7).shuffle(random_order)
    table = new_table(ddb, table_definition)
    on_moto, on_fake = RecordingClient(ddb), RecordingClient(FakeTable())
    run(function(HISTORY, on_moto, table), random_order)
    run(function(HISTORY, on_fake, table), random_order)

    def comparable(items: Any) -> list[dict[str, Any]]:
        volatile = ("recorded_at", "at", "event")  # times, and the event document's ingested_at
        kept = [{k: v for k, v in deserialize(i).items() if k not in volatile} for i in items]
        return sorted(kept, key=lambda i: (i["pk"], i["sk"]))

    moto_items = [i for page in ddb.get_paginator("scan").paginate(TableName=table) for i in page["Items"]]
    assert comparable(on_fake.client.items.values()) == comparable(moto_items)
    assert on_fake.attempts == on_moto.attempts and on_fake.stored == on_moto.stored


@pytest.mark.parametrize("shape", ["batch-operations-2.0", "sqs-eventbridge"])
@pytest.mark.parametrize("checking", [True, False], ids=["digests-checked", "digests-off"])
def test_digests_handed_over_by_a_backfill_reach_the_check_or_are_skipped_cleanly(
        moto_table: tuple[Any, str], moto_bucket: tuple[Any, str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Any, shape: str, checking: bool) -> None:
    import handlers.ingest as ingest
    from test_delivery_paths import SHAPES, FakeContext

    ddb, table = moto_table
    s3, _ = moto_bucket
    history = OrganizationHistory(bucket="org-trail", accounts=1, hours=2, per_hour=1, signer=SIGNER)
    s3.create_bucket(Bucket=history.bucket)
    for key, body in history.logs.items():
        s3.put_object(Bucket=history.bucket, Key=key, Body=body)
    for d in history.digests:
        s3.put_object(Bucket=history.bucket, Key=d.key, Body=d.body, Metadata=d.metadata)
    monkeypatch.setenv("TABLE_NAME", table)
    if checking:
        keys = tmp_path / "keys.json"
        keys.write_text(json.dumps(SIGNER.listing()))
        monkeypatch.setenv("DIGEST_PUBLIC_KEYS", str(keys))
    else:
        monkeypatch.delenv("DIGEST_PUBLIC_KEYS", raising=False)
    monkeypatch.setattr(ingest, "s3_client", s3)
    monkeypatch.setattr(ingest, "dynamodb_client", ddb)
    ingest.pipeline.cache_clear()
    try:
        refs = history.refs[::-1]  # the digests first
        replies = [ingest.lambda_handler(event, FakeContext()) for event in SHAPES[shape](refs)]
    finally:
        ingest.pipeline.cache_clear()
    assert all(not r.get("batchItemFailures") for r in replies)
    results = [r for reply in replies for r in reply.get("results", [])]
    assert all(r["resultCode"] == "Succeeded" for r in results)
    coverage = coverage_from_table(EventStore(ddb, table))
    if checking:
        assert [(s.verified, s.listed, s.ingested, s.findings) for s in coverage] == [(2, 2, 2, [])]
        if results:
            assert sum("digest verified" in r["resultString"] for r in results) == 2
    else:
        assert coverage == []
        if results:
            assert sum(r["resultString"] == "skipped: digest file" for r in results) == 2


def test_a_files_failures_keep_the_digests_awaiting_it_until_its_ingest_takes_them(
        ddb: Any, table_definition: dict[str, Any]) -> None:
    from core.model import Outcome

    store = EventStore(ddb, new_table(ddb, table_definition), sleep=lambda _: None)
    ref = ObjectRef("org-trail", "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/01/f.json.gz", 10, "etag-1")
    marker = {"pk": "PROOF#111122223333#us-east-1", "sk": "DIGEST#x", "i": 3, "sha256": "ab" * 32, "digest": "d"}
    assert store.await_file(str(ref.bucket), ref.key, "d1", marker) is None
    store.count_attempt(ref, "unexpected KeyError", 3)
    store.mark_failed(ref, "not gzip")
    assert store.await_file(str(ref.bucket), ref.key, "d2", dict(marker, i=4)) is None  # a second digest
    assert store.file_state(ref)["status"] == "failed"  # type: ignore[index]

    ledgered = store.mark_ingested(Outcome(ref, Status.INGESTED, sha256="ab" * 32))
    assert ledgered.earlier is None and sorted(ledgered.awaiting) == ["d1", "d2"]
    assert [int(m["i"]) for _, m in sorted(ledgered.awaiting.items())] == [3, 4]
    entry = store.file_state(ref)
    assert entry is not None and AWAITING not in entry and "failed_pk" not in entry and "reason" not in entry
    assert store.await_file(str(ref.bucket), ref.key, "d3", marker) == entry  # ingested: no marker, its entry


def test_files_still_awaited_an_hour_after_their_digest_was_read_are_missing(
        ddb: Any, table_definition: dict[str, Any]) -> None:
    from datetime import UTC, datetime

    table = new_table(ddb, table_definition)
    digests_only = [r for r in HISTORY.refs if "CloudTrail-Digest" in r.key]
    run(function(HISTORY, ddb, table), digests_only)
    store = EventStore(ddb, table)
    now = stored_verdicts(store)
    assert (now.total("pending"), now.total("missing"), now.findings) == (len(HISTORY.logs), 0, [])
    later = stored_verdicts(store, now=datetime(2100, 1, 1, tzinfo=UTC))
    assert (later.total("pending"), later.total("missing")) == (0, len(HISTORY.logs))
    assert sorted(f.uri for f in later.findings) == sorted(f"s3://{HISTORY.bucket}/{k}" for k in HISTORY.logs)


@pytest.mark.parametrize("previous_first", [True, False], ids=["previous-first", "next-first"])
def test_a_broken_chain_is_found_once_whichever_digest_arrives_first(
        ddb: Any, table_definition: dict[str, Any], previous_first: bool) -> None:
    from datetime import datetime

    from workshop.sample_digests import SignedDigest, make_digest

    history = OrganizationHistory(accounts=1, hours=2, per_hour=1, signer=SIGNER)
    first, second = history.digests
    fields = json.loads(gzip.decompress(second.body))
    not_the_first = SignedDigest(first.key, b"", {"signature": "cd" * 256}, first.sha256)
    history.replace_digest(make_digest(SIGNER, history.bucket, second.key, str(fields["awsAccountId"]),
                                       datetime.fromisoformat(fields["digestStartTime"]),
                                       datetime.fromisoformat(fields["digestEndTime"]),
                                       [(f["s3Object"], f["hashValue"]) for f in fields["logFiles"]], not_the_first))
    table = new_table(ddb, table_definition)
    pipeline = function(history, ddb, table)
    digests = [ObjectRef(history.bucket, d.key) for d in ([first, second] if previous_first else [second, first])]
    outcomes = [pipeline.ingest(ref) for ref in digests]

    assert sum(any("chain broken" in f for f in o.findings) for o in outcomes) == 1
    records = digest_records(ddb, table)
    assert [r.get("chain") for r in records] == [None, "broken"]
    assert [f for r in records for f in r.get("findings") or []] == [
        f"s3://{history.bucket}/{second.key}: chain broken: previousDigestSignature is not the previous "
        f"digest's signature ({first.key})"]
    report = stored_verdicts(EventStore(ddb, table))
    assert report.total("chain_breaks") == 1 and [f.kind for f in report.findings] == ["chain"]


@pytest.mark.dynamodb_local
def test_on_dynamodb_local_a_shuffled_backfill_ends_proven_and_an_alteration_is_found_once(
        dynamodb_local_table: tuple[Any, str]) -> None:
    """The same conditions and updates (awaiting sets, map markers, conditional settlements) on the real
    emulator, which moto only imitates."""
    client, table = dynamodb_local_table
    history = OrganizationHistory(accounts=2, regions=("us-east-1", "eu-west-1"), hours=3, per_hour=2,
                                  signer=SIGNER)
    victim = sorted(history.logs)[5]
    history.logs[victim] = gzip.compress(json.dumps({"Records": []}).encode())
    order = history.refs
    random.Random(11).shuffle(order)
    run(function(history, client, table), order)

    records = digest_records(client, table)
    assert len(records) == len(history.digests) and all(r["status"] == "verified" for r in records)
    assert not any(AWAITING in i for i in scan(client, table))
    assert sum(int(r["proven"]) for r in records) == len(history.logs) - 1
    assert [k for r in records for k in r.get("altered") or []] == [victim]
    assert all(r.get("chain") == "ok" for r in records if r.get("previous_key"))
    ref = ObjectRef(history.bucket, victim)
    store = EventStore(client, table)
    store.mark_failed(ref, "not gzip")  # the state writes' SET and REMOVE of reserved names, on the emulator
    state = store.file_state(ref)
    assert state is not None and state["status"] == "failed" and "sha256" not in state
