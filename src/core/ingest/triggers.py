"""Trigger events -> the S3 objects they announce. Pure: no I/O.

Every way a new log file can reach the function, and how each encodes the object key:

| shape                                   | arrives                      | key                         |
|-----------------------------------------|------------------------------|-----------------------------|
| S3 event notification `{"Records"}`     | direct, SQS body, SNS Message| URL-encoded (`+` = space)   |
| S3 test event `{"Event": "s3:TestEvent"}`| direct, SQS body, SNS Message| none: acknowledged          |
| EventBridge "Object Created" (aws.s3)   | direct, SQS body             | URL-encoded, decoded as S3's|
| CloudTrail SNS `{"s3Bucket","s3ObjectKey"}`| SQS (SNS envelope or raw) | as written: not encoded     |
| "CloudTrail validation message."        | SQS (SNS envelope or raw)    | none: acknowledged          |
| SNS envelope `{"Type": "Notification"}` | SQS body (raw delivery off)  | its Message is one of above |
| S3 Batch Operations 1.0 / 2.0           | direct (synchronous)         | URL-encoded                 |
| EventBridge "AWS API Call via CloudTrail"| SQS body, direct            | none: the record itself     |

Keys are decoded with `unquote_plus`, as the Powertools data classes do, so a space sent as `+`
and a plus sent as `%2B` both come back as the real key. CloudTrail's own notification lists the
keys it wrote, unencoded, and they are taken as they are.

An "AWS API Call via CloudTrail" event (the tripwire's rule, `Tripwire=true`) announces no object: its
`detail` is the CloudTrail record, stored from the message itself (ApiCall; core.ingest.records).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal
from urllib.parse import quote, unquote_plus

from aws_lambda_powertools.utilities.data_classes import (
    S3BatchOperationEvent,
    S3Event,
    S3EventBridgeNotificationEvent,
    SNSEvent,
)
from aws_lambda_powertools.utilities.data_classes.s3_batch_operation_event import (
    S3BatchOperationResponseRecord,
)

from core.errors import BadTrailFile
from core.model import ObjectRef, Outcome, Status

CLOUDTRAIL_VALIDATION_MESSAGE = "CloudTrail validation message."
"""What CloudTrail publishes to a trail's SNS topic when the topic is first configured."""
TEST_EVENT = "s3:TestEvent"
"""What S3 sends when a notification configuration is saved."""
RESULT_STRING_MAX = 1000
"""Batch Operations puts resultString in its completion report; keep it short."""

ResultCode = Literal["Succeeded", "TemporaryFailure", "PermanentFailure"]


class UnknownMessage(BadTrailFile):
    """A message that announces no object in a shape this function knows: it can never succeed."""


API_CALL_DETAIL_TYPE = "AWS API Call via CloudTrail"
"""EventBridge's detail-type for a management event CloudTrail delivers as it happens."""


@dataclass(frozen=True)
class ApiCall:
    """One CloudTrail record EventBridge delivered as the call happened: stored from the message, no log
    file read. Its event id is the record's eventID, so the trail file that later holds the same record
    writes the same item."""

    record: dict[str, Any]
    origin: ObjectRef
    """The stored event's source_object: no bucket, key `eventbridge:<account>:<region>` (no log file
    names it; `records_origin`)."""


Delivery = ObjectRef | ApiCall
"""What a message hands the function: an object to read, or a record to store as it is."""


def records_origin(kind: str, account: str, region: str) -> ObjectRef:
    """Where records that came without a log file came from, as the source_object of their events:
    `<kind>:<account>:<region>` (kind `eventbridge` or `lookup-events`), with no bucket. It holds a
    colon and no slash, so it never reads as a trail file's key; like a local file, no file state is kept
    for it."""
    return ObjectRef(None, f"{kind}:{account}:{region}")


class Trigger(Enum):
    SQS = "sqs"
    BATCH_OPERATIONS = "batch-operations"
    DIRECT = "direct"
    """S3, SNS or EventBridge invoking the function with the notification itself."""


def trigger_of(event: Mapping[str, Any]) -> Trigger:
    """Which kind of invocation this is; it decides the shape of the reply."""
    if "invocationSchemaVersion" in event and "tasks" in event:
        return Trigger.BATCH_OPERATIONS
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict) \
            and records[0].get("eventSource") == "aws:sqs":
        return Trigger.SQS
    return Trigger.DIRECT


def is_sqs_event(event: Mapping[str, Any]) -> bool:
    return trigger_of(event) is Trigger.SQS


# -- notifications ---------------------------------------------------------------------------------


