"""Hostile and odd input through the template's handler onto DynamoDB Local (the real validator): each
class ends stored or listed as a permanent failure, nothing is sent back for retry, the good records of
the same file are stored, and no planted secret reaches the table or the logs."""

from __future__ import annotations

import json
import random
import string
from decimal import Decimal
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from boto3.dynamodb.types import Binary

from core.ingest.catalog import REDACTED
from core.ingest.items import MAX_LINKS
from hostile_kit import Trail, good, gz, nested, trail, trail_text, with_params

pytestmark = pytest.mark.dynamodb_local
__all__ = ["trail"]  # the fixture, used by name

ACK: dict[str, Any] = {"batchItemFailures": []}


# -- bytes-caused faults are permanent: listed once, acknowledged ----------------------------------------------


@pytest.mark.parametrize("layout", ["compact", "indented"])
def test_a_record_nested_past_the_parsers_recursion_is_listed_and_the_good_records_stored(
        trail: Trail, layout: str) -> None:
    deep = with_params("deep-0001", nested(200_000))
    text = trail_text([good("ok-0001"), deep, good("ok-0002")])
    if layout == "indented":  # the exact (streaming) parser's path
        text = text.replace(',"', ',\n  "')

    assert trail.deliver({"deep.json.gz": gz(text)}) == ACK
    assert trail.deliver({"deep.json.gz": gz(text)}) == ACK  # redelivered: still nothing to retry

    failures = trail.failures()
    assert list(failures) == ["deep.json.gz"]
    assert "deep" in failures["deep.json.gz"] or "nest" in failures["deep.json.gz"]
    # the record before it is stored; the one after it too when the reader can read past it
    assert {"ok-0001"} <= set(trail.stored_event_ids()) <= {"ok-0001", "ok-0002"}


@pytest.mark.parametrize(("name", "params"), [
    ("deeper-than-dynamodb", nested(40)),
    ("empty-key", '{"":"empty","stackId":"s-1"}'),
    ("long-key", '{"' + "k" * 70_000 + '":1}'),
    ("numbers", '{"nan":NaN,"digits":' + "9" * 60 + ',"far":1e400,"tiny":1e-400,"neg":-Infinity,"ok":1.5}'),
    ("lone-surrogate", '{"name":"a\\ud800b","\\udfffkey":"x"}'),
    ("null-and-empty", '{"a":null,"b":[],"c":{},"d":"","e":[[[]]]}'),
])
def test_parameters_dynamodb_would_refuse_as_attributes_are_stored_and_read_back(
        trail: Trail, name: str, params: str) -> None:
    file = gz(trail_text([good("ok-0001"), with_params(f"{name}-0001", params), good("ok-0002")]))

    assert trail.deliver({f"{name}.json.gz": file}) == ACK

    assert trail.failures() == {}
    assert trail.stored_event_ids() == sorted(["ok-0001", "ok-0002", f"{name}-0001"])
    event = trail.queries().by_id(f"{name}-0001")
    assert event is not None
    expected = json.loads(params, parse_float=Decimal, parse_int=Decimal, parse_constant=str)
    assert event["request_parameters"] == _as_read_back(expected)


