"""The pipeline end to end on moto S3 and a template-shaped moto table, and on local files."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws
from workshop.sample_digests import digest_key
from workshop.synthetic import SampleManifest, upload_to_s3

from core.ingest.items import restore
from core.ingest.pipeline import NoDigestCheck, Pipeline
from core.ingest.selection import Selection
from core.ingest.sinks import CollectingSink, DryRunSink, TableSink
from core.ingest.sources import LocalSource, S3Source
from core.ingest.store import EventStore, deserialize, serialize
from core.model import ObjectRef, Outcome, Status
from core.settings import DEFAULT_EVENT_SOURCES

OPSWORKS = Selection(frozenset(DEFAULT_EVENT_SOURCES))
CAP = 64 << 20
SKIP_REASONS = {"digest": "digest file", "insight": "Insights file", "folder": "folder placeholder",
                "not-a-log-file": "CloudTrail write check"}


def s3_pipeline(s3: Any, table: tuple[Any, str] | None, **kwargs: Any) -> Pipeline:
    sink = TableSink(EventStore(table[0], table[1], sleep=lambda _: None)) if table else DryRunSink()
    return Pipeline(open=S3Source(s3).open, selection=OPSWORKS, sink=sink, max_decompressed_bytes=CAP, **kwargs)


def ingest_bucket(pipeline: Pipeline, s3: Any, bucket: str) -> list[Outcome]:
    return [pipeline.ingest(ref) for ref in S3Source(s3).list(bucket)]


def scan_all(client: Any, table: str) -> list[dict[str, Any]]:
    """Tests may Scan moto to prove there is nothing else; product code only Queries."""
    items: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName=table):
        items += [deserialize(i) for i in page["Items"]]
    return items


def query_pk(client: Any, table: str, pk: str) -> list[dict[str, Any]]:
    return list(EventStore(client, table).query(KeyConditionExpression="pk = :p",
                                                ExpressionAttributeValues={":p": {"S": pk}}))


@pytest.fixture(scope="module")
def loaded(sample_bucket: tuple[Path, SampleManifest]) -> Iterator[tuple[SampleManifest, list[Outcome], Any, str,
                                                                          Any, str]]:
    """The sample bucket uploaded to moto S3 and ingested once into a template-shaped moto table.

    Module-scoped (uploading and ingesting takes seconds): the tests that use it only read the table, or
    prove that a second delivery changes nothing in it.
    """
    from template_schema import table_definition_from_template

    root, manifest = sample_bucket
    with pytest.MonkeyPatch.context() as env, mock_aws():
        for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                            ("AWS_DEFAULT_REGION", "us-east-1")):
            env.setenv(name, value)
        s3 = boto3.client("s3", region_name="us-east-1")
        # Names of its own: while this module runs, moto's state is shared with the function-scoped fixtures.
        s3.create_bucket(Bucket="loaded-trail-bucket")
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(TableName="loaded-events", **table_definition_from_template())
        upload_to_s3(root, s3, "loaded-trail-bucket")
        outcomes = ingest_bucket(s3_pipeline(s3, (client, "loaded-events")), s3, "loaded-trail-bucket")
        yield manifest, outcomes, s3, "loaded-trail-bucket", client, "loaded-events"


# -- skips ----------------------------------------------------------------------------------------


def test_every_non_log_key_is_skipped_with_its_reason_and_every_log_file_is_ingested(loaded: Any) -> None:
    manifest, outcomes, *_ = loaded
    by_key = {o.ref.key: o for o in outcomes}

    assert set(by_key) == set(manifest.log_keys) | set(manifest.skipped_keys) | set(manifest.folder_keys)
    for key, reason_class in manifest.skipped_keys.items():
        outcome = by_key[key]
        assert outcome.status is Status.SKIPPED, key
        assert outcome.reason.startswith(SKIP_REASONS[reason_class]), (key, outcome.reason)
    for key in manifest.folder_keys:
        assert by_key[key].status is Status.SKIPPED
        assert by_key[key].reason == "folder placeholder"
    for key in manifest.log_keys:
        assert by_key[key].status is Status.INGESTED, (key, by_key[key].reason)


def test_match_counts_agree_with_the_manifest_and_each_file_reports_its_inflated_size(
        loaded: Any, sample_bucket: tuple[Path, SampleManifest]) -> None:
    manifest, outcomes, *_ = loaded
    root, _ = sample_bucket

    assert sum(o.matched for o in outcomes) == manifest.opsworks_records
    for outcome in outcomes:
        if outcome.status is Status.INGESTED:
            assert outcome.records is None  # not counted unless asked
            assert outcome.bytes_read == len(gzip.decompress((root / outcome.ref.key).read_bytes()))
    assert sum(o.written for o in outcomes) == manifest.opsworks_records  # a redelivered event is rewritten


def test_asked_to_count_records_the_pipeline_counts_every_record_of_the_manifest(loaded: Any) -> None:
    manifest, _, s3, bucket, *_ = loaded

    outcomes = ingest_bucket(s3_pipeline(s3, None, count_records=True), s3, bucket)

    assert sum(o.records or 0 for o in outcomes) == manifest.records
    assert sum(o.matched for o in outcomes) == manifest.opsworks_records


# -- what is stored -------------------------------------------------------------------------------


def test_every_expected_event_is_stored_exactly_once_and_nothing_else(loaded: Any) -> None:
    manifest, _, _, _, client, table = loaded
    items = scan_all(client, table)

    events = [i for i in items if i["sk"] == "EVENT" and i["pk"].startswith("EVENT#")]
    counts = Counter(i["event_id"] for i in events)

    assert set(counts) == set(manifest.expected)
    assert set(counts.values()) == {1}
    assert not set(manifest.lookalike_event_ids) & {str(i.get("event_id")) for i in items}
    assert manifest.lookalike_event_ids  # the sample holds look-alikes, so the check above means something


def test_each_event_has_the_expected_fields_and_resources(loaded: Any) -> None:
    manifest, _, _, bucket, client, table = loaded

    for event_id, expected in manifest.expected.items():
        [item] = query_pk(client, table, f"EVENT#{event_id}")
        event = restore(item)
        assert event["event_source"] == expected.event_source
        assert event["event_name"] == expected.event_name
        assert event["event_time"] == expected.event_time
        assert event["account_id"] == expected.account_id
        assert event["region"] == expected.region
        assert event.get("error_code") == expected.error_code
        assert event["outcome"] == ("failure" if expected.error_code else "success")
        if expected.read_only is not None:
            assert event["read_only"] is expected.read_only
        assert sorted((r["type"], r["id"]) for r in event.get("resources", [])) == sorted(expected.resources)
        assert event["source_object"]["bucket"] == bucket
        assert event["source_object"]["key"] in expected.keys


def test_each_resource_of_an_event_has_a_link_item_under_the_resource(loaded: Any) -> None:
    manifest, _, _, _, client, table = loaded
    keys = {(i["pk"], i["sk"]): i for i in scan_all(client, table)}
    checked = 0

    for event_id, expected in manifest.expected.items():
        for rtype, rid in expected.resources:
            link = keys.get((f"RES#{rtype}#{rid}", f"{expected.event_time}#{event_id}"))
            assert link is not None, (event_id, rtype, rid)
            assert link["event_id"] == event_id
            checked += 1
    assert checked > 100
    stack = next(rid for e in manifest.expected.values() for rtype, rid in e.resources if rtype == "stack")
    assert query_pk(client, table, f"RES#stack#{stack}")  # and the product's Query finds them


def test_no_planted_secret_is_stored_anywhere(loaded: Any) -> None:
    manifest, _, _, _, client, table = loaded
    assert len(manifest.secrets) > 10
    text = "\n".join(json.dumps(restore(i), default=str) for i in scan_all(client, table))

    leaked = [s for s in manifest.secrets if s.value in text]

    assert leaked == []
    assert "redacted by opsworks-trail" in text


def test_an_event_delivered_in_two_files_is_stored_once(loaded: Any) -> None:
    manifest, _, _, _, client, table = loaded
    assert manifest.duplicate_event_ids

    for event_id in manifest.duplicate_event_ids:
        assert len(set(manifest.expected[event_id].keys)) >= 2
        assert len(query_pk(client, table, f"EVENT#{event_id}")) == 1


def test_every_log_file_is_marked_ingested_with_its_counts(loaded: Any) -> None:
    _, outcomes, _, _, client, table = loaded
    store = EventStore(client, table)

    for outcome in outcomes:
        if outcome.status is Status.INGESTED:
            state = store.file_state(outcome.ref)
            assert state is not None and state["status"] == "ingested"
            assert (state["bytes"], state["matched"]) == (outcome.bytes_read, outcome.matched)
            assert "records" not in state  # not counted
    assert list(store.failed_files()) == []


# -- idempotence ----------------------------------------------------------------------------------


def test_a_file_delivered_twice_writes_nothing_the_second_time(loaded: Any) -> None:
    manifest, _, s3, bucket, client, table = loaded
    before = scan_all(client, table)
    key = manifest.keys_with_opsworks()[0]
    ref = next(r for r in S3Source(s3).list(bucket, key) if r.key == key)

    again = s3_pipeline(s3, (client, table)).ingest(ref)

    assert again.status is Status.SKIPPED
    assert again.reason.startswith("already ingested")
    assert again.written == 0
    after = scan_all(client, table)
    assert sorted(json.dumps(i, sort_keys=True, default=str) for i in after) == \
        sorted(json.dumps(i, sort_keys=True, default=str) for i in before)


def test_a_whole_second_delivery_adds_no_item(loaded: Any) -> None:
    _, _, s3, bucket, client, table = loaded
    count = len(scan_all(client, table))

    outcomes = ingest_bucket(s3_pipeline(s3, (client, table)), s3, bucket)

    assert sum(o.written for o in outcomes) == 0
    assert len(scan_all(client, table)) == count


def test_a_key_with_new_content_is_read_again_and_rewrites_the_same_items(loaded: Any) -> None:
    manifest, _, s3, bucket, client, table = loaded
    count = len(scan_all(client, table))
    key = manifest.keys_with_opsworks()[0]
    ref = next(r for r in S3Source(s3).list(bucket, key) if r.key == key)

    again = s3_pipeline(s3, (client, table)).ingest(ObjectRef(ref.bucket, ref.key, ref.size, "another-etag"))

    assert again.status is Status.INGESTED
    assert again.written == again.matched > 0
    assert len(scan_all(client, table)) == count


# -- dry run, local files, failures ---------------------------------------------------------------


def test_a_dry_run_reads_and_normalizes_but_writes_nothing(sample_bucket: tuple[Path, SampleManifest],
                                                           moto_bucket: tuple[Any, str],
                                                           moto_table: tuple[Any, str]) -> None:
    root, manifest = sample_bucket
    s3, bucket = moto_bucket
    upload_to_s3(root, s3, bucket)

    pipeline = Pipeline(open=S3Source(s3).open, selection=OPSWORKS, sink=CollectingSink(), max_decompressed_bytes=CAP)
    outcomes = ingest_bucket(pipeline, s3, bucket)

    assert scan_all(*moto_table) == []
    assert sum(o.written for o in outcomes) == 0
    assert sum(o.matched for o in outcomes) == manifest.opsworks_records
    assert {e["event_id"] for o in outcomes for e in o.items} == set(manifest.expected)


def test_local_files_give_the_same_events(sample_bucket: tuple[Path, SampleManifest]) -> None:
    root, manifest = sample_bucket
    source = LocalSource()
    pipeline = Pipeline(open=source.open, selection=OPSWORKS, sink=CollectingSink(), max_decompressed_bytes=CAP)

    outcomes = [pipeline.ingest(ref) for ref in source.list(root)]

    events = [e for o in outcomes for e in o.items]
    assert {e["event_id"] for e in events} == set(manifest.expected)
    assert all(e["source_object"] == {"key": e["source_object"]["key"]} for e in events)
    assert all(e["source_object"]["key"].startswith(str(root)) for e in events)
    assert sum(1 for o in outcomes if o.status is Status.FAILED) == 0
    skipped = Counter(o.reason for o in outcomes if o.status is Status.SKIPPED)
    assert skipped["digest file"] == sum(1 for v in manifest.skipped_keys.values() if v == "digest")


def test_a_corrupt_file_fails_permanently_and_is_listed(moto_bucket: tuple[Any, str],
                                                        moto_table: tuple[Any, str]) -> None:
    s3, bucket = moto_bucket
    key = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1_x.json.gz"
    s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(b'{"Records":[')[:-8])
    [ref] = list(S3Source(s3).list(bucket, key))

    outcome = s3_pipeline(s3, moto_table).ingest(ref)

    assert outcome.status is Status.FAILED
    assert outcome.permanent is True and outcome.retry is False
    assert "truncated gzip" in outcome.reason
    [failed] = list(EventStore(*moto_table).failed_files())
    assert failed["key"] == key and failed["reason"] == outcome.reason


def test_a_selected_record_without_event_id_fails_the_file_but_keeps_the_rest(moto_bucket: tuple[Any, str],
                                                                             moto_table: tuple[Any, str]) -> None:
    s3, bucket = moto_bucket
    good = {"eventVersion": "1.09", "eventTime": "2024-03-01T10:15:30Z", "eventSource": "opsworks.amazonaws.com",
            "eventName": "DescribeStacks", "eventID": "good-1", "recipientAccountId": "111122223333"}
    bad = {k: v for k, v in good.items() if k != "eventID"}
    key = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/f.json.gz"
    s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(json.dumps({"Records": [good, bad]}).encode()))
    [ref] = list(S3Source(s3).list(bucket, key))

    outcome = s3_pipeline(s3, moto_table).ingest(ref)

    assert outcome.status is Status.FAILED and outcome.permanent
    assert "no eventID" in outcome.reason
    client, table = moto_table
    assert len(query_pk(client, table, "EVENT#good-1")) == 1


def test_a_missing_object_is_a_transient_failure_to_retry(moto_bucket: tuple[Any, str],
                                                          moto_table: tuple[Any, str]) -> None:
    s3, bucket = moto_bucket

    outcome = s3_pipeline(s3, moto_table).ingest(ObjectRef(bucket, "AWSLogs/1/CloudTrail/x.json.gz", 100))

    assert outcome.status is Status.FAILED
    assert outcome.retry is True
    assert list(EventStore(*moto_table).failed_files()) == []


def test_an_object_over_the_cap_fails_before_it_is_read() -> None:
    opened: list[ObjectRef] = []

    def refuse(ref: ObjectRef) -> Any:
        opened.append(ref)
        raise AssertionError("the object should not be opened")

    pipeline = Pipeline(open=refuse, selection=OPSWORKS, sink=DryRunSink(), max_decompressed_bytes=1000)

    outcome = pipeline.ingest(ObjectRef(None, "/tmp/huge.json.gz", 5000))

    assert outcome.status is Status.FAILED and outcome.permanent
    assert "over the cap" in outcome.reason
    assert opened == []


def test_stored_items_serialize_back_to_what_was_written(loaded: Any) -> None:
    """Every stored item is a valid DynamoDB item under the template's key schema (round trip)."""
    _, _, _, _, client, table = loaded

    for item in scan_all(client, table)[:200]:
        assert deserialize(serialize(item)) == item