def refs_from_event(event: Mapping[str, Any]) -> list[ObjectRef]:
    """The objects a direct invocation announces (S3, SNS or EventBridge invoking the function)."""
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict) \
            and records[0].get("EventSource") == "aws:sns":
        return [ref for record in SNSEvent(dict(event)).records for ref in refs_from_message(record.sns.message)]
    return refs_from_document(event)


def refs_from_message(body: str) -> list[ObjectRef]:
    """The objects an SQS message body (or an SNS Message) announces."""
    message = _notification(body, "the message body")
    if message is None:
        return []
    if _is_sns_envelope(message):
        inner = message["Message"]
        if not isinstance(inner, str):
            raise UnknownMessage("the SNS envelope's Message is not a string")
        message = _notification(inner, "the SNS Message")
        if message is None:
            return []
        if _is_sns_envelope(message):
            raise UnknownMessage("the SNS Message is not an S3 or CloudTrail notification object")
    return refs_from_document(message)


def _notification(text: str, what: str) -> dict[str, Any] | None:
    """A message text as a JSON object; None for CloudTrail's validation message (nothing to ingest)."""
    if text.strip() == CLOUDTRAIL_VALIDATION_MESSAGE:
        return None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UnknownMessage(f"{what} is not JSON ({exc}): {text[:80]!r}") from exc
    if not isinstance(document, dict):
        raise UnknownMessage(f"{what} is a JSON {type(document).__name__}, not an object")
    return document


def refs_from_document(document: Mapping[str, Any]) -> list[ObjectRef]:
    """The objects one notification document announces, whatever its shape."""
    if document.get("Event") == TEST_EVENT:
        return []
    if isinstance(document.get("Records"), list):
        return refs_from_s3_event(document)
    if document.get("source") == "aws.s3" and "detail" in document:
        return refs_from_eventbridge(document)
    if "s3Bucket" in document and "s3ObjectKey" in document:
        return refs_from_cloudtrail_notification(document)
    keys = ", ".join(sorted(str(k) for k in document)[:8])
    raise UnknownMessage(f"not an S3, EventBridge or CloudTrail notification (keys: {keys})")


def refs_from_s3_event(event: Mapping[str, Any]) -> list[ObjectRef]:
    """An S3 event notification's created objects; keys arrive URL-encoded (`+` for space) and are decoded."""
    if event.get("Event") == TEST_EVENT:
        return []
    refs = []
    for record in S3Event(dict(event)).records:
        if record.get("eventSource") != "aws:s3":
            raise UnknownMessage(f"a Records entry from {record.get('eventSource')!r}, not aws:s3")
        if not record.event_name.startswith("ObjectCreated"):
            continue
        obj = record.s3.get_object
        refs.append(ObjectRef(record.s3.bucket.name, unquote_plus(obj.key), obj.get("size"), obj.etag or None))
    return refs


def refs_from_eventbridge(event: Mapping[str, Any]) -> list[ObjectRef]:
    """An EventBridge "Object Created" event from S3 (other S3 events announce nothing to read)."""
    if event.get("detail-type") != "Object Created":
        return []
    detail = S3EventBridgeNotificationEvent(dict(event)).detail
    try:
        bucket, obj = detail.bucket.name, detail.object
        return [ObjectRef(bucket, obj.key, obj.size, obj.get("etag") or None)]
    except (KeyError, TypeError) as exc:
        raise UnknownMessage(f"an EventBridge Object Created event without detail.bucket.name "
                             f"or detail.object.key: {exc}") from exc


def refs_from_cloudtrail_notification(document: Mapping[str, Any]) -> list[ObjectRef]:
    """CloudTrail's SNS notification: the bucket and the keys it just wrote, not URL-encoded."""
    bucket, keys = document.get("s3Bucket"), document.get("s3ObjectKey")
    if not isinstance(bucket, str) or not bucket:
        raise UnknownMessage("a CloudTrail notification whose s3Bucket is not a bucket name")
    if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
        raise UnknownMessage("a CloudTrail notification whose s3ObjectKey is not a list of keys")
    return [ObjectRef(bucket, key) for key in keys]


def _is_sns_envelope(message: Mapping[str, Any]) -> bool:
    return message.get("Type") == "Notification" and "Message" in message and "TopicArn" in message


# -- API calls (the tripwire) ---------------------------------------------------------------------


def is_api_call(document: Mapping[str, Any]) -> bool:
    return document.get("detail-type") == API_CALL_DETAIL_TYPE and "detail" in document


