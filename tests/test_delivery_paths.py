"""The handler in-process (moto S3 + a template-shaped moto table) on every delivery shape.

Acceptance of issue 4: the same held-out bucket, delivered through each shape, ends with every OpsWorks
event stored once; no shape reports a failure for a good file; Batch Operations answers carry one
result per task with the schema version it was called with; files no event announced are found by
`opsworks-trail ingest s3://bucket/`.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from workshop.synthetic import SampleManifest, upload_to_s3, write_sample_bucket

from conftest import EVENTS_DIR
from core.ingest.triggers import encode_key, eventbridge_object_created
from core.model import ObjectRef

Event = dict[str, Any]
Shape = Callable[[list[ObjectRef]], list[Event]]


# -- the shapes, built as AWS builds them --------------------------------------------------------------


def s3_record(ref: ObjectRef) -> Event:
    return {"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2024-05-05T05:30:12.511Z", "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "AWS:AROAEXAMPLE:regionalDeliverySession"},
            "requestParameters": {"sourceIPAddress": "10.0.0.1"}, "responseElements": {},
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "c",
                   "bucket": {"name": ref.bucket, "arn": f"arn:aws:s3:::{ref.bucket}",
                              "ownerIdentity": {"principalId": "A1"}},
                   "object": {"key": encode_key(ref.key), "size": ref.size, "eTag": ref.etag or "",
                              "sequencer": "00"}}}


def sns_envelope(message: str) -> str:
    return json.dumps({"Type": "Notification", "MessageId": str(uuid.uuid4()),
                       "TopicArn": "arn:aws:sns:us-east-1:111122223333:trail", "Message": message,
                       "Timestamp": "2024-05-05T05:30:12.702Z", "SignatureVersion": "1", "Signature": "x",
                       "SigningCertURL": "https://sns.us-east-1.amazonaws.com/x.pem", "UnsubscribeURL": "u"})


def sqs_event(bodies: list[str]) -> Event:
    return {"Records": [{"messageId": f"m-{i}", "receiptHandle": f"r-{i}", "body": body,
                         "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1714887012611",
                                        "SenderId": "S", "ApproximateFirstReceiveTimestamp": "1714887012618"},
                         "messageAttributes": {}, "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
                         "eventSource": "aws:sqs", "awsRegion": "us-east-1",
                         "eventSourceARN": "arn:aws:sqs:us-east-1:111122223333:ingest"}
                        for i, body in enumerate(bodies)]}


def in_sqs_batches(bodies: list[str]) -> list[Event]:
    return [sqs_event(bodies[i:i + 10]) for i in range(0, len(bodies), 10)]


def cloudtrail_notification(refs: list[ObjectRef]) -> list[str]:
    """CloudTrail lists the keys of several files in one notification, unencoded."""
    return [json.dumps({"s3Bucket": refs[0].bucket, "s3ObjectKey": [r.key for r in refs[i:i + 7]]})
            for i in range(0, len(refs), 7)]


def batch_operations(version: str, tasks_per_invocation: int = 1) -> Shape:
    def build(refs: list[ObjectRef]) -> list[Event]:
        events = []
        for i in range(0, len(refs), tasks_per_invocation):
            tasks = []
            for j, ref in enumerate(refs[i:i + tasks_per_invocation]):
                task: Event = {"taskId": f"task-{i + j}", "s3Key": encode_key(ref.key), "s3VersionId": None}
                if version == "1.0":
                    task["s3BucketArn"] = f"arn:aws:s3:::{ref.bucket}"
                else:
                    task["s3Bucket"] = ref.bucket
                tasks.append(task)
            job: Event = {"id": "job-1"} if version == "1.0" else {"id": "job-1", "userArguments": {}}
            events.append({"invocationSchemaVersion": version, "invocationId": f"inv-{i}", "job": job,
                           "tasks": tasks})
        return events
    return build


SHAPES: dict[str, Shape] = {
    "s3-direct": lambda refs: [{"Records": [s3_record(r)]} for r in refs],
    "sqs-s3": lambda refs: in_sqs_batches([json.dumps({"Records": [s3_record(r)]}) for r in refs]),
    "sqs-sns-s3": lambda refs: in_sqs_batches([sns_envelope(json.dumps({"Records": [s3_record(r)]}))
                                               for r in refs]),
    "sns-direct-cloudtrail": lambda refs: [
        {"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": "a",
                      "Sns": json.loads(sns_envelope(m))}]} for m in cloudtrail_notification(refs)],
    "sqs-cloudtrail-sns": lambda refs: in_sqs_batches([sns_envelope(m) for m in cloudtrail_notification(refs)]),
    "sqs-cloudtrail-raw": lambda refs: in_sqs_batches(cloudtrail_notification(refs)),
    "eventbridge-direct": lambda refs: [eventbridge_object_created(r) for r in refs],
    "sqs-eventbridge": lambda refs: in_sqs_batches([json.dumps(eventbridge_object_created(r)) for r in refs]),
    "batch-operations-1.0": batch_operations("1.0"),
    "batch-operations-2.0": batch_operations("2.0"),
    "batch-operations-2.0-many-tasks": batch_operations("2.0", tasks_per_invocation=5),
}


# -- fixtures ------------------------------------------------------------------------------------------


class FakeContext:
    function_name = "ingest"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:111122223333:function:ingest"
    aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


@pytest.fixture(scope="module")
def org_bucket(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SampleManifest]:
    root = tmp_path_factory.mktemp("org-bucket")
    return root, write_sample_bucket(root, files=60, seed=11, organization_id="o-abc123")


@pytest.fixture
def handler(moto_table: tuple[Any, str], moto_bucket: tuple[Any, str],
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """handlers.ingest wired to moto: its clients replaced, its pipeline rebuilt for this test's table."""
    import boto3

    import handlers.ingest as ingest

    client, table = moto_table
    monkeypatch.setenv("TABLE_NAME", table)
    monkeypatch.setattr(ingest, "s3_client", boto3.client("s3", region_name="us-east-1"))
    monkeypatch.setattr(ingest, "dynamodb_client", client)
    ingest.pipeline.cache_clear()
    yield ingest
    ingest.pipeline.cache_clear()