DIGEST_KEY = digest_key("logs/", None, "111122223333", "us-east-1", datetime(2024, 5, 1, 12, 1, tzinfo=UTC))


class _RefusingOpener:
    """An opener that fails the test if the pipeline reads the object."""

    def __call__(self, ref: ObjectRef) -> Any:
        raise AssertionError(f"{ref.uri} was opened")


def test_without_a_digest_check_a_digest_file_is_skipped_unread_as_not_a_log_file() -> None:
    pipeline = Pipeline(open=_RefusingOpener(), selection=OPSWORKS, sink=DryRunSink(), max_decompressed_bytes=CAP)

    outcome = pipeline.ingest(ObjectRef("bucket", DIGEST_KEY, 512))

    assert isinstance(pipeline.digests, NoDigestCheck)
    assert (outcome.status, outcome.reason) == (Status.SKIPPED, SKIP_REASONS["digest"])


@given(st.text(max_size=300))
def test_no_digest_check_claims_no_key(key: str) -> None:
    assert NoDigestCheck().claims(key) is False


def test_asked_anyway_no_digest_check_skips_the_digest_saying_digests_are_not_checked() -> None:
    ref = ObjectRef("bucket", DIGEST_KEY, 512)

    outcome = NoDigestCheck().check(ref)

    assert (outcome.ref, outcome.status, outcome.reason) == (ref, Status.SKIPPED,
                                                             "digest file (digests are not checked)")