def api_call(document: Mapping[str, Any]) -> ApiCall:
    """The CloudTrail record of an "AWS API Call via CloudTrail" event, and where it came from."""
    record = document.get("detail")
    if not isinstance(record, dict):
        raise UnknownMessage(f"an {API_CALL_DETAIL_TYPE!r} event whose detail is not a CloudTrail record "
                             f"(a JSON {type(record).__name__})")
    account = document.get("account") or record.get("recipientAccountId")
    region = document.get("region") or record.get("awsRegion")
    return ApiCall(record, records_origin("eventbridge", str(account or "unknown"), str(region or "unknown")))


def deliveries_from_message(body: str) -> list[Delivery]:
    """What an SQS message body hands the function: an API call's record, else the objects it announces
    (refs_from_message). The S3 path pays one substring test."""
    if API_CALL_DETAIL_TYPE in body:
        document = _notification(body, "the message body")
        if document is not None and is_api_call(document):
            return [api_call(document)]
    return list(refs_from_message(body))


def deliveries_from_event(event: Mapping[str, Any]) -> list[Delivery]:
    """A direct invocation's API call (an EventBridge rule targeting the function), else its objects."""
    if is_api_call(event):
        return [api_call(event)]
    return list(refs_from_event(event))


# -- S3 Batch Operations ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchTask:
    task_id: str
    ref: ObjectRef


def batch_tasks(event: Mapping[str, Any]) -> Iterator[BatchTask]:
    """One task per object: schema 1.0 names the bucket by ARN, 2.0 by name; keys are URL-encoded."""
    batch = S3BatchOperationEvent(dict(event))
    if batch.invocation_schema_version not in ("1.0", "2.0"):
        raise UnknownMessage(f"S3 Batch Operations invocationSchemaVersion "
                             f"{batch.invocation_schema_version!r} is not 1.0 or 2.0")
    for task in batch.tasks:
        yield BatchTask(task.task_id, ObjectRef(task.s3_bucket, task.s3_key))


def batch_result(task: BatchTask, outcome: Outcome) -> S3BatchOperationResponseRecord:
    """Succeeded for ingested or skipped, TemporaryFailure (Batch Operations retries) or PermanentFailure."""
    code: ResultCode
    if outcome.status is not Status.FAILED:
        code = "Succeeded"
        text = outcome.status.value + (f": {outcome.reason}" if outcome.reason else
                                       f": {outcome.written} events stored")
    else:
        code = "PermanentFailure" if outcome.permanent else "TemporaryFailure"
        text = outcome.reason
    return S3BatchOperationResponseRecord(task.task_id, code, text[:RESULT_STRING_MAX])


def batch_response(event: Mapping[str, Any], results: list[S3BatchOperationResponseRecord]) -> dict[str, Any]:
    """The reply Batch Operations expects: schema version and invocation id echoed, one result per task.

    Built here rather than with Powertools' S3BatchOperationResponse, whose asdict() refuses any
    number of results but one.
    """
    return {
        "invocationSchemaVersion": event["invocationSchemaVersion"],
        "treatMissingKeysAs": "PermanentFailure",
        "invocationId": event["invocationId"],
        "results": [result.asdict() for result in results],
    }


# -- building shapes (backfill, tests) -------------------------------------------------------------


def eventbridge_object_created(ref: ObjectRef, *, account: str = "000000000000", region: str = "us-east-1",
                               time: str = "1970-01-01T00:00:00Z", event_id: str = "") -> dict[str, Any]:
    """An EventBridge "Object Created" event for one object, as S3 sends it (key URL-encoded).

    Backfill enqueues these, so a backfilled file takes the same path as a live one.
    """
    assert ref.bucket is not None, "an EventBridge event names an S3 object"
    obj: dict[str, Any] = {"key": encode_key(ref.key)}
    if ref.size is not None:
        obj["size"] = ref.size
    if ref.etag:
        obj["etag"] = ref.etag
    return {
        "version": "0", "id": event_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"s3://{ref.bucket}/{ref.key}")),
        "detail-type": "Object Created", "source": "aws.s3", "account": account, "time": time,
        "region": region, "resources": [f"arn:aws:s3:::{ref.bucket}"],
        "detail": {"version": "0", "bucket": {"name": ref.bucket}, "object": obj,
                   "request-id": "backfill", "requester": account, "reason": "PutObject"},
    }


def encode_key(key: str) -> str:
    """A key URL-encoded as S3 notifications carry it: `/` kept, space as `+`, `+` as `%2B`."""
    return quote(key, safe="/").replace("%20", "+")
