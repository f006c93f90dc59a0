"""The tripwire: an EventBridge "AWS API Call via CloudTrail" event through the queue stores its record at once,
the trail file that follows adds nothing, the alarm watches the metric the function emits, and with
Tripwire=false none of it exists."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.parsers import create_parser
from hypothesis import given
from hypothesis import strategies as st

from conftest import EVENTS_DIR, needs_shared
from core.ingest.items import restore
from core.ingest.store import deserialize
from core.ingest.triggers import ApiCall, UnknownMessage, deliveries_from_event, deliveries_from_message, encode_key
from core.model import ObjectRef
from faults import LambdaContext
from lookup_events_fake import LOOKUP, eventbridge_api_call, sample_events, sqs_message
from template_schema import load_template, translate_template

SAMPLE = json.loads((EVENTS_DIR / "sqs-eventbridge-api-call.json").read_text(encoding="utf-8"))
RECORD = json.loads(SAMPLE["Records"][0]["body"])["detail"]


# -- the samples ---------------------------------------------------------------------------------------------


def test_the_samples_in_events_are_what_the_model_built_builders_make() -> None:
    for name, document in sample_events().items():
        assert json.loads((EVENTS_DIR / name).read_text(encoding="utf-8")) == document, name


def test_the_lookup_events_page_sample_parses_with_botocore_as_the_service_sends_it() -> None:
    body = (EVENTS_DIR / "api" / "lookup-events-page.json").read_bytes()

    page = create_parser("json").parse({"body": body, "headers": {}, "status_code": 200}, LOOKUP.output_shape)

    assert page["NextToken"]
    for event in page["Events"]:
        record = json.loads(event["CloudTrailEvent"])
        assert (record["eventID"], record["eventName"], record["eventSource"]) == \
            (event["EventId"], event["EventName"], event["EventSource"])
        assert event["EventTime"].isoformat().replace("+00:00", "Z") == record["eventTime"]


# -- the trigger shape -----------------------------------------------------------------------------------------


def test_the_api_call_samples_are_the_ones_test_triggers_leaves_to_this_file() -> None:
    from test_triggers import API_CALL_EVENTS

    assert {name for name in sample_events() if "/" not in name} == API_CALL_EVENTS


def test_an_api_call_message_hands_over_its_record_and_where_it_came_from() -> None:
    [call] = deliveries_from_message(SAMPLE["Records"][0]["body"])

    assert isinstance(call, ApiCall)
    assert call.record == RECORD
    assert call.origin == ObjectRef(None, "eventbridge:111122223333:us-east-1")
    assert deliveries_from_event(json.loads((EVENTS_DIR / "eventbridge-api-call.json").read_text())) == [call]


def test_an_api_call_event_without_a_record_is_an_unknown_message() -> None:
    event = {**eventbridge_api_call(RECORD), "detail": "not a record"}

    with pytest.raises(UnknownMessage, match="detail is not a CloudTrail record"):
        deliveries_from_message(json.dumps(event))


@given(st.text(min_size=1, max_size=60).filter(lambda t: "\x00" not in t))
def test_an_s3_notification_whose_key_names_the_api_call_detail_type_is_still_an_object(prefix: str) -> None:
    key = f"{prefix}/AWS API Call via CloudTrail/file.json.gz"
    body = json.dumps({"version": "0", "id": "1", "detail-type": "Object Created", "source": "aws.s3",
                       "account": "111122223333", "time": "2024-05-05T05:30:12Z", "region": "us-east-1",
                       "resources": [], "detail": {"bucket": {"name": "b"}, "object": {"key": encode_key(key)}}})

    assert deliveries_from_message(body) == [ObjectRef("b", key)]


# -- through the function ----------------------------------------------------------------------------------------


@pytest.fixture
def handler(moto_table: tuple[Any, str], moto_bucket: tuple[Any, str],
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    import handlers.ingest as ingest

    client, table = moto_table
    monkeypatch.setenv("TABLE_NAME", table)
    monkeypatch.setattr(ingest, "s3_client", moto_bucket[0])
    monkeypatch.setattr(ingest, "dynamodb_client", client)
    ingest.pipeline.cache_clear()
    yield ingest
    ingest.pipeline.cache_clear()


def _events(client: Any, table: str) -> dict[str, Any]:
    items = client.get_paginator("scan").paginate(TableName=table).build_full_result()["Items"]
    return {item["pk"]["S"]: restore(deserialize(item)) for item in items if item["sk"]["S"] == "EVENT"}


def _metrics(printed: str) -> list[tuple[str, dict[str, Any]]]:
    """(metric name, its EMF document) of every metric Powertools printed."""
    found = []
    for line in printed.splitlines():
        if '"_aws"' in line:
            document = json.loads(line)
            for directive in document["_aws"]["CloudWatchMetrics"]:
                found += [(metric["Name"], document) for metric in directive["Metrics"]]
    return found


def test_an_api_call_through_the_queue_is_stored_counted_and_the_later_trail_file_adds_nothing(
        handler: Any, moto_table: tuple[Any, str], moto_bucket: tuple[Any, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    client, table = moto_table
    # When the tripwire's message arrives
    response = handler.lambda_handler(SAMPLE, LambdaContext())

    # Then the record is stored as its event, from the message, and counted as an OpsWorks call
    assert response == {"batchItemFailures": []}
    stored = _events(client, table)
    [event] = stored.values()
    assert event["event_id"] == RECORD["eventID"] and event["event_name"] == "DescribeStacks"
    assert event["read_only"] is True
    assert event["source_object"] == {"key": "eventbridge:111122223333:us-east-1"}
    calls = [(name, doc) for name, doc in _metrics(capsys.readouterr().out) if name == "OpsWorksCalls"]
    assert len(calls) == 1 and calls[0][1]["OpsWorksCalls"] == [1.0]
    # the alarm's metric is this one: Powertools names it in the namespace and with the service dimension
    # the template gives the function (the tests run without a service name, hence no dimension here)
    assert _alarm_metric() == ("OpsWorksTrail", "OpsWorksCalls", {"service": "opsworks-trail"})
    function_environment = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    assert (function_environment["POWERTOOLS_METRICS_NAMESPACE"], function_environment["POWERTOOLS_SERVICE_NAME"]) \
        == ("OpsWorksTrail", "opsworks-trail")

    # When the message is delivered again, nothing changes
    assert handler.lambda_handler(SAMPLE, LambdaContext()) == {"batchItemFailures": []}
    assert _events(client, table) == stored

    # When the trail file holding the same record arrives, it stores nothing twice
    s3, bucket = moto_bucket
    key = ("AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/05/"
           "111122223333_CloudTrail_us-east-1_20240505T0535Z_x.json.gz")
    s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(json.dumps({"Records": [RECORD]}).encode()))
    notification = {"version": "0", "id": "2", "detail-type": "Object Created", "source": "aws.s3",
                    "account": "111122223333", "time": "2024-05-05T05:35:12Z", "region": "us-east-1",
                    "resources": [], "detail": {"bucket": {"name": bucket}, "object": {"key": key}}}
    assert handler.lambda_handler(sqs_message(notification), LambdaContext()) == {"batchItemFailures": []}
    after = _events(client, table)
    assert set(after) == set(stored)
    assert _without_origin(after[next(iter(after))]) == _without_origin(event)


def test_an_api_call_whose_record_cannot_be_stored_is_reported_for_the_dead_letter_queue(handler: Any) -> None:
    record = {k: v for k, v in RECORD.items() if k != "eventID"}
    bad = sqs_message(eventbridge_api_call(record, event_id="e-1"), message_id="bad-1")["Records"]
    batch = {"Records": SAMPLE["Records"] + bad}

    response = handler.lambda_handler(batch, LambdaContext())

    assert response["batchItemFailures"] == [{"itemIdentifier": "bad-1"}]


def test_an_api_call_of_another_service_is_acknowledged_and_not_stored(
        handler: Any, moto_table: tuple[Any, str]) -> None:
    record = {**RECORD, "eventSource": "ec2.amazonaws.com", "eventName": "DescribeInstances"}

    response = handler.lambda_handler(sqs_message(eventbridge_api_call(record)), LambdaContext())

    assert response == {"batchItemFailures": []}
    assert _events(*moto_table) == {}


def _without_origin(event: Any) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k not in ("source_object", "ingested_at")}


@pytest.mark.corpus
def test_every_opsworks_record_of_the_corpus_is_stored_from_its_api_call_as_from_its_trail_file() -> None:
    from core.ingest.catalog import load_catalog
    from core.ingest.normalize import normalize
    from core.ingest.records import events_from_records
    from core.ingest.selection import Selection

    path = needs_shared("corpus/opsworks-docs-examples/opsworks-and-opsworks-cm-records.combined.json")
    records = json.loads(path.read_text(encoding="utf-8"))["Records"]
    selection = Selection(frozenset({"opsworks.amazonaws.com", "opsworks-cm.amazonaws.com"}))
    for record in records:
        [call] = deliveries_from_message(json.dumps(eventbridge_api_call(record)))
        assert isinstance(call, ApiCall)
        events, unusable = events_from_records([call.record], call.origin, selection, load_catalog(), "now")
        from_trail = normalize(record, ObjectRef("b", "AWSLogs/x.json.gz"), load_catalog(), "now")
        assert not unusable and [_without_origin(e) for e in events] == [_without_origin(from_trail)]


# -- the template ----------------------------------------------------------------------------------------------


def _condition(name: str, conditions: dict[str, Any], parameters: dict[str, str]) -> bool:
    return bool(_evaluate(conditions[name], conditions, parameters))


def _evaluate(value: Any, conditions: dict[str, Any], parameters: dict[str, str]) -> Any:
    """Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition and Ref (to a parameter, else its default)."""
    if isinstance(value, dict) and len(value) == 1:
        [(function, argument)] = value.items()
        if function == "Ref":
            return parameters.get(argument, load_template()["Parameters"].get(argument, {}).get("Default"))
        if function == "Condition":
            return _condition(argument, conditions, parameters)
        args = [_evaluate(a, conditions, parameters) for a in argument]
        return {"Fn::Equals": lambda: args[0] == args[1], "Fn::Not": lambda: not args[0],
                "Fn::And": lambda: all(args), "Fn::Or": lambda: any(args)}[function]()
    return value


def _created(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    conditions = template.get("Conditions", {})
    return {name: resource for name, resource in template["Resources"].items()
            if "Condition" not in resource or _condition(resource["Condition"], conditions, parameters)}


def _alarm_metric() -> tuple[str, str, dict[str, str]]:
    alarm = load_template()["Resources"]["OpsWorksCallsAlarm"]["Properties"]
    return alarm["Namespace"], alarm["MetricName"], {d["Name"]: d["Value"] for d in alarm["Dimensions"]}


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    return translate_template()


def test_tripwire_true_makes_the_rule_for_every_opsworks_api_call_to_the_queue_and_the_alarm(
        translated: dict[str, Any]) -> None:
    created = _created(translated, {"Tripwire": "true", "AlarmTopicArn": "arn:aws:sns:us-east-1:111122223333:ops"})

    rule = created["OpsWorksTripwireRule"]["Properties"]
    assert rule["State"] == "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"  # read-only calls too
    assert rule["EventPattern"] == {"source": ["aws.opsworks", "aws.opsworks-cm"],
                                    "detail-type": ["AWS API Call via CloudTrail"]}
    assert [t["Arn"] for t in rule["Targets"]] == [{"Fn::GetAtt": ["IngestQueue", "Arn"]}]
    alarm = created["OpsWorksCallsAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("OpsWorksTrail", "OpsWorksCalls")
    assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["AlarmActions"] == {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    statements = created["IngestQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    tripwire = [s["Fn::If"][1] for s in statements if s["Fn::If"][0] == "Tripwire"]
    assert tripwire == [{"Sid": "AllowOpsWorksTripwireRule", "Effect": "Allow",
                         "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage",
                         "Resource": {"Fn::GetAtt": ["IngestQueue", "Arn"]},
                         "Condition": {"ArnEquals": {
                             "aws:SourceArn": {"Fn::GetAtt": ["OpsWorksTripwireRule", "Arn"]}}}}]


def test_tripwire_false_makes_neither_rule_nor_alarm(translated: dict[str, Any]) -> None:
    for parameters in ({}, {"Tripwire": "false"}):
        created = _created(translated, parameters)
        assert not {"OpsWorksTripwireRule", "OpsWorksCallsAlarm"} & set(created)
        assert not any("OpsWorks" in str(r.get("Properties", {}).get("MetricName", "")) for r in created.values())
    assert translated["Conditions"]["Tripwire"] == {"Fn::Equals": [{"Ref": "Tripwire"}, "true"]}


def test_the_tripwire_stack_creates_with_the_rule_in_moto(translated: dict[str, Any]) -> None:
    from moto import mock_aws

    from test_template import _create_stack

    with mock_aws():
        outputs = _create_stack(translated, {"Tripwire": "true"})
        rules = {r["Name"]: r for r in boto3.client("events", region_name="us-east-1").list_rules()["Rules"]}
        [tripwire] = [r for r in rules.values() if r["Arn"] == outputs["TripwireRuleArn"]]
        assert json.loads(tripwire["EventPattern"])["source"] == ["aws.opsworks", "aws.opsworks-cm"]