def upload(root: Path, s3: Any, bucket: str) -> list[ObjectRef]:
    upload_to_s3(root, s3, bucket)
    listed = s3.list_objects_v2(Bucket=bucket)  # <= 1000 keys in these samples
    assert not listed.get("IsTruncated")
    return [ObjectRef(bucket, o["Key"], o["Size"], o["ETag"].strip('"')) for o in listed["Contents"]]


def stored_event_ids(client: Any, table: str) -> list[str]:
    ids = []
    for page in client.get_paginator("scan").paginate(TableName=table):
        ids += [item["event_id"]["S"] for item in page["Items"] if item["sk"]["S"] == "EVENT"]
    return ids


def deliver(ingest: Any, events: list[Event]) -> list[str]:
    """Invoke the handler with each event; return every failure any reply reports."""
    failures = []
    for event in events:
        response = ingest.lambda_handler(event, FakeContext())
        failures += [f["itemIdentifier"] for f in response.get("batchItemFailures", [])]
        failures += [f"{r['taskId']}: {r['resultCode']} {r['resultString']}"
                     for r in response.get("results", []) if r["resultCode"] != "Succeeded"]
    return failures


# -- acceptance ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_held_out_bucket_delivered_through_each_shape_stores_every_event_once(
        shape: str, handler: Any, moto_bucket: tuple[Any, str], moto_table: tuple[Any, str],
        sample_bucket: tuple[Path, SampleManifest]) -> None:
    # Given the sample bucket in S3, and a notification for every object in it (digests, folders included)
    root, manifest = sample_bucket
    refs = upload(root, *moto_bucket)
    assert any(" " in r.key and "+" in r.key for r in refs), "the sample must hold a key with space and plus"
    # When every object is delivered through this shape
    failures = deliver(handler, SHAPES[shape](refs))
    # Then nothing failed, and the table holds exactly the expected events, each once
    assert failures == []
    ids = stored_event_ids(*moto_table)
    assert len(ids) == len(set(ids))
    assert set(ids) == set(manifest.expected)