class _RecordingDigestCheck:
    """A DigestFiles that claims digest keys and records what it was asked to check."""

    def __init__(self) -> None:
        self.checked: list[str] = []

    def claims(self, key: str) -> bool:
        return key == DIGEST_KEY

    def check(self, ref: ObjectRef) -> Outcome:
        self.checked.append(ref.key)
        return Outcome(ref, Status.INGESTED, "digest verified")


def test_a_digest_check_gets_the_digest_files_it_claims_and_nothing_else(tmp_path: Path) -> None:
    digests = _RecordingDigestCheck()
    log = tmp_path / "111122223333_CloudTrail_us-east-1_20240501T1200Z_abc.json.gz"
    log.write_bytes(gzip.compress(b'{"Records": []}'))
    pipeline = Pipeline(open=LocalSource().open, selection=OPSWORKS, sink=DryRunSink(), max_decompressed_bytes=CAP,
                        digests=digests)

    outcomes = [pipeline.ingest(ObjectRef("bucket", DIGEST_KEY, 512)), pipeline.ingest(ObjectRef(None, str(log), 40))]

    assert digests.checked == [DIGEST_KEY]
    assert [o.status for o in outcomes] == [Status.INGESTED, Status.INGESTED]


def test_the_function_checks_digests_only_when_told_where_the_keys_come_from(tmp_path: Path) -> None:
    from core.ingest.proof import DigestCheck
    from handlers.ingest import digest_files

    store = EventStore(boto3.client("dynamodb", region_name="us-east-1"), "events")
    keys_file = tmp_path / "keys.json"
    keys_file.write_text('{"PublicKeyList": []}', encoding="utf-8")

    assert isinstance(digest_files(None, store), NoDigestCheck)
    checked = digest_files(str(keys_file), store)
    assert isinstance(checked, DigestCheck) and checked.claims(DIGEST_KEY) and not checked.claims(log_key())


def log_key() -> str:
    return "logs/AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/01/111122223333_CloudTrail_us-east-1_x.json.gz"
