"""normalize(): one CloudTrail record -> the normalized event of docs/layout.md, field by field."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from core.ingest.catalog import REDACTED, load_catalog
from core.ingest.normalize import InvalidRecord, iso_utc, normalize, normalize_actor
from core.model import ObjectRef

CATALOG = load_catalog()
INGESTED_AT = "2024-03-01T00:00:00Z"
SOURCE = ObjectRef("trail-bucket", "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/f.json.gz")

IAM_USER = {
    "type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": "arn:aws:iam::111122223333:user/alice",
    "accountId": "111122223333", "accessKeyId": "AKIAEXAMPLE", "userName": "alice",
}
ASSUMED_ROLE = {
    "type": "AssumedRole", "principalId": "AROAEXAMPLE:deploy-session",
    "arn": "arn:aws:sts::111122223333:assumed-role/DeployRole/deploy-session",
    "accountId": "111122223333", "accessKeyId": "ASIAEXAMPLE",
    "sessionContext": {
        "sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLE",
                          "arn": "arn:aws:iam::111122223333:role/DeployRole", "accountId": "111122223333",
                          "userName": "DeployRole"},
        "attributes": {"creationDate": "2024-03-01T09:00:00Z", "mfaAuthenticated": "true"},
    },
}


def record(**overrides: Any) -> dict[str, Any]:
    """A complete OpsWorks CreateLayer record; keyword arguments replace (or, as None, delete) fields."""
    base: dict[str, Any] = {
        "eventVersion": "1.09", "userIdentity": copy.deepcopy(IAM_USER), "eventTime": "2024-03-01T10:15:30Z",
        "eventSource": "opsworks.amazonaws.com", "eventName": "CreateLayer", "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.7", "userAgent": "aws-cli/2.15.30",
        "requestParameters": {"stackId": "stack-1", "name": "web", "type": "custom"},
        "responseElements": {"layerId": "layer-1"},
        "requestID": "req-1", "eventID": "evt-1", "readOnly": False, "eventType": "AwsApiCall",
        "managementEvent": True, "recipientAccountId": "111122223333", "eventCategory": "Management",
    }
    for key, value in overrides.items():
        if value is None:
            base.pop(key, None)
        else:
            base[key] = value
    return base


def norm(rec: dict[str, Any], source: ObjectRef | None = SOURCE) -> dict[str, Any]:
    return normalize(rec, source, CATALOG, INGESTED_AT)


# -- the whole event ------------------------------------------------------------------------------


def test_a_complete_record_normalizes_to_every_schema_field() -> None:
    event = norm(record(sharedEventID="shared-1", vpcEndpointId="vpce-0abc"))

    assert event == {
        "event_id": "evt-1",
        "event_time": "2024-03-01T10:15:30Z",
        "event_source": "opsworks.amazonaws.com",
        "event_name": "CreateLayer",
        "event_type": "AwsApiCall",
        "event_version": "1.09",
        "service": "opsworks",
        "read_only": False,
        "outcome": "success",
        "region": "us-east-1",
        "account_id": "111122223333",
        "actor": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice", "principal_id": "AIDAEXAMPLE",
                  "account_id": "111122223333", "name": "alice", "access_key_id": "AKIAEXAMPLE"},
        "source_ip": "203.0.113.7",
        "user_agent": "aws-cli/2.15.30",
        "request_id": "req-1",
        "shared_event_id": "shared-1",
        "vpc_endpoint_id": "vpce-0abc",
        "resources": [{"type": "stack", "id": "stack-1"}, {"type": "layer", "id": "layer-1"}],
        "request_parameters": {"stackId": "stack-1", "name": "web", "type": "custom"},
        "response_elements": {"layerId": "layer-1"},
        "source_object": {"bucket": "trail-bucket", "key": SOURCE.key},
        "ingested_at": INGESTED_AT,
    }


def test_normalize_does_not_modify_the_record() -> None:
    rec = record(requestParameters={"stackId": "s", "appSource": {"password": "pw"}})
    before = copy.deepcopy(rec)

    norm(rec)

    assert rec == before


def test_the_event_is_json_serializable() -> None:
    json.dumps(norm(record()))


# -- time -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw, expected", [
    ("2024-03-01T10:15:30Z", "2024-03-01T10:15:30Z"),
    ("2024-03-01T10:15:30+00:00", "2024-03-01T10:15:30Z"),
    ("2024-03-01T12:15:30+02:00", "2024-03-01T10:15:30Z"),
    ("2024-03-01T10:15:30", "2024-03-01T10:15:30Z"),  # no zone: CloudTrail times are UTC
])
def test_event_time_is_iso_utc_with_z(raw: str, expected: str) -> None:
    assert norm(record(eventTime=raw))["event_time"] == expected
    assert iso_utc(raw) == expected


@pytest.mark.parametrize("bad", ["yesterday", "2024-13-01T00:00:00Z", "", 1709288130, None])
def test_a_missing_or_unparseable_event_time_is_an_invalid_record(bad: Any) -> None:
    rec = record()
    rec["eventTime"] = bad

    with pytest.raises(InvalidRecord, match="eventTime"):
        norm(rec)


@pytest.mark.parametrize("bad", [None, "", 42])
def test_a_missing_event_id_is_an_invalid_record(bad: Any) -> None:
    rec = record()
    if bad is None:
        del rec["eventID"]
    else:
        rec["eventID"] = bad

    with pytest.raises(InvalidRecord, match="eventID"):
        norm(rec)


# -- service, read_only, outcome ------------------------------------------------------------------


def test_opsworks_cm_records_have_service_opsworks_cm() -> None:
    event = norm(record(eventSource="opsworks-cm.amazonaws.com", eventName="DescribeServers", readOnly=None,
                        requestParameters={}, responseElements=None))

    assert event["service"] == "opsworks-cm"
    assert event["read_only"] is True  # from the catalog: the record has no readOnly


def test_a_record_of_another_service_gets_its_short_name() -> None:
    assert norm(record(eventSource="ec2.amazonaws.com", eventName="RunInstances"))["service"] == "ec2"


def test_a_record_without_event_source_has_no_service_rather_than_an_empty_one() -> None:
    event = norm({"eventID": "insight-1", "eventTime": "2020-09-09T23:00:00Z", "eventType": "AwsCloudTrailInsight",
                  "awsRegion": "us-east-1", "recipientAccountId": "123456789012"}, None)

    assert "service" not in event
    assert "event_source" not in event
    assert "read_only" not in event
    assert "" not in event.values()


@pytest.mark.parametrize("flag, expected", [(True, True), (False, False), ("true", True), ("false", False),
                                            ("TRUE", True)])
def test_read_only_comes_from_the_record_when_it_says(flag: Any, expected: bool) -> None:
    # DescribeInstances is read-only in the catalog: the record's own flag must still win.
    event = norm(record(eventName="DescribeInstances", readOnly=flag))

    assert event["read_only"] is expected


@pytest.mark.parametrize("name, expected", [("DescribeInstances", True), ("CreateLayer", False),
                                            ("DeleteStack", False), ("ListTags", True)])
def test_read_only_falls_back_to_the_catalog(name: str, expected: bool) -> None:
    assert norm(record(eventName=name, readOnly=None))["read_only"] is expected


def test_read_only_of_an_unknown_action_falls_back_to_its_name() -> None:
    assert norm(record(eventName="DescribeFuture", readOnly=None))["read_only"] is True
    assert norm(record(eventName="DoFuture", readOnly=None))["read_only"] is False


@pytest.mark.parametrize("fields", [{"errorCode": "AccessDenied"}, {"errorMessage": "User is not authorized"},
                                    {"errorCode": "ValidationException", "errorMessage": "bad stack"}])
def test_an_error_code_or_message_makes_the_outcome_failure(fields: dict[str, str]) -> None:
    event = norm(record(**fields))

    assert event["outcome"] == "failure"
    assert event.get("error_code") == fields.get("errorCode")
    assert event.get("error_message") == fields.get("errorMessage")


def test_no_error_means_success_and_no_error_fields() -> None:
    event = norm(record())

    assert event["outcome"] == "success"
    assert "error_code" not in event and "error_message" not in event


# -- account --------------------------------------------------------------------------------------


def test_account_id_is_the_recipient_account_first() -> None:
    identity = dict(IAM_USER, accountId="999999999999")  # a cross-account caller

    assert norm(record(userIdentity=identity))["account_id"] == "111122223333"


def test_account_id_falls_back_to_the_identity_account() -> None:
    event = norm(record(recipientAccountId=None))

    assert event["account_id"] == "111122223333"


def test_no_account_anywhere_means_no_account_id() -> None:
    event = norm(record(recipientAccountId=None, userIdentity={"type": "AWSService", "invokedBy": "x.amazonaws.com"}))

    assert "account_id" not in event


# -- actor ----------------------------------------------------------------------------------------


def test_iam_user_actor() -> None:
    assert normalize_actor(IAM_USER) == {
        "type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice", "principal_id": "AIDAEXAMPLE",
        "account_id": "111122223333", "name": "alice", "access_key_id": "AKIAEXAMPLE"}


def test_assumed_role_actor_is_named_by_its_session_issuer() -> None:
    assert normalize_actor(ASSUMED_ROLE) == {
        "type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/DeployRole/deploy-session",
        "principal_id": "AROAEXAMPLE:deploy-session", "account_id": "111122223333", "name": "DeployRole",
        "access_key_id": "ASIAEXAMPLE", "session_issuer_arn": "arn:aws:iam::111122223333:role/DeployRole",
        "mfa_authenticated": True, "session_created": "2024-03-01T09:00:00Z"}


@pytest.mark.parametrize("raw, expected", [("true", True), ("false", False), (True, True), (False, False),
                                           ("FALSE", False)])
def test_mfa_authenticated_is_a_boolean(raw: Any, expected: bool) -> None:
    identity = copy.deepcopy(ASSUMED_ROLE)
    identity["sessionContext"]["attributes"]["mfaAuthenticated"] = raw

    assert normalize_actor(identity)["mfa_authenticated"] is expected


def test_mfa_authenticated_is_absent_when_the_record_does_not_say() -> None:
    identity = copy.deepcopy(ASSUMED_ROLE)
    del identity["sessionContext"]["attributes"]["mfaAuthenticated"]

    assert "mfa_authenticated" not in normalize_actor(identity)


def test_root_actor_has_no_invented_name() -> None:
    root = {"type": "Root", "principalId": "111122223333", "arn": "arn:aws:iam::111122223333:root",
            "accountId": "111122223333", "accessKeyId": "ASIAROOT"}

    assert normalize_actor(root) == {"type": "Root", "principal_id": "111122223333",
                                     "arn": "arn:aws:iam::111122223333:root", "account_id": "111122223333",
                                     "access_key_id": "ASIAROOT"}


def test_aws_service_actor_is_named_by_invoked_by() -> None:
    actor = normalize_actor({"type": "AWSService", "invokedBy": "opsworks.amazonaws.com"})

    assert actor == {"type": "AWSService", "name": "opsworks.amazonaws.com", "invoked_by": "opsworks.amazonaws.com"}


def test_a_user_name_wins_over_invoked_by() -> None:
    actor = normalize_actor(dict(IAM_USER, invokedBy="signin.amazonaws.com"))

    assert actor["name"] == "alice"
    assert actor["invoked_by"] == "signin.amazonaws.com"


def test_empty_identity_strings_are_absent_not_empty() -> None:
    actor = normalize_actor({"type": "IdentityCenterUser", "arn": "", "accountId": "111122223333",
                             "accessKeyId": ""})

    assert actor == {"type": "IdentityCenterUser", "account_id": "111122223333"}


def test_a_record_without_user_identity_has_no_actor() -> None:
    assert "actor" not in norm(record(userIdentity=None))


# -- copied fields --------------------------------------------------------------------------------


def test_shared_event_id_is_read_from_the_sharedEventID_spelling() -> None:
    assert norm(record(sharedEventID="abc"))["shared_event_id"] == "abc"
    # The peers' misspelling is not CloudTrail's field and must not be picked up.
    assert "shared_event_id" not in norm(record(sharedEventId="abc"))


def test_vpc_endpoint_id_is_copied() -> None:
    assert norm(record(vpcEndpointId="vpce-1234"))["vpc_endpoint_id"] == "vpce-1234"


def test_absent_and_empty_fields_are_absent_not_empty_strings() -> None:
    event = norm(record(userAgent="", sourceIPAddress=None, requestID=None, eventType=None, awsRegion=None))

    for name in ("user_agent", "source_ip", "request_id", "event_type", "region", "shared_event_id",
                 "vpc_endpoint_id", "error_code", "error_message"):
        assert name not in event, name
    assert "" not in event.values()


def test_null_parameters_are_absent() -> None:
    event = norm(record(requestParameters=None, responseElements=None))

    assert "request_parameters" not in event
    assert "response_elements" not in event


def test_response_elements_null_in_the_record_is_absent_in_the_event() -> None:
    rec = record()
    rec["responseElements"] = None

    event = norm(rec)

    assert "response_elements" not in event
    assert event["resources"] == [{"type": "stack", "id": "stack-1"}]


# -- resources, source object, secrets ------------------------------------------------------------


def test_resources_come_from_parameters_and_opsworks_arns_in_the_record() -> None:
    rec = record(eventName="TagResource", readOnly=None,
                 requestParameters={"resourceArn": "arn:aws:opsworks:us-east-1:111122223333:stack/stack-9/",
                                    "tags": {"team": "web"}},
                 responseElements=None,
                 resources=[{"ARN": "arn:aws:opsworks:us-east-1:111122223333:layer/layer-9",
                             "accountId": "111122223333"}])

    assert norm(rec)["resources"] == [{"type": "stack", "id": "stack-9"}, {"type": "layer", "id": "layer-9"}]


def test_no_resources_means_no_resources_field() -> None:
    event = norm(record(eventName="DescribeStacks", requestParameters={}, responseElements=None))

    assert "resources" not in event


def test_local_files_have_a_source_object_without_bucket() -> None:
    event = norm(record(), ObjectRef(None, "/tmp/trail.json.gz"))

    assert event["source_object"] == {"key": "/tmp/trail.json.gz"}


def test_no_source_means_no_source_object() -> None:
    assert "source_object" not in norm(record(), None)


def test_secrets_in_request_and_response_are_redacted_and_appear_nowhere_in_the_event() -> None:
    rec = record(
        eventSource="opsworks-cm.amazonaws.com", eventName="CreateServer",
        requestParameters={"serverName": "chef-prod", "customPrivateKey": "PLANTED-KEY-1",
                           "engineAttributes": [{"name": "CHEF_AUTOMATE_ADMIN_PASSWORD", "value": "PLANTED-PW-2"}]},
        responseElements={"server": {"serverName": "chef-prod",
                                     "engineAttributes": [{"name": "CHEF_AUTOMATE_PIVOTAL_KEY",
                                                           "value": "PLANTED-KEY-3"}]}})

    event = norm(rec)

    assert event["request_parameters"]["customPrivateKey"] == REDACTED
    assert event["request_parameters"]["engineAttributes"] == [
        {"name": "CHEF_AUTOMATE_ADMIN_PASSWORD", "value": REDACTED}]
    assert event["response_elements"]["server"]["engineAttributes"] == [
        {"name": "CHEF_AUTOMATE_PIVOTAL_KEY", "value": REDACTED}]
    text = json.dumps(event)
    assert "PLANTED" not in text
    assert event["resources"] == [{"type": "server", "id": "chef-prod"}]