@pytest.mark.parametrize("shape", ["sqs-s3", "sqs-cloudtrail-sns", "batch-operations-1.0"])
def test_organization_trail_keys_work_on_every_path(
        shape: str, handler: Any, moto_bucket: tuple[Any, str], moto_table: tuple[Any, str],
        org_bucket: tuple[Path, SampleManifest]) -> None:
    root, manifest = org_bucket
    refs = upload(root, *moto_bucket)
    assert all(r.key.startswith(("AWSLogs/o-abc123/", "my trail+logs/AWSLogs/o-abc123/")) for r in refs
               if "AWSLogs/" in r.key and r.key.count("/") > 3)
    assert deliver(handler, SHAPES[shape](refs)) == []
    assert set(stored_event_ids(*moto_table)) == set(manifest.expected)


def test_redelivery_through_another_shape_stores_nothing_twice(
        handler: Any, moto_bucket: tuple[Any, str], moto_table: tuple[Any, str],
        sample_bucket: tuple[Path, SampleManifest]) -> None:
    root, manifest = sample_bucket
    refs = upload(root, *moto_bucket)
    assert deliver(handler, SHAPES["sqs-eventbridge"](refs)) == []
    response = handler.lambda_handler(SHAPES["batch-operations-2.0-many-tasks"](refs[:5])[0], FakeContext())
    assert all(r["resultCode"] == "Succeeded" for r in response["results"])
    ids = stored_event_ids(*moto_table)
    assert sorted(ids) == sorted(manifest.expected)


def test_files_no_event_announced_are_found_by_ingest_of_the_bucket(
        handler: Any, moto_bucket: tuple[Any, str], moto_table: tuple[Any, str],
        sample_bucket: tuple[Path, SampleManifest]) -> None:
    from cli.main import main

    root, manifest = sample_bucket
    refs = upload(root, *moto_bucket)
    announced = refs[::3]
    assert deliver(handler, SHAPES["sqs-s3"](announced)) == []
    assert set(stored_event_ids(*moto_table)) < set(manifest.expected)
    client, table = moto_table
    code = main(["ingest", f"s3://{moto_bucket[1]}/", "--table", table, "--no-progress", "--workers", "1"])
    assert code == 0
    ids = stored_event_ids(client, table)
    assert sorted(ids) == sorted(manifest.expected)