def _as_read_back(value: Any) -> Any:
    """Numbers DynamoDB can hold come back as Decimal, the others as their text (as they always did)."""
    from core.ingest.items import _number

    if isinstance(value, Decimal):
        return _number(str(value))
    if isinstance(value, dict):
        return {k: _as_read_back(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_read_back(v) for v in value]
    return value


def test_parameters_too_large_even_compressed_are_left_out_and_the_event_says_so(trail: Trail) -> None:
    noise = "".join(random.Random(3).choices(string.ascii_letters + string.digits, k=2_000_000))
    huge = with_params("huge-0001", json.dumps({"stackId": "s-1", "blob": noise}))

    assert trail.deliver({"huge.json.gz": gz(trail_text([huge, good("ok-0001")]))}) == ACK

    assert trail.failures() == {}
    event = trail.queries().by_id("huge-0001")
    assert event is not None and "request_parameters" not in event
    assert event["omitted_compressed_bytes"]["request_parameters"] > 1_000_000
    assert trail.stored_event_ids() == ["huge-0001", "ok-0001"]


def test_an_event_naming_thousands_of_resources_writes_small_links_up_to_the_cap(trail: Trail) -> None:
    instances = [f"i-{n:05d}-{'x' * 36}" for n in range(MAX_LINKS + 1500)]
    many = with_params("many-0001", json.dumps({"stackId": "stack-many", "instanceIds": instances}),
                       name="DescribeInstances")

    assert trail.deliver({"many.json.gz": gz(trail_text([many, good("ok-0001")]))}) == ACK

    assert trail.failures() == {}
    items = trail.items()
    links = [i for i in items if i["pk"].startswith("RES#") and i.get("event_id") == "many-0001"]
    assert len(links) == MAX_LINKS
    assert max(len(json.dumps(link)) for link in links) < 300  # pointers, not copies of the event
    assert sum(len(json.dumps(i, default=_size_stand_in)) for i in items) < 4_000_000
    event = trail.queries().by_id("many-0001")
    assert event is not None
    assert event["unlinked_resources"] == len(instances) + 1 - MAX_LINKS  # the stack is a resource too
    assert len(event["resources"]) == len(instances) + 1  # every resource is still in the event
    assert [e["event_id"] for e in trail.queries().for_stack("stack-many")] == ["many-0001"]
    assert [e["event_id"] for e in trail.queries().for_resource("instance", instances[0])] == ["many-0001"]


def _size_stand_in(value: Any) -> str:
    return "x" * len(bytes(value)) if isinstance(value, Binary) else str(value)


def test_ids_too_long_or_unencodable_for_a_key_are_stored_under_a_digest_and_found_by_their_text(
        trail: Trail) -> None:
    long_id = "e" * 5000
    odd = json.dumps(good(long_id)).replace('"stack-hostile"', '"stack-\\ud800"')

    assert trail.deliver({"ids.json.gz": gz(trail_text([odd, good("ok-0001")]))}) == ACK

    assert trail.failures() == {}
    event = trail.queries().by_id(long_id)
    assert event is not None and event["event_id"] == long_id
    assert [e["event_id"] for e in trail.queries().for_stack("stack-\ud800")] == [long_id]


# -- nothing read is lost ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("cut", ["mid-record", "mid-string", "after-comma"])
def test_records_read_before_a_truncated_last_record_are_stored_and_the_failure_says_so(
        trail: Trail, cut: str) -> None:
    text = trail_text([good("ok-0001"), good("ok-0002"), good("cut-0003")])
    end = {"mid-record": text.rindex('"eventName"'), "mid-string": text.rindex("req-cut") + 3,
           "after-comma": text.rindex(',{"eventVersion"') + 1}[cut]

    assert trail.deliver({"cut.json.gz": gz(text[:end])}) == ACK

    assert trail.stored_event_ids() == ["ok-0001", "ok-0002"]
    reason = trail.failures()["cut.json.gz"]
    assert "2 selected record(s) read before it were stored" in reason, reason


# -- an exception of unknown kind: a bounded number of retries, then listed ------------------------------------


def test_an_unknown_fault_is_retried_three_times_then_listed_as_permanent(trail: Trail) -> None:
    class Weird(Exception):
        pass

    replies = [_deliver_raising(trail, "weird.json.gz", Weird("the library did something odd")) for _ in range(4)]

    assert replies[:2] == [{"batchItemFailures": [{"itemIdentifier": "msg-0"}]}] * 2  # the good file is not
    assert replies[2:] == [ACK, ACK]  # listed at the third, and a fourth delivery is not read again
    reason = trail.failures()["weird.json.gz"]
    assert "unexpected Weird: the library did something odd" in reason and "3 times" in reason


def _deliver_raising(trail: Trail, name: str, error: BaseException) -> dict[str, Any]:
    from faults import LambdaContext, s3_message, sqs_event
    from hostile_kit import BUCKET, PREFIX

    trail.s3.objects[PREFIX + name] = error
    trail.s3.objects[PREFIX + "fine.json.gz"] = gz(trail_text([good("fine-0001")]))
    messages = [s3_message(BUCKET, PREFIX + name, 100, "etag-1"), s3_message(BUCKET, PREFIX + "fine.json.gz", 100)]
    reply: dict[str, Any] = trail.handler.lambda_handler(sqs_event(messages), LambdaContext())
    return reply


# -- secrets by shape ---------------------------------------------------------------------------------------------


def _planted() -> dict[str, str]:
    rng = random.Random()
    alphabet = string.ascii_letters + string.digits
    key_body = "".join(rng.choices(alphabet, k=64))
    return {
        "password": "pw-" + "".join(rng.choices(alphabet, k=20)),
        "aws_secret": "".join(rng.choices(string.ascii_uppercase, k=5) + rng.choices(string.ascii_lowercase, k=5)
                              + rng.choices(alphabet + "/+", k=25) + rng.choices(string.digits, k=5)),
        "pem": "-----BEGIN RSA PRIVATE KEY-----\n"
               f"MIIEpAIBAAKCAQEA{key_body}\n{key_body}\n-----END RSA PRIVATE KEY-----",
        "token": "tok-" + "".join(rng.choices(alphabet, k=24)),
        "db_url_password": "".join(rng.choices(alphabet, k=16)),
    }


def test_secrets_inside_json_strings_and_in_well_known_formats_are_redacted_before_storing_or_logging(
        trail: Trail) -> None:
    s = _planted()
    custom = json.dumps({"deploy": {"app": {"database": {"password": s["password"], "host": "db"},
                                            "env": {"AWS_SECRET_ACCESS_KEY": s["aws_secret"]},
                                            "url": f"postgres://app:{s['db_url_password']}@db:5432/app"}},
                         "api": {"auth_token": s["token"]}, "revision": "3f786850e387550fdab836ed7e6dc881de23001b"})
    params = json.dumps({"stackId": "s-1", "customJson": custom,
                         "attributes": {"Color": "blue", "Note": f"key follows:\n{s['pem']}\nend"},
                         "chef": f"aws_secret_access_key = {s['aws_secret']}\npassword: {s['password']}\n"})
    leaky = with_params("leaky-0001", params)
    error_text = good("leaky-0002") | {"errorMessage": f"bad key {s['aws_secret']}"}
    # and a broken record right after, whose failure reason must not quote one either
    broken = with_params("broken-0003", '{"password":"' + s["password"] + '" oops}')

    assert trail.deliver({"leaky.json.gz": gz(trail_text([leaky, error_text, broken]))}) == ACK

    assert trail.stored_event_ids() == ["leaky-0001", "leaky-0002"]
    assert list(trail.failures()) == ["leaky.json.gz"]
    table, logs = trail.table_text(), trail.logs.getvalue()
    assert "leaky.json.gz" in logs  # the logs were captured
    for name, secret in s.items():
        for line in secret.splitlines():
            assert line not in table, name
            assert line not in logs, name
    event = trail.queries().by_id("leaky-0001")
    assert event is not None
    kept = json.loads(event["request_parameters"]["customJson"])
    assert kept["deploy"]["app"]["database"] == {"password": REDACTED, "host": "db"}
    assert kept["revision"] == "3f786850e387550fdab836ed7e6dc881de23001b"  # a commit id is not a secret
    assert event["request_parameters"]["attributes"]["Color"] == "blue"


# -- one retry policy ---------------------------------------------------------------------------------------------


class _Throttled:
    """A botocore before-send hook answering BatchWriteItem with throttling `times` times."""

    def __init__(self, times: int) -> None:
        self.times = times
        self.calls = 0

    def __call__(self, request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        self.calls += 1
        if self.calls > self.times:
            return None  # sent to DynamoDB Local

        class Raw:
            def __init__(self, body: bytes) -> None:
                self.body = body

            def stream(self, **_: Any) -> Any:
                yield self.body

        body = json.dumps({"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
                           "message": "Rate of requests exceeds the allowed throughput."}).encode()
        return AWSResponse(request.url, 400, {"x-amzn-ErrorType": "ThrottlingException"}, Raw(body))


@pytest.mark.parametrize(("throttles", "ingested"), [(3, True), (50, False)])
def test_throttling_is_retried_by_botocore_alone_a_bounded_number_of_times(
        trail: Trail, monkeypatch: pytest.MonkeyPatch, throttles: int, ingested: bool) -> None:
    import botocore.endpoint

    sleeps: list[float] = []
    monkeypatch.setattr(botocore.endpoint.time, "sleep", sleeps.append)
    hook = _Throttled(throttles)
    trail.ddb.meta.events.register("before-send.dynamodb.BatchWriteItem", hook)

    file = {"throttled.json.gz": gz(trail_text([good("ok-0001")]))}

    if ingested:
        assert trail.deliver(file) == ACK and trail.stored_event_ids() == ["ok-0001"]
        assert hook.calls == throttles + 1
    else:
        with pytest.raises(BatchProcessingError, match="ThrottlingException"):  # the whole batch comes again
            trail.deliver(file)
        assert hook.calls == 5  # store.RETRIES: one policy, not the store's attempts on top of botocore's
        assert trail.failures() == {} and trail.stored_event_ids() == []
    assert sum(sleeps) < 60
