"""CloudTrail Event history (LookupEvents) faked at the HTTP edge of a real botocore client, and OpsWorks
records built from the API models: moto does not implement LookupEvents.

- `opsworks_record()`: a CloudTrail record of one OpsWorks or OpsWorks CM operation; its requestParameters
  are the operation's resource parameters as the catalog derived from the API models names them
  (src/core/ingest/catalog.json, made by scripts/build_catalog.py from the OpsWorks and OpsWorks CM models).
- `FakeEventHistory`: answers LookupEvents for (account, Region) pairs: filters by EventSource and time,
  pages with NextToken, throttles or denies chosen pairs. Every page is checked against the CloudTrail model's
  output shape (botocore's validator) and goes out as the JSON the service sends, so the client under test
  parses it with botocore's own parser, and every request it sends is what botocore serialized.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import botocore.session
from botocore.awsrequest import AWSResponse
from botocore.validate import ParamValidator

from core.ingest.history import CLIENT_CONFIG

SOURCES = {"opsworks": "opsworks.amazonaws.com", "opsworkscm": "opsworks-cm.amazonaws.com"}
CATALOG = json.loads((Path(__file__).resolve().parent.parent / "src" / "core" / "ingest" / "catalog.json")
                     .read_text(encoding="utf-8"))
"""The OpsWorks actions and their resource parameters, derived from the OpsWorks and OpsWorks CM API models
by scripts/build_catalog.py (botocore no longer ships those models, so a clean install has no other copy)."""
CLOUDTRAIL = botocore.session.get_session().get_service_model("cloudtrail")
LOOKUP = CLOUDTRAIL.operation_model("LookupEvents")


def request_parameters(service: str, operation: str, seed: str) -> dict[str, Any] | None:
    """The operation's resource parameters (ids and names), as CloudTrail records them; None when it has none."""
    named: dict[str, str] = CATALOG["services"][SOURCES[service]]["actions"][operation]["request"]
    if not named:
        return None
    return {name: _example(name, seed) for name in sorted(named)}


def _example(name: str, seed: str) -> Any:
    """An id (a list of one for a plural name), or a name, stable for the seed."""
    if name.endswith("Ids") or name.endswith("Arns"):
        return [str(uuid.uuid5(uuid.NAMESPACE_OID, f"{seed}/{name}"))]
    if name.endswith(("Id", "Arn")):
        return str(uuid.uuid5(uuid.NAMESPACE_OID, f"{seed}/{name}"))
    return f"example-{name.lower()}"


def opsworks_record(operation: str, *, service: str = "opsworks", account: str = "111122223333",
                    region: str = "us-east-1", when: datetime, caller: str = "deployer", error: bool = False,
                    number: int = 0) -> dict[str, Any]:
    """One CloudTrail record of an OpsWorks (or OpsWorks CM, service="opsworkscm") call, as a trail file or
    Event history holds it; deterministic for the same arguments."""
    seed = f"{account}/{region}/{operation}/{when.isoformat()}/{number}"
    event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, seed))
    role = f"arn:aws:iam::{account}:role/{caller}"
    record: dict[str, Any] = {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "AssumedRole", "principalId": f"AROAEXAMPLE{caller.upper()}:{caller}-session",
            "arn": f"arn:aws:sts::{account}:assumed-role/{caller}/{caller}-session", "accountId": account,
            "accessKeyId": "ASIAEXAMPLEKEY000001",
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "principalId": f"AROAEXAMPLE{caller.upper()}", "arn": role,
                                  "accountId": account, "userName": caller},
                "attributes": {"creationDate": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "mfaAuthenticated": "false"}}},
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": SOURCES[service],
        "eventName": operation,
        "awsRegion": region,
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64 command/opsworks",
        "requestParameters": request_parameters(service, operation, seed),
        "responseElements": None,
        "requestID": str(uuid.uuid5(uuid.NAMESPACE_DNS, seed)),
        "eventID": event_id,
        "readOnly": operation.startswith(("Describe", "List", "Get")),
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }
    if error:
        record["errorCode"] = "AccessDenied" if service == "opsworks" else "AccessDeniedException"
        record["errorMessage"] = f"User is not authorized to perform: opsworks:{operation}"
    return record


