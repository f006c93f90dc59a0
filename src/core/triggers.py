"""Trigger events -> the S3 objects they announce. Pure: no I/O.

Shapes understood: S3 event notifications, direct or as SQS message bodies, and the S3 test event
(acknowledged, announces nothing).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.utilities.data_classes import S3Event

from core.errors import BadTrailFile
from core.model import ObjectRef


class UnknownMessage(BadTrailFile):
    """A message that announces no object in a shape this function knows: permanent, never retried."""


def is_sqs_event(event: Mapping[str, Any]) -> bool:
    records = event.get("Records")
    return bool(records) and isinstance(records, list) and records[0].get("eventSource") == "aws:sqs"


def refs_from_s3_event(event: Mapping[str, Any]) -> list[ObjectRef]:
    """An S3 event notification's objects; keys arrive URL-encoded (`+` for space) and are decoded."""
    if event.get("Event") == "s3:TestEvent":
        return []
    refs = []
    for record in S3Event(dict(event)).records:
        if not record.event_name.startswith("ObjectCreated"):
            continue
        obj = record.s3.get_object
        refs.append(ObjectRef(record.s3.bucket.name, obj.key, obj.size, obj.etag or None))
    return refs


def refs_from_message(body: str) -> list[ObjectRef]:
    """The objects an SQS message body announces."""
    try:
        message = json.loads(body)
    except json.JSONDecodeError as exc:
        raise UnknownMessage(f"the message body is not JSON: {exc}") from exc
    if not isinstance(message, dict):
        raise UnknownMessage("the message body is not a JSON object")
    if message.get("Event") == "s3:TestEvent":
        return []
    if isinstance(message.get("Records"), list):
        return refs_from_s3_event(message)
    raise UnknownMessage(f"not an S3 event notification (keys: {', '.join(sorted(message)[:6])})")
