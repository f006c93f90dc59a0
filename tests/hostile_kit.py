"""The template's handler on a real DynamoDB Local, with trail files from memory: what the hostile-input
tests (named cases and the fuzz tier) deliver and inspect."""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
import sys
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from cli.dynamodb_local import client_kwargs
from core.ingest.items import DOCUMENT, PACKED
from core.ingest.store import RETRIES
from faults import LambdaContext, record, s3_message, sqs_event

BUCKET = "hostile-trail-bucket"
PREFIX = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/01/"


class MemoryS3:
    """The S3 calls the pipeline makes, answered from a dict of keys (an object may raise instead)."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes | BaseException] = {}

    def get_object(self, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        body = self.objects[Key]
        if isinstance(body, BaseException):
            raise body
        return {"Body": io.BytesIO(body)}


@dataclass
class Trail:
    """handlers.ingest wired to DynamoDB Local and a MemoryS3; one SQS message per file delivered."""

    ddb: Any
    table: str
    endpoint: str
    handler: Any
    s3: MemoryS3 = field(default_factory=MemoryS3)
    logs: io.StringIO = field(default_factory=io.StringIO)

    def deliver(self, files: dict[str, bytes]) -> dict[str, Any]:
        """Put the files, deliver them in one SQS batch (10 messages at most); the handler's reply."""
        assert len(files) <= 10
        bodies = []
        for name, data in files.items():
            self.s3.objects[PREFIX + name] = data
            bodies.append(s3_message(BUCKET, PREFIX + name, len(data), f"etag-{zlib.crc32(data):08x}"))
        response: dict[str, Any] = self.handler.lambda_handler(sqs_event(bodies), LambdaContext())
        return response

    def failures(self) -> dict[str, str]:
        """key -> reason, as `opsworks-trail failures --format json` lists them."""
        from cli.main import main

        out = io.StringIO()
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(sys, "stdout", out)
            main(["failures", "--format", "json", "--table", self.table, "--endpoint-url", self.endpoint])
        return {row["key"].removeprefix(PREFIX): row["reason"] for row in json.loads(out.getvalue())}

    def use_new_table(self) -> None:
        """Point the handler at a fresh, empty events table (the fuzz tier takes one per example)."""
        from ddb_local_plugin import _events_table_schema

        definition, _ = _events_table_schema()
        self.table = f"opsworks-trail-fuzz-{uuid.uuid4().hex[:12]}"
        self.ddb.create_table(TableName=self.table, **definition)
        self.ddb.get_waiter("table_exists").wait(TableName=self.table, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        os.environ["TABLE_NAME"] = self.table
        self.handler.pipeline.cache_clear()
        self.logs.seek(0)
        self.logs.truncate()

    def queries(self) -> Any:
        from core.read.queries import EventQueries

        return EventQueries(self.ddb, self.table)

    def stored_event_ids(self) -> list[str]:
        """Every event item's id, from the document (scan: test inspection only)."""
        from core.ingest.items import restore

        return sorted(restore(item)["event_id"] for item in self.items() if item["sk"] == "EVENT")

    def items(self) -> list[dict[str, Any]]:
        from core.ingest.store import deserialize

        items: list[dict[str, Any]] = []
        for page in self.ddb.get_paginator("scan").paginate(TableName=self.table):
            items += [deserialize(i) for i in page["Items"]]
        return items

    def table_text(self) -> str:
        """Everything the table holds as text, compressed documents inflated: where a secret could hide."""
        parts = []
        for item in self.items():
            packed = item.pop(PACKED, None)
            if packed is not None:
                parts.append(zlib.decompress(bytes(packed)).decode("ascii"))
            if DOCUMENT in item:
                parts.append(item.pop(DOCUMENT))
            parts.append(json.dumps(item, default=str))
        text = "\n".join(parts)
        # JSON text escapes some characters; look at what it decodes to as well
        return text + "\n" + text.encode("ascii", "backslashreplace").decode("unicode_escape", "replace")


@pytest.fixture
def trail(dynamodb_local_table: tuple[Any, str], dynamodb_local_endpoint: str,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[Trail]:
    import handlers.ingest as handler
    from handlers.observability import logger

    _, table = dynamodb_local_table
    ddb = boto3.client("dynamodb", config=RETRIES, **client_kwargs(dynamodb_local_endpoint))
    monkeypatch.setenv("TABLE_NAME", table)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_local_endpoint)
    it = Trail(ddb, table, dynamodb_local_endpoint, handler)
    monkeypatch.setattr(handler, "s3_client", it.s3)
    monkeypatch.setattr(handler, "dynamodb_client", ddb)
    handler.pipeline.cache_clear()
    capture = logging.StreamHandler(it.logs)
    capture.setFormatter(logger.registered_formatter)
    logger._logger.addHandler(capture)
    yield it
    logger._logger.removeHandler(capture)
    handler.pipeline.cache_clear()


def trail_text(records: list[Any]) -> str:
    """A log file's JSON in CloudTrail's compact layout; a record given as text is put in as it is."""
    parts = [r if isinstance(r, str) else json.dumps(r, separators=(",", ":")) for r in records]
    return '{"Records":[' + ",".join(parts) + "]}"


def gz(text: str) -> bytes:
    return gzip.compress(text.encode("utf-8", "surrogatepass"))


def good(event_id: str) -> dict[str, Any]:
    """A plain OpsWorks record naming a stack and a layer."""
    return record(event_id, name="CreateLayer", readOnly=False, responseElements={"layerId": f"layer-{event_id}"},
                  requestParameters={"stackId": "stack-hostile", "name": event_id, "type": "custom"})


def with_params(event_id: str, params_json: str, name: str = "UpdateStack") -> str:
    """A selected record whose requestParameters is the given JSON text, put in verbatim."""
    text = json.dumps(record(event_id, name=name, readOnly=False, requestParameters="@@PARAMS@@"),
                      separators=(",", ":"))
    return text.replace('"@@PARAMS@@"', params_json)


def nested(depth: int, leaf: str = '"leaf"') -> str:
    return '{"a":' * depth + leaf + "}" * depth