def lookup_event(record: dict[str, Any]) -> dict[str, Any]:
    """The Events entry of a LookupEvents page for a record, checked against the model's Event shape."""
    identity = record.get("userIdentity", {})
    event = {
        "EventId": record["eventID"], "EventName": record["eventName"],
        "ReadOnly": str(record.get("readOnly", False)).lower(),
        "AccessKeyId": identity.get("accessKeyId", ""),
        "EventTime": datetime.fromisoformat(record["eventTime"].replace("Z", "+00:00")),
        "EventSource": record["eventSource"],
        "Username": identity.get("sessionContext", {}).get("sessionIssuer", {}).get("userName", ""),
        "Resources": [{"ResourceType": "AWS::OpsWorks::Stack", "ResourceName": value}
                      for key, value in (record.get("requestParameters") or {}).items() if key == "stackId"],
        "CloudTrailEvent": json.dumps(record),
    }
    return event


def checked_page(page: dict[str, Any]) -> dict[str, Any]:
    """A LookupEvents response, refused unless it fits the CloudTrail model's output shape."""
    report = ParamValidator().validate(page, LOOKUP.output_shape)
    if report.has_errors():
        raise AssertionError(f"the fake's page breaks LookupEvents' output shape: {report.generate_report()}")
    return page


def wire_json(page: dict[str, Any]) -> bytes:
    """The page as the JSON protocol sends it: timestamps as epoch seconds."""
    return json.dumps(page, default=lambda v: v.timestamp() if isinstance(v, datetime) else str(v)).encode()


class _Body:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


