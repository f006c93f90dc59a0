"""Bad inputs and faulty clients for the reliability tests: trail files, bombs, S3 events, flaky AWS."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

OPSWORKS = "opsworks.amazonaws.com"


def record(event_id: str, *, source: str = OPSWORKS, name: str = "DescribeStacks", **extra: Any) -> dict[str, Any]:
    """A CloudTrail record in CloudTrail's own key order (eventVersion first, as the fast path expects)."""
    return {"eventVersion": "1.08",
            "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice",
                             "accountId": "111122223333", "userName": "alice"},
            "eventTime": "2024-05-01T10:00:00Z", "eventSource": source, "eventName": name,
            "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.5", "userAgent": "aws-cli/2",
            "requestParameters": {"stackId": "11111111-2222-3333-4444-555555555555"},
            "responseElements": None, "requestID": f"req-{event_id}", "eventID": event_id,
            "readOnly": True, "eventType": "AwsApiCall", "recipientAccountId": "111122223333", **extra}


def trail_file(records: list[dict[str, Any]]) -> bytes:
    """A gzip CloudTrail log file, compact as CloudTrail writes it."""
    return gzip.compress(json.dumps({"Records": records}, separators=(",", ":")).encode())


def good_file(prefix: str, count: int = 3) -> tuple[bytes, list[str]]:
    """A valid log file with `count` OpsWorks CreateLayer records (each linked to its stack and its layer)
    and one EC2 record; (bytes, OpsWorks event ids)."""
    ids = [f"{prefix}-{i:04d}" for i in range(count)]
    records = [record(i, name="CreateLayer", readOnly=False, responseElements={"layerId": f"layer-{i}"},
                      requestParameters={"stackId": f"stack-{prefix}", "name": i, "type": "custom"})
               for i in ids] + [record(f"{prefix}-ec2", source="ec2.amazonaws.com")]
    return trail_file(records), ids


READ_BEFORE_THE_FAULT = {"trailing-garbage": "bad-0001", "record-not-object": "bad-0001"}
"""The bad files whose OpsWorks record comes before the fault: it is read, so it is stored."""