# -- the events/ samples through the handler -----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(p.name for p in EVENTS_DIR.glob("*.json")))
def test_every_events_sample_is_handled_without_failure(
        name: str, handler: Any, moto_table: tuple[Any, str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    import boto3
    from workshop.invoke import SAMPLE_BUCKET, SAMPLE_FILES, SAMPLE_SEED

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=SAMPLE_BUCKET)
    write_sample_bucket(tmp_path, seed=SAMPLE_SEED, files=SAMPLE_FILES)
    upload_to_s3(tmp_path, s3, SAMPLE_BUCKET)
    event = json.loads((EVENTS_DIR / name).read_text())
    assert deliver(handler, [event]) == []
    stored = stored_event_ids(*moto_table)
    acknowledged_only = name in ("sqs-cloudtrail-validation.json", "sqs-s3-test-event.json")
    assert (stored == []) is acknowledged_only


def test_batch_operations_answer_echoes_the_schema_version_it_was_called_with(handler: Any) -> None:
    for name, version in (("batch-operations-v1.json", "1.0"), ("batch-operations-v2.json", "2.0")):
        event = json.loads((EVENTS_DIR / name).read_text())
        response = handler.lambda_handler(event, FakeContext())
        assert response["invocationSchemaVersion"] == version
        assert response["invocationId"] == event["invocationId"]
        assert response["treatMissingKeysAs"] == "PermanentFailure"
        assert [r["taskId"] for r in response["results"]] == [t["taskId"] for t in event["tasks"]]


# -- failures: only the failed message or task is reported -----------------------------------------------


@pytest.fixture
def three_objects(moto_bucket: tuple[Any, str], sample_bucket: tuple[Path, SampleManifest]) -> list[ObjectRef]:
    """Two good log files uploaded, and one announced key that is not (yet) in the bucket."""
    root, manifest = sample_bucket
    s3, bucket = moto_bucket
    good = manifest.keys_with_opsworks()[:2]
    for key in good:
        s3.put_object(Bucket=bucket, Key=key, Body=(root / key).read_bytes())
    missing = ObjectRef(bucket, "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/09/missing file+1.json.gz")
    return [ObjectRef(bucket, good[0]), missing, ObjectRef(bucket, good[1])]


def test_sqs_batch_reports_only_the_message_whose_object_is_missing(
        handler: Any, three_objects: list[ObjectRef], moto_table: tuple[Any, str]) -> None:
    event = sqs_event([json.dumps(eventbridge_object_created(r)) for r in three_objects])
    response = handler.lambda_handler(event, FakeContext())
    assert response["batchItemFailures"] == [{"itemIdentifier": "m-1"}]
    assert stored_event_ids(*moto_table)


def test_batch_operations_missing_key_is_a_temporary_failure_of_that_task_only(
        handler: Any, three_objects: list[ObjectRef]) -> None:
    event = batch_operations("1.0", tasks_per_invocation=3)(three_objects)[0]
    response = handler.lambda_handler(event, FakeContext())
    codes = [r["resultCode"] for r in response["results"]]
    assert codes == ["Succeeded", "TemporaryFailure", "Succeeded"]
    assert "not readable" in response["results"][1]["resultString"]


def test_s3_server_error_is_retried_and_a_corrupt_file_is_not(
        handler: Any, three_objects: list[ObjectRef], moto_bucket: tuple[Any, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    s3, bucket = moto_bucket
    corrupt = ObjectRef(bucket, "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/09/corrupt.json.gz")
    s3.put_object(Bucket=bucket, Key=corrupt.key, Body=b"\x1f\x8b\x08\x00 not really gzip")
    flaky = three_objects[0]
    real_get = handler.s3_client.get_object

    def get_object(**kwargs: Any) -> Any:
        if kwargs["Key"] == flaky.key:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "We encountered an internal error"},
                               "ResponseMetadata": {"HTTPStatusCode": 500}}, "GetObject")
        return real_get(**kwargs)

    monkeypatch.setattr(handler.s3_client, "get_object", get_object)
    handler.pipeline.cache_clear()
    event = batch_operations("2.0", tasks_per_invocation=3)([flaky, corrupt, three_objects[2]])[0]
    codes = [r["resultCode"] for r in handler.lambda_handler(event, FakeContext())["results"]]
    assert codes == ["TemporaryFailure", "PermanentFailure", "Succeeded"]


def test_unknown_sqs_message_goes_to_the_dead_letter_queue_and_the_rest_are_ingested(
        handler: Any, three_objects: list[ObjectRef], moto_table: tuple[Any, str],
        caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    good = [three_objects[0], three_objects[2]]
    bodies = [json.dumps(eventbridge_object_created(good[0])), '{"detail-type": "Scheduled Event"}',
              json.dumps(eventbridge_object_created(good[1]))]
    response = handler.lambda_handler(sqs_event(bodies), FakeContext())
    assert response["batchItemFailures"] == [{"itemIdentifier": "m-1"}]
    assert "SQS message m-1 announces no object in a known shape: not an S3, EventBridge" in caplog.text
    assert '"UnknownMessages":[1.0]' in capsys.readouterr().out
    assert stored_event_ids(*moto_table)


def test_validation_and_test_messages_are_acknowledged(handler: Any, moto_table: tuple[Any, str]) -> None:
    bodies = ["CloudTrail validation message.", sns_envelope("CloudTrail validation message."),
              json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"}),
              sns_envelope(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"}))]
    assert handler.lambda_handler(sqs_event(bodies), FakeContext()) == {"batchItemFailures": []}
    assert stored_event_ids(*moto_table) == []


def test_direct_invocation_with_a_missing_object_raises_so_lambda_retries(
        handler: Any, three_objects: list[ObjectRef]) -> None:
    with pytest.raises(handler.RetryLater, match="not readable"):
        handler.lambda_handler(eventbridge_object_created(three_objects[1]), FakeContext())