class FakeEventHistory:
    """LookupEvents for several accounts and Regions: `records[(account, region)]` are the records each holds."""

    def __init__(self, records: dict[tuple[str, str], list[dict[str, Any]]], *, page_size: int = 2,
                 throttle: dict[tuple[str, str], int] | None = None, deny: set[tuple[str, str]] | None = None) -> None:
        self.records = records
        self.page_size = page_size
        self.throttle = dict(throttle or {})
        """The first n requests of a pair answer ThrottlingException."""
        self.deny = set(deny or ())
        self.requests: Counter[tuple[str, str]] = Counter()
        self.throttled: Counter[tuple[str, str]] = Counter()
        self.sent: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        self.times: dict[tuple[str, str], list[float]] = defaultdict(list)
        """When each request was made (time.monotonic at the client's first per-call hook), per pair."""
        self._lock = threading.Lock()

    def client(self, target: Any, region: str) -> Any:
        """A real CloudTrail client for (target's account, region) whose requests this fake answers."""
        client = boto3.client("cloudtrail", region_name=region, config=CLIENT_CONFIG,
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        account = target.account_id if hasattr(target, "account_id") else str(target)
        # botocore calls every before-send handler, and moto's (on every client, active under mock_aws) would
        # refuse LookupEvents: this client's requests are the fake's alone.
        from moto.core.models import botocore_stubber

        client.meta.events.unregister("before-send", botocore_stubber)
        client.meta.events.register("before-parameter-build.cloudtrail.LookupEvents",
                                    lambda **_: self.times[(account, region)].append(time.monotonic()))
        client.meta.events.register("before-send.cloudtrail.LookupEvents",
                                    lambda request, **_: self._answer(account, region, request))
        return client

    def _answer(self, account: str, region: str, request: Any) -> AWSResponse:
        pair = (account, region)
        body = json.loads(request.body)
        with self._lock:
            self.requests[pair] += 1
            self.sent[pair].append(body)
            if pair in self.deny:
                return self._error(request, 400, "AccessDeniedException",
                                   f"User: arn:aws:sts::{account}:assumed-role/audit/sweep is not authorized to "
                                   f"perform: cloudtrail:LookupEvents in {region}")
            if self.throttled[pair] < self.throttle.get(pair, 0):
                self.throttled[pair] += 1
                return self._error(request, 400, "ThrottlingException", "Rate exceeded")
        source = next(a["AttributeValue"] for a in body["LookupAttributes"] if a["AttributeKey"] == "EventSource")
        start = datetime.fromtimestamp(body["StartTime"], UTC)
        end = datetime.fromtimestamp(body["EndTime"], UTC)
        matching = sorted((lookup_event(r) for r in self.records.get(pair, []) if r.get("eventSource") == source),
                          key=lambda e: e["EventTime"], reverse=True)
        matching = [e for e in matching if start <= e["EventTime"] <= end]
        offset = int(body.get("NextToken") or 0)
        size = min(self.page_size, int(body.get("MaxResults", 50)))
        page: dict[str, Any] = {"Events": matching[offset:offset + size]}
        if offset + size < len(matching):
            page["NextToken"] = str(offset + size)
        body = wire_json(checked_page(page))
        return AWSResponse(request.url, 200, {"x-amzn-RequestId": str(uuid.uuid4())}, _Body(body))

    @staticmethod
    def _error(request: Any, status: int, code: str, message: str) -> AWSResponse:
        body = json.dumps({"__type": code, "message": message}).encode()
        return AWSResponse(request.url, status, {"x-amzn-RequestId": str(uuid.uuid4())}, _Body(body))


def eventbridge_api_call(record: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
    """The EventBridge event CloudTrail sends for a management event: detail-type "AWS API Call via
    CloudTrail", source aws.<service>, detail the record."""
    source = "aws." + record["eventSource"].removesuffix(".amazonaws.com")
    return {"version": "0", "id": event_id or str(uuid.uuid5(uuid.NAMESPACE_URL, record["eventID"])),
            "detail-type": "AWS API Call via CloudTrail", "source": source,
            "account": record.get("recipientAccountId") or record["userIdentity"]["accountId"],
            "time": record["eventTime"], "region": record["awsRegion"],
            "resources": [], "detail": record}


def sqs_message(body: dict[str, Any], *, message_id: str = "4b2a7c1e-9f0d-4c55-8a6e-3d1f2b7e9a01",
                queue_arn: str = "arn:aws:sqs:us-east-1:111122223333:opsworks-trail-ingest") -> dict[str, Any]:
    """An SQS delivery of one message, as the Lambda event source mapping hands it to the function."""
    text = json.dumps(body)
    return {"Records": [{
        "messageId": message_id, "receiptHandle": "AQEBexampleReceiptHandle==", "body": text,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1714887012611",
                       "SenderId": "AIDAIEXAMPLESENDER0001", "ApproximateFirstReceiveTimestamp": "1714887012618"},
        "messageAttributes": {}, "md5OfBody": hashlib.md5(text.encode()).hexdigest(),
        "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": queue_arn.split(":")[3]}]}


SAMPLE_TIME = datetime(2024, 5, 5, 5, 30, 12, tzinfo=UTC)
SAMPLE_ACCOUNT, SAMPLE_REGION = "111122223333", "us-east-1"


def sample_events() -> dict[str, Any]:
    """The events/ samples of the tripwire and the sweep, as these builders make them (tests/test_tripwire.py
    holds the files equal to this): a read-only DescribeStacks call as EventBridge sends it (direct and as an
    SQS body), and a LookupEvents page of two events with a NextToken, as the service sends it."""
    call = opsworks_record("DescribeStacks", account=SAMPLE_ACCOUNT, region=SAMPLE_REGION, when=SAMPLE_TIME,
                           caller="legacy-deployer")
    direct = eventbridge_api_call(call)
    page_records = [opsworks_record("StopInstance", account=SAMPLE_ACCOUNT, region=SAMPLE_REGION,
                                    when=SAMPLE_TIME, caller="legacy-deployer", number=1),
                    opsworks_record("DescribeServers", service="opsworkscm", account=SAMPLE_ACCOUNT,
                                    region=SAMPLE_REGION, when=SAMPLE_TIME, caller="chef-admin", number=2)]
    page = checked_page({"Events": [lookup_event(r) for r in page_records],
                         "NextToken": "kbOt5LlZe++mErCebpy2TgaMgmDvF1kYGFcH64JSjIbZFjsuvrSqg66b5YGssKutDYIyII4lrP4="})
    return {"eventbridge-api-call.json": direct,
            "sqs-eventbridge-api-call.json": sqs_message(direct),
            "api/lookup-events-page.json": json.loads(wire_json(page))}


if __name__ == "__main__":  # writes the samples: python tests/lookup_events_fake.py events/
    import sys

    folder = Path(sys.argv[1])
    for name, document in sample_events().items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