def bad_files() -> dict[str, tuple[bytes, str]]:
    """Small malformed log files: name -> (bytes, a fragment the permanent failure's reason must contain)."""
    good = json.dumps({"Records": [record("bad-0001")]}, separators=(",", ":")).encode()
    compressed = gzip.compress(good)
    utf8 = good.replace(b"DescribeStacks", b"Describe\xff\xfeStacks")
    return {
        "truncated-gzip": (compressed[: len(compressed) // 2], "truncated gzip"),
        "corrupt-gzip": (compressed[:10] + b"\x00" * 20 + compressed[30:], "gzip"),
        "garbage-bytes": (b"\x00\x07garbage\xfe\xff" * 50, "not JSON"),
        "invalid-json": (gzip.compress(b'{"Records":[{"eventVersion":"1.08",'
                                       b'"eventSource":"opsworks.amazonaws.com",}]}'), "invalid JSON"),
        "trailing-garbage": (gzip.compress(good + b"}{"), "invalid JSON"),
        "no-records": (gzip.compress(b'{"Recs":[]}'), "no Records list"),
        "records-null": (gzip.compress(b'{"Records":null}'), "Records is null"),
        "records-object": (gzip.compress(b'{"Records":{"eventVersion":"1.08"}}'), "Records is an object"),
        "records-string": (gzip.compress(b'{"Records":"[]"}'), "Records is a string"),
        "top-level-list": (gzip.compress(b"[" + good + b"]"), "top-level JSON list"),
        "record-not-object": (gzip.compress(b'{"Records":[' + good[12:-2] + b',"x",3]}'), "not an object"),
        "invalid-utf8": (gzip.compress(utf8), "invalid UTF-8"),
        "empty-gzip": (gzip.compress(b""), "not JSON"),
    }


def bomb(path: Path, inflated: int = 768 << 20, fill: bytes = b" ") -> Path:
    """A valid-looking head, then `inflated` bytes of `fill`, gzip-streamed: ~750 KB on disk."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = fill * (1 << 20)
    with path.open("wb") as out:
        out.write(compressor.compress(b'{"Records":['))
        for _ in range(inflated >> 20):
            out.write(compressor.compress(block))
        out.write(compressor.flush())
    return path


def s3_message(bucket: str, key: str, size: int | None, etag: str | None = None) -> str:
    """The body S3 sends to SQS for a new object (keys URL-encoded as S3 does)."""
    from urllib.parse import quote_plus

    obj: dict[str, Any] = {"key": quote_plus(key, safe="/"), "sequencer": "0A"}
    if size is not None:
        obj["size"] = size
    if etag:
        obj["eTag"] = etag
    return json.dumps({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2024-05-01T10:05:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
               "object": obj}}]})


def sqs_event(bodies: list[str]) -> dict[str, Any]:
    return {"Records": [{
        "messageId": f"msg-{i}", "receiptHandle": f"rh-{i}", "body": body, "attributes": {},
        "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:111122223333:opsworks-trail-ingest", "awsRegion": "us-east-1",
    } for i, body in enumerate(bodies)]}


@dataclass
class LambdaContext:
    function_name: str = "opsworks-trail-ingest"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:111122223333:function:opsworks-trail-ingest"
    aws_request_id: str = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def client_error(code: str, operation: str, status: int = 400, message: str = "") -> ClientError:
    """A ClientError shaped as botocore raises it from a real response."""
    return ClientError({"Error": {"Code": code, "Message": message or code},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


@dataclass
class FlakyDynamoDB:
    """A DynamoDB client that forwards to a real (moto) one, but for a while refuses half of every
    BatchWriteItem (UnprocessedItems, as DynamoDB does under load) and throttles some calls outright."""

    client: Any
    refuse_half_times: int = 0
    throttle_times: int = 0
    fail_batch_after: int | None = None
    """Raise `crash` (as a crash would) on the BatchWriteItem call after this many succeeded."""
    crash: type[BaseException] = RuntimeError
    batch_calls: int = 0
    event_puts: list[str] = field(default_factory=list)
    """pk of every event item (sk=EVENT) handed to DynamoDB, repeats included."""

    def batch_write_item(self, RequestItems: dict[str, list[Any]], **kwargs: Any) -> Any:
        if self.fail_batch_after is not None and self.batch_calls >= self.fail_batch_after:
            raise self.crash("the process died here")
        self.batch_calls += 1
        if self.throttle_times:
            self.throttle_times -= 1
            raise client_error("ProvisionedThroughputExceededException", "BatchWriteItem")
        (table, requests), = RequestItems.items()
        refused: list[Any] = []
        if self.refuse_half_times and len(requests) > 1:
            self.refuse_half_times -= 1
            requests, refused = requests[: len(requests) // 2], requests[len(requests) // 2:]
        self.event_puts += [r["PutRequest"]["Item"]["pk"]["S"] for r in requests
                            if r["PutRequest"]["Item"]["sk"]["S"] == "EVENT"]
        self.client.batch_write_item(RequestItems={table: requests}, **kwargs)
        return {"UnprocessedItems": {table: refused} if refused else {}}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


class EventWriteCounter:
    """Counts the event items written through a real boto3 client, via a botocore event hook."""

    def __init__(self, client: Any) -> None:
        self.events: list[str] = []
        self.calls: dict[str, int] = {}
        for operation in ("BatchWriteItem", "PutItem", "UpdateItem"):
            client.meta.events.register(f"before-parameter-build.dynamodb.{operation}", self._count(operation))

    def _count(self, operation: str) -> Callable[..., None]:
        def hook(params: dict[str, Any], **_: Any) -> None:
            self.calls[operation] = self.calls.get(operation, 0) + 1
            if operation == "PutItem":
                items = [params["Item"]]
            elif operation == "UpdateItem":  # an event item (core.ingest.store writes each with one)
                items = [params["Key"]]
            else:
                items = [r["PutRequest"]["Item"] for rs in params["RequestItems"].values() for r in rs]
            self.events += [i["pk"]["S"] for i in items if i["sk"]["S"] == "EVENT"]

        return hook


def scan_all(client: Any, table: str) -> list[dict[str, Any]]:
    """Every item of a (moto) table, deserialized: test inspection only, the code itself never scans."""
    from core.ingest.store import deserialize

    items: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName=table):
        items += [deserialize(i) for i in page["Items"]]
    return items


def stored_event_ids(client: Any, table: str) -> list[str]:
    return sorted(i["event_id"] for i in scan_all(client, table) if i["sk"] == "EVENT")


def chunks_of(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]
