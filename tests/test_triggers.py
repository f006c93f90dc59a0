"""Every delivery shape -> the objects it announces (pure: no AWS, no handler)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest
from workshop.invoke import SAMPLE_BUCKET, SAMPLE_FILES, SAMPLE_SEED

from conftest import EVENTS_DIR
from core.ingest.triggers import (
    BatchTask,
    Trigger,
    UnknownMessage,
    batch_response,
    batch_result,
    batch_tasks,
    encode_key,
    eventbridge_object_created,
    refs_from_event,
    refs_from_message,
    trigger_of,
)
from core.model import ObjectRef, Outcome, Status

PLUS_KEY = ("my trail+logs/AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/05/"
            "111122223333_CloudTrail_us-east-1_20240505T0525Z_EfTWGZSK9Vttdo2I.json.gz")
PLAIN_KEY = ("AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/01/"
             "111122223333_CloudTrail_us-east-1_20240501T0025Z_XiH5AOSU9bxiSsGp.json.gz")
WEST_KEY = ("AWSLogs/111122223333/CloudTrail/us-west-2/2024/05/02/"
            "111122223333_CloudTrail_us-west-2_20240502T1215Z_YSHtYyz8614MvXAX.json.gz")
EU_KEY = ("AWSLogs/444455556666/CloudTrail/eu-west-1/2024/05/01/"
          "444455556666_CloudTrail_eu-west-1_20240501T0730Z_z5vYz3qPmijBiFLf.json.gz")

#: events/ file -> the keys it announces, in order ([] = acknowledged, nothing to read).
EXPECTED_KEYS: dict[str, list[str]] = {
    "s3-put.json": [PLUS_KEY],
    "sqs-s3.json": [PLAIN_KEY, PLUS_KEY],
    "sqs-sns-s3.json": [PLUS_KEY],
    "sqs-cloudtrail-sns.json": [PLUS_KEY, WEST_KEY],
    "sqs-cloudtrail-raw.json": [PLUS_KEY, WEST_KEY],
    "sqs-cloudtrail-validation.json": [],
    "eventbridge-object-created.json": [PLUS_KEY],
    "sqs-eventbridge.json": [PLUS_KEY, EU_KEY],
    "batch-operations-v1.json": [PLUS_KEY],
    "batch-operations-v2.json": [WEST_KEY],
    "sqs-s3-test-event.json": [],
}


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS_DIR / name).read_text())
    return event


def announced(event: dict[str, Any]) -> list[ObjectRef]:
    """What a handler would read, whatever the trigger."""
    trigger = trigger_of(event)
    if trigger is Trigger.SQS:
        return [ref for record in event["Records"] for ref in refs_from_message(record["body"])]
    if trigger is Trigger.BATCH_OPERATIONS:
        return [task.ref for task in batch_tasks(event)]
    return refs_from_event(event)


API_CALL_EVENTS = {"eventbridge-api-call.json", "sqs-eventbridge-api-call.json"}
"""events/ files that hand over a record, not an object (the tripwire): tests/test_tripwire.py."""


def test_every_events_file_is_covered_here() -> None:
    assert sorted(p.name for p in EVENTS_DIR.glob("*.json")) == sorted([*EXPECTED_KEYS, *API_CALL_EVENTS])


@pytest.mark.parametrize("name", sorted(EXPECTED_KEYS))
def test_events_file_announces_its_decoded_keys(name: str) -> None:
    refs = announced(load_event(name))
    assert [ref.key for ref in refs] == EXPECTED_KEYS[name]
    assert {ref.bucket for ref in refs} <= {SAMPLE_BUCKET}


def test_events_files_name_objects_of_the_sample_bucket_make_invoke_serves(tmp_path: Path) -> None:
    from workshop.synthetic import write_sample_bucket

    manifest = write_sample_bucket(tmp_path, seed=SAMPLE_SEED, files=SAMPLE_FILES)
    keys = {key for keys in EXPECTED_KEYS.values() for key in keys}
    assert keys <= set(manifest.keys_with_opsworks())


def test_at_least_one_sample_needs_url_decoding_of_space_and_plus() -> None:
    raw = (EVENTS_DIR / "s3-put.json").read_text()
    assert "my+trail%2Blogs/" in raw


@pytest.mark.parametrize("key", ["a b/c+d.json.gz", "100% sure/ü.json.gz", "x%2By/+/ .json.gz", PLUS_KEY])
def test_encode_key_round_trips_through_unquote_plus(key: str) -> None:
    encoded = encode_key(key)
    assert " " not in encoded
    assert unquote_plus(encoded) == key


def test_eventbridge_event_built_for_backfill_is_read_back_as_the_same_object() -> None:
    ref = ObjectRef("b-1", "my trail+logs/AWSLogs/1/x y.json.gz", 10, "abc")
    body = json.dumps(eventbridge_object_created(ref))
    assert refs_from_message(body) == [ref]


def test_s3_notification_for_a_deleted_object_announces_nothing() -> None:
    event = load_event("s3-put.json")
    event["Records"][0]["eventName"] = "ObjectRemoved:Delete"
    assert refs_from_event(event) == []


def test_eventbridge_event_other_than_object_created_announces_nothing() -> None:
    event = load_event("eventbridge-object-created.json")
    event["detail-type"] = "Object Deleted"
    assert refs_from_event(event) == []


def test_sns_invoking_the_function_directly_is_unwrapped() -> None:
    message = json.dumps({"s3Bucket": "b-1", "s3ObjectKey": ["k1.json.gz", "k2.json.gz"]})
    event = {"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": "arn",
                          "Sns": {"Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:t",
                                  "Message": message, "Timestamp": "2024-05-01T00:00:00Z"}}]}
    assert [r.key for r in refs_from_event(event)] == ["k1.json.gz", "k2.json.gz"]


@pytest.mark.parametrize(("body", "reason"), [
    ("not json at all", "not JSON"),
    ("[1, 2]", "JSON list"),
    ('{"hello": "world"}', "keys: hello"),
    (json.dumps({"Type": "Notification", "TopicArn": "t", "Message": "plain text"}), "SNS Message is not JSON"),
    (json.dumps({"s3Bucket": "b-1", "s3ObjectKey": "one-key-not-a-list"}), "not a list of keys"),
    (json.dumps({"Records": [{"eventSource": "aws:dynamodb"}]}), "not aws:s3"),
])
def test_unknown_message_is_rejected_with_the_reason(body: str, reason: str) -> None:
    with pytest.raises(UnknownMessage, match=reason):
        refs_from_message(body)


def test_direct_invocation_in_no_known_shape_is_rejected() -> None:
    with pytest.raises(UnknownMessage, match="not an S3, EventBridge or CloudTrail notification"):
        refs_from_event({"detail-type": "Scheduled Event", "source": "aws.events"})


@pytest.mark.parametrize(("name", "trigger"), [
    ("s3-put.json", Trigger.DIRECT), ("eventbridge-object-created.json", Trigger.DIRECT),
    ("sqs-s3.json", Trigger.SQS), ("sqs-cloudtrail-validation.json", Trigger.SQS),
    ("batch-operations-v1.json", Trigger.BATCH_OPERATIONS), ("batch-operations-v2.json", Trigger.BATCH_OPERATIONS),
])
def test_trigger_kind_follows_the_event_shape(name: str, trigger: Trigger) -> None:
    assert trigger_of(load_event(name)) is trigger


def test_batch_operations_v1_takes_the_bucket_from_its_arn_and_v2_from_its_name() -> None:
    v1 = next(batch_tasks(load_event("batch-operations-v1.json")))
    v2 = next(batch_tasks(load_event("batch-operations-v2.json")))
    assert (v1.task_id, v1.ref.bucket) == ("dGFza2lkZ29lc2hlcmUK", SAMPLE_BUCKET)
    assert (v2.task_id, v2.ref.bucket) == ("dGFza2lkMg", SAMPLE_BUCKET)


def test_batch_operations_schema_version_other_than_1_and_2_is_rejected() -> None:
    event = load_event("batch-operations-v2.json")
    event["invocationSchemaVersion"] = "3.0"
    with pytest.raises(UnknownMessage, match=r"'3\.0' is not 1\.0 or 2\.0"):
        list(batch_tasks(event))


@pytest.mark.parametrize(("outcome", "code"), [
    (Outcome(ObjectRef("b", "k"), Status.INGESTED, written=3), "Succeeded"),
    (Outcome(ObjectRef("b", "k"), Status.SKIPPED, "digest file"), "Succeeded"),
    (Outcome(ObjectRef("b", "k"), Status.FAILED, "throttled", permanent=False), "TemporaryFailure"),
    (Outcome(ObjectRef("b", "k"), Status.FAILED, "corrupt gzip", permanent=True), "PermanentFailure"),
])
def test_batch_result_code_follows_the_outcome(outcome: Outcome, code: str) -> None:
    result = batch_result(BatchTask("t1", outcome.ref), outcome).asdict()
    assert result["taskId"] == "t1"
    assert result["resultCode"] == code
    assert result["resultString"]


def test_batch_result_string_is_kept_short() -> None:
    outcome = Outcome(ObjectRef("b", "k"), Status.FAILED, "x" * 5000, permanent=True)
    assert len(batch_result(BatchTask("t", outcome.ref), outcome).result_string or "") == 1000


def test_batch_response_echoes_version_and_id_with_one_result_per_task() -> None:
    event = load_event("batch-operations-v2.json")
    outcomes = [Outcome(ObjectRef("b", f"k{i}"), Status.INGESTED) for i in range(3)]
    results = [batch_result(BatchTask(f"t{i}", o.ref), o) for i, o in enumerate(outcomes)]
    response = batch_response(event, results)
    assert response["invocationSchemaVersion"] == "2.0"
    assert response["invocationId"] == event["invocationId"]
    assert response["treatMissingKeysAs"] == "PermanentFailure"
    assert [r["taskId"] for r in response["results"]] == ["t0", "t1", "t2"]
