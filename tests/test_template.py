"""template.yaml held against the code and CONTRACTS.md, offline.

The SAM template is translated with samtranslator (what CloudFormation's transform does) and the
result is created in moto's CloudFormation; the table schema, handler path, environment names and IAM
statements are compared with the sources that depend on them, so a change on either side that breaks
the other fails here rather than in a deployed account.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import importlib
import io
import json
import re
import shlex
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from template_schema import (
    FUNCTION_LOGICAL_ID,
    PACKAGED_CODE_BUCKET,
    PACKAGED_CODE_KEY,
    TABLE_LOGICAL_ID,
    TEMPLATE_PATH,
    load_template,
    table_definition_from_template,
    table_ttl_attribute,
    translate_template,
)

REPO = Path(__file__).resolve().parent.parent
CONTRACTS = REPO / "CONTRACTS.md"
SETTINGS_SOURCE = REPO / "src" / "core" / "settings.py"
STORE_SOURCE = REPO / "src" / "core" / "ingest" / "store.py"
REGION = "us-east-1"

# Environment variables the function reads through Powertools, not through core.settings.
POWERTOOLS_NAMES = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "LOG_LEVEL"}
# The only actions that may be granted on Resource "*": they have no resource-level permissions.
ACTIONS_WITHOUT_RESOURCES = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "cloudtrail:ListPublicKeys",  # the Service Authorization Reference lists no resource type for it
    "xray:GetSamplingStatisticSummaries",
    "cloudwatch:PutMetricData",
}


@pytest.fixture(scope="module")
def sam() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    return translate_template(region=REGION)


def _function(sam: dict[str, Any]) -> dict[str, Any]:
    return sam["Resources"][FUNCTION_LOGICAL_ID]["Properties"]


def _template_env_names(sam: dict[str, Any]) -> set[str]:
    global_env = sam.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    function_env = _function(sam).get("Environment", {}).get("Variables", {})
    return set(global_env) | set(function_env)


def _contract_env_names() -> set[str]:
    """Names in the first column of CONTRACTS.md's settings table."""
    text = CONTRACTS.read_text(encoding="utf-8")
    section = text.split("## Function settings", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\|\s*([A-Z][A-Z0-9_]+)\s*\|", section, flags=re.MULTILINE))


def _contract_indexes() -> dict[str, tuple[str, str]]:
    """{index name: (hash key, range key)} from CONTRACTS.md's GSI list."""
    text = CONTRACTS.read_text(encoding="utf-8")
    found = re.findall(r"`(\w+)`\s*:\s*`(\w+)` \(S\) HASH, `(\w+)` \(S\) RANGE", text)
    return {name: (hash_key, range_key) for name, hash_key, range_key in found}


def _upper_snake_literals(path: Path) -> set[str]:
    """Every string constant in a module that is a whole UPPER_SNAKE name (read, not imported)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and re.fullmatch(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+", node.value)
    }


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _branches(value: Any) -> Iterator[Any]:
    """A policy element with Fn::If expanded into both branches (AWS::NoValue dropped)."""
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        _, when_true, when_false = value["Fn::If"]
        yield from _branches(when_true)
        yield from _branches(when_false)
    elif value != {"Ref": "AWS::NoValue"}:
        yield value


def _policy_statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(resource id, statement) for every identity and resource policy in a CloudFormation template."""
    for logical_id, resource in template["Resources"].items():
        kind, props = resource["Type"], resource.get("Properties", {})
        documents = []
        if kind == "AWS::IAM::Role":
            documents += [policy["PolicyDocument"] for policy in props.get("Policies", [])]
        elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::SQS::QueuePolicy",
                      "AWS::S3::BucketPolicy", "AWS::SNS::TopicPolicy"):
            documents.append(props["PolicyDocument"])
        for document in documents:
            for statement in _as_list(document["Statement"]):
                for branch in _branches(statement):
                    yield logical_id, branch


def _role_statement(translated: dict[str, Any], sid: str) -> dict[str, Any]:
    """A statement of the function's role: inline, or in a role policy attached to it."""
    resources = translated["Resources"]
    attached = {k for k, r in resources.items() if r["Type"] == "AWS::IAM::Policy"
                and {"Ref": "IngestFunctionRole"} in r["Properties"].get("Roles", [])}
    for logical_id, statement in _policy_statements(translated):
        if logical_id in {"IngestFunctionRole", *attached} and statement.get("Sid") == sid:
            return statement
    raise AssertionError(f"IngestFunctionRole has no statement {sid!r}")


# --- (a) the template translates and creates ------------------------------------------------------


def _code_zip() -> bytes:
    """A stand-in deployment package: moto stores the code, it does not run it here."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handlers/ingest.py", "def lambda_handler(event, context):\n    return {}\n")
    return buffer.getvalue()


# Resource types moto's CloudFormation does not create: it skips them with a warning (they are still
# checked by cfn-lint, checkov and the IAM tests below). A new type outside this list fails the test,
# so nothing silently goes untested.
MOTO_SKIPS = {
    "AWS::CloudTrail::Trail",
    "AWS::CloudWatch::Alarm",
    "AWS::S3::BucketPolicy",
    "AWS::SNS::Subscription",
    "AWS::SQS::QueuePolicy",
}


def _for_moto(translated: dict[str, Any]) -> dict[str, Any]:
    """The translated template less the outputs that GetAtt a resource moto skips (it rejects those)."""
    from moto.cloudformation.parsing import resource_class_from_type

    template = json.loads(json.dumps(translated))
    skipped = {k: r["Type"] for k, r in template["Resources"].items() if resource_class_from_type(r["Type"]) is None}
    unexpected = set(skipped.values()) - MOTO_SKIPS
    assert not unexpected, f"moto cannot create {sorted(unexpected)}: add to MOTO_SKIPS knowingly"
    template["Outputs"] = {
        name: output for name, output in template.get("Outputs", {}).items()
        if not (isinstance(output["Value"], dict) and output["Value"].get("Fn::GetAtt", [None])[0] in skipped)
    }
    return template


def _create_stack(translated: dict[str, Any], parameters: dict[str, str]) -> dict[str, str]:
    """Create the translated template in moto; returns the stack's outputs."""
    translated = _for_moto(translated)
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=PACKAGED_CODE_BUCKET)
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=PACKAGED_CODE_BUCKET, Key=PACKAGED_CODE_KEY, Body=_code_zip()
    )
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    cloudformation.create_stack(
        StackName="opsworks-trail-test",
        TemplateBody=json.dumps(translated),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    stack = cloudformation.describe_stacks(StackName="opsworks-trail-test")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def _function_environment(outputs: dict[str, str]) -> dict[str, str]:
    configuration = boto3.client("lambda", region_name=REGION).get_function_configuration(
        FunctionName=outputs["IngestFunctionName"]
    )
    return configuration["Environment"]["Variables"]


def test_created_bucket_stack_creates_and_the_function_names_its_table(translated: dict[str, Any]) -> None:
    # Given the translated template, with a new trail bucket and trail and a 30-day retention
    with mock_aws():
        # When CloudFormation (moto) creates it
        outputs = _create_stack(
            translated, {"CreateTrailBucket": "true", "CreateTrail": "true", "RetentionDays": "30"}
        )
        # Then the function's environment names the stack's table, which exists with the template's keys
        environment = _function_environment(outputs)
        assert environment["TABLE_NAME"] == outputs["EventsTableName"]
        table = boto3.client("dynamodb", region_name=REGION).describe_table(TableName=environment["TABLE_NAME"])
        assert table["Table"]["KeySchema"] == table_definition_from_template()["KeySchema"]
        assert {index["IndexName"] for index in table["Table"]["GlobalSecondaryIndexes"]} == set(
            _contract_indexes()
        )
        assert environment["RETENTION_DAYS"] == "30"
        assert environment["EVENT_SOURCES"] == "opsworks.amazonaws.com,opsworks-cm.amazonaws.com"
        # and the bucket and both queues exist
        boto3.client("s3", region_name=REGION).head_bucket(Bucket=outputs["TrailBucketName"])
        sqs = boto3.client("sqs", region_name=REGION)
        attributes = sqs.get_queue_attributes(QueueUrl=outputs["IngestQueueUrl"], AttributeNames=["All"])
        redrive = json.loads(attributes["Attributes"]["RedrivePolicy"])
        assert redrive["deadLetterTargetArn"] == outputs["DeadLetterQueueArn"]


def test_attach_mode_with_eventbridge_creates_without_a_bucket(translated: dict[str, Any]) -> None:
    with mock_aws():
        outputs = _create_stack(
            translated,
            {"CreateTrailBucket": "false", "ExistingTrailBucketName": "org-trail-logs",
             "NotificationMode": "EventBridge"},
        )
        environment = _function_environment(outputs)
        boto3.client("dynamodb", region_name=REGION).describe_table(TableName=environment["TABLE_NAME"])
        assert outputs["TrailBucketName"] == "org-trail-logs"
        # RetentionDays=0: the function gets no RETENTION_DAYS at all (CONTRACTS.md: unset = keep forever)
        assert "RETENTION_DAYS" not in environment
        # and the rule routes Object Created events under the log prefix of that bucket
        rules = boto3.client("events", region_name=REGION).list_rules()["Rules"]
        assert len(rules) == 1
        pattern = json.loads(rules[0]["EventPattern"])
        assert pattern["detail-type"] == ["Object Created"]
        assert pattern["detail"] == {
            "bucket": {"name": ["org-trail-logs"]},
            "object": {"key": [{"prefix": "AWSLogs/"}]},
        }
        # and no bucket was created besides the one holding the code package
        buckets = boto3.client("s3", region_name=REGION).list_buckets()["Buckets"]
        assert [bucket["Name"] for bucket in buckets] == [PACKAGED_CODE_BUCKET]


def test_attach_mode_with_sns_creates_without_an_eventbridge_rule(translated: dict[str, Any]) -> None:
    with mock_aws():
        topic_arn = boto3.client("sns", region_name=REGION).create_topic(Name="trail-topic")["TopicArn"]
        outputs = _create_stack(
            translated,
            {"CreateTrailBucket": "false", "ExistingTrailBucketName": "org-trail-logs",
             "NotificationMode": "SNS", "TrailTopicArn": topic_arn},
        )
        # Then the stack creates with no EventBridge rule (moto skips the subscription itself)
        assert boto3.client("events", region_name=REGION).list_rules()["Rules"] == []
        assert outputs["TrailBucketName"] == "org-trail-logs"


# --- (b) the table definition the other tests build from -------------------------------------------


def test_table_definition_follows_contracts() -> None:
    definition = table_definition_from_template()

    assert set(definition) == {"KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes", "BillingMode"}
    assert definition["BillingMode"] == "PAY_PER_REQUEST"
    assert definition["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    indexes = {
        index["IndexName"]: tuple(key["AttributeName"] for key in index["KeySchema"])
        for index in definition["GlobalSecondaryIndexes"]
    }
    contract = _contract_indexes()
    assert contract, "CONTRACTS.md lists no GSI in the expected `name` : `hash` (S) HASH, ... form"
    assert indexes == contract
    assert all(index["Projection"] == {"ProjectionType": "ALL"} for index in definition["GlobalSecondaryIndexes"])
    assert all(attribute["AttributeType"] == "S" for attribute in definition["AttributeDefinitions"])
    assert table_ttl_attribute() == "expires_at"


def test_table_definition_creates_a_moto_table(table_definition: dict[str, Any]) -> None:
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(TableName="events", **table_definition)
        assert client.describe_table(TableName="events")["Table"]["TableStatus"] == "ACTIVE"


def test_events_table_is_kept_and_protected(sam: dict[str, Any]) -> None:
    table = sam["Resources"][TABLE_LOGICAL_ID]
    props = table["Properties"]
    assert table["DeletionPolicy"] == "Retain"
    assert props["DeletionProtectionEnabled"] is True
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True


# --- (c) the template against the code -------------------------------------------------------------


def test_handler_path_resolves_to_the_ingest_module(sam: dict[str, Any]) -> None:
    function = _function(sam)
    module_path, _, attribute = function["Handler"].rpartition(".")
    module_file = REPO / function["CodeUri"] / Path(*module_path.split(".")).with_suffix(".py")

    assert module_file == REPO / "src" / "handlers" / "ingest.py"
    assert module_file.is_file(), f"Handler {function['Handler']} needs {module_file.relative_to(REPO)}"
    try:
        module = importlib.import_module(module_path)
    except ImportError as exc:  # a missing optional dependency: the file check above still holds
        pytest.skip(f"{module_path} is not importable here: {exc}")
    assert callable(getattr(module, attribute, None)), f"{module_path} has no function {attribute}"


def test_template_sets_exactly_the_environment_of_contracts(sam: dict[str, Any]) -> None:
    template_names = _template_env_names(sam)
    contract_names = _contract_env_names()
    assert "TABLE_NAME" in contract_names, "CONTRACTS.md settings table not found"
    # LOG_LEVEL is Powertools' own setting, not one of the function's.
    assert template_names - {"LOG_LEVEL"} == contract_names


def test_template_environment_is_what_core_settings_reads(sam: dict[str, Any]) -> None:
    if not SETTINGS_SOURCE.exists():
        pytest.skip("src/core/settings.py is not written yet")
    template_names = _template_env_names(sam) - POWERTOOLS_NAMES
    settings_names = _upper_snake_literals(SETTINGS_SOURCE) - POWERTOOLS_NAMES

    unread = template_names - settings_names
    missing = settings_names - template_names
    assert not unread, f"template.yaml sets {sorted(unread)}, which core/settings.py never reads"
    assert not missing, f"core/settings.py reads {sorted(missing)}, which template.yaml never sets"


def test_the_role_allows_exactly_the_dynamodb_calls_of_core_store(translated: dict[str, Any]) -> None:
    source = STORE_SOURCE.read_text(encoding="utf-8")
    # client.put_item(...) and client.get_item passed to a retry helper both count.
    calls = set(re.findall(r"\bclient\.(\w+)\b", source)) | set(re.findall(r'get_paginator\("(\w+)"\)', source))
    calls.discard("get_paginator")
    actions = {"dynamodb:" + "".join(part.title() for part in call.split("_")) for call in calls}
    granted = set(_as_list(_role_statement(translated, "EventsTable")["Action"]))

    assert {"dynamodb:BatchWriteItem", "dynamodb:Query"} <= actions, "the patterns here no longer match ingest/store.py"
    assert actions <= granted, f"ingest/store.py calls {sorted(actions - granted)} that the role does not allow"
    # Least privilege: nothing granted that the code never calls (DeleteItem was, once).
    assert granted <= actions, f"the role allows {sorted(granted - actions)}, which ingest/store.py never calls"


def test_dynamodb_access_is_limited_to_the_events_table_and_its_indexes(translated: dict[str, Any]) -> None:
    statement = _role_statement(translated, "EventsTable")
    assert statement["Resource"] == [
        {"Fn::GetAtt": [TABLE_LOGICAL_ID, "Arn"]},
        {"Fn::Sub": "${EventsTable.Arn}/index/*"},
    ]


def test_s3_reads_are_limited_to_the_log_prefix(translated: dict[str, Any]) -> None:
    read = _role_statement(translated, "ReadTrailLogFiles")
    assert read["Action"] == "s3:GetObject"
    assert read["Resource"]["Fn::Sub"][0] == "arn:${AWS::Partition}:s3:::${Bucket}/${LogPrefix}*"


def test_kms_decrypt_only_when_a_key_is_given(translated: dict[str, Any]) -> None:
    document = translated["Resources"]["IngestFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    conditional = [s for s in document["Statement"] if "Fn::If" in s]
    kms = [s for s in conditional if s["Fn::If"][1].get("Sid") == "DecryptTrailLogFiles"]
    assert len(kms) == 1
    condition, granted, otherwise = kms[0]["Fn::If"]
    assert condition == "HasKmsKey"
    assert granted["Resource"] == {"Ref": "KmsKeyArn"}
    assert otherwise == {"Ref": "AWS::NoValue"}


def test_no_policy_allows_wildcard_actions_or_any_resource(translated: dict[str, Any]) -> None:
    problems = []
    for logical_id, statement in _policy_statements(translated):
        if statement.get("Effect") != "Allow":
            continue  # a Deny (e.g. of insecure transport) may be as broad as it likes
        actions = _as_list(statement.get("Action", []))
        problems += [f"{logical_id}: wildcard action {a!r}" for a in actions if "*" in a]
        if "*" in _as_list(statement.get("Resource", [])):
            broad = set(actions) - ACTIONS_WITHOUT_RESOURCES
            if broad:
                problems.append(f"{logical_id}: Resource '*' for {sorted(broad)}")
        if "NotAction" in statement or "NotResource" in statement:
            problems.append(f"{logical_id}: NotAction/NotResource in an Allow")
    assert not problems, "\n".join(problems)


def test_no_role_carries_managed_policies(translated: dict[str, Any]) -> None:
    # SAM would attach AWSLambdaSQSQueueExecutionRole & co. (Resource "*") to a role it generates.
    roles = {k: r for k, r in translated["Resources"].items() if r["Type"] == "AWS::IAM::Role"}
    assert set(roles) == {"IngestFunctionRole", "BatchOperationsRole"}
    assert all(not role["Properties"].get("ManagedPolicyArns") for role in roles.values())


def test_queue_consumption_is_partial_and_redriven(sam: dict[str, Any], translated: dict[str, Any]) -> None:
    timeout = sam["Globals"]["Function"]["Timeout"]
    queue = sam["Resources"]["IngestQueue"]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * timeout
    assert queue["RedrivePolicy"]["maxReceiveCount"] >= 5
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["IngestDeadLetterQueue", "Arn"]}
    mappings = [r for r in translated["Resources"].values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert len(mappings) == 1
    assert mappings[0]["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mappings[0]["Properties"]["EventSourceArn"] == {"Fn::GetAtt": ["IngestQueue", "Arn"]}


def test_function_runs_on_arm64_with_tracing(translated: dict[str, Any]) -> None:
    props = translated["Resources"][FUNCTION_LOGICAL_ID]["Properties"]
    assert props["Architectures"] == ["arm64"]
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["Runtime"].startswith("python3.1")


# --- (d) cfn-lint on both forms ---------------------------------------------------------------------


@pytest.mark.parametrize("form", ["sam", "translated"])
def test_cfn_lint_reports_no_errors(form: str, translated: dict[str, Any]) -> None:
    from cfnlint.api import lint

    text = TEMPLATE_PATH.read_text(encoding="utf-8") if form == "sam" else json.dumps(translated, indent=1)
    matches = lint(text, regions=[REGION])
    errors = [m for m in matches if m.rule.id.startswith("E")]
    assert not errors, "\n".join(f"{m.rule.id} line {m.linenumber}: {m.message}" for m in errors)


# --- (e) undeliverable notifications and the descriptions -------------------------------------------


def _statements(resource: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    """(condition, statement) of a queue policy whose statements are each wrapped in an Fn::If."""
    found = []
    for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
        condition, when_true, when_false = statement["Fn::If"]
        assert when_false == {"Ref": "AWS::NoValue"}
        found.append((condition, when_true))
    return found


def test_undeliverable_notifications_go_to_the_dead_letter_queue(sam: dict[str, Any]) -> None:
    dlq_arn = {"Fn::GetAtt": ["IngestDeadLetterQueue", "Arn"]}
    # EventBridge: retries, then the DLQ instead of dropping the event after 24 h
    for rule in ("TrailObjectCreatedRule", "OpsWorksTripwireRule"):
        target = sam["Resources"][rule]["Properties"]["Targets"][0]
        assert target["DeadLetterConfig"] == {"Arn": dlq_arn}
        assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] == 86400
    # SNS: the subscription's own redrive policy
    subscription = sam["Resources"]["TrailTopicSubscription"]["Properties"]
    assert subscription["RedrivePolicy"] == {"deadLetterTargetArn": dlq_arn}
    # and the DLQ accepts them from these rules or this topic only
    policy = sam["Resources"]["IngestDeadLetterQueuePolicy"]
    assert policy["Properties"]["Queues"] == [{"Ref": "IngestDeadLetterQueue"}]
    senders = {
        condition: (s["Principal"]["Service"], s["Action"], s["Resource"], s["Condition"]["ArnEquals"]["aws:SourceArn"])
        for condition, s in _statements(policy)
    }
    assert senders == {
        "UseEventBridge": ("events.amazonaws.com", "sqs:SendMessage", dlq_arn,
                           {"Fn::GetAtt": ["TrailObjectCreatedRule", "Arn"]}),
        "UseSns": ("sns.amazonaws.com", "sqs:SendMessage", dlq_arn, {"Ref": "TrailTopicArn"}),
        "Tripwire": ("events.amazonaws.com", "sqs:SendMessage", dlq_arn,
                     {"Fn::GetAtt": ["OpsWorksTripwireRule", "Arn"]}),
    }


def _evaluate(value: Any, parameters: dict[str, str]) -> Any:
    """Ref, Fn::Split and Fn::Select, as CloudFormation evaluates them."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return parameters[value["Ref"]]
    if isinstance(value, dict) and set(value) == {"Fn::Split"}:
        separator, text = value["Fn::Split"]
        return _evaluate(text, parameters).split(separator)
    if isinstance(value, dict) and set(value) == {"Fn::Select"}:
        index, items = value["Fn::Select"]
        return _evaluate(items, parameters)[int(index)]
    return value


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "ap-southeast-2", "us-gov-west-1", "cn-north-1"])
def test_the_sns_subscription_is_made_in_the_topics_own_region(
        region: str, sam: dict[str, Any], translated: dict[str, Any]) -> None:
    partition = {"us-gov-west-1": "aws-us-gov", "cn-north-1": "aws-cn"}.get(region, "aws")
    topic = f"arn:{partition}:sns:{region}:111122223333:org-trail-topic"
    for template in (sam, translated):
        subscription = template["Resources"]["TrailTopicSubscription"]["Properties"]
        assert _evaluate(subscription["Region"], {"TrailTopicArn": topic}) == region
        assert subscription["TopicArn"] == {"Ref": "TrailTopicArn"}


def test_descriptions_name_every_delivery_path(sam: dict[str, Any]) -> None:
    description = _function(sam)["Description"]
    assert len(description) <= 256  # Lambda's limit
    for shape in ("S3 event notifications", "SQS", "SNS", "CloudTrail", "EventBridge", "S3 Batch Operations"):
        assert shape in description
    alarm = sam["Resources"]["DeadLetterQueueAlarm"]["Properties"]["AlarmDescription"]
    assert "no known shape" in alarm and "EventBridge" in alarm


# --- (f) backfill through S3 Batch Operations ---------------------------------------------------------


def _backfill_parser() -> argparse.ArgumentParser:
    from cli import backfill

    parser = argparse.ArgumentParser(prog="opsworks-trail")
    backfill.add_parser(parser.add_subparsers(dest="command"))
    return parser


def _backfill_args(command: str) -> argparse.Namespace:
    words = shlex.split(command)
    assert words[:2] == ["opsworks-trail", "backfill"], command
    return _backfill_parser().parse_args(words[1:])


def test_batch_operations_resources_only_when_enabled(sam: dict[str, Any]) -> None:
    batch = {"BackfillBucket", "BackfillBucketPolicy", "BatchOperationsRole"}
    assert {k for k, r in sam["Resources"].items() if r.get("Condition") == "EnableBatchOperations"} == batch
    assert sam["Parameters"]["EnableBatchOperations"]["Default"] == "false"
    bucket = sam["Resources"]["BackfillBucket"]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True)
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert bucket["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] > 0
    deny = sam["Resources"]["BackfillBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert [s["Condition"] for s in deny if s["Effect"] == "Deny"] == [{"Bool": {"aws:SecureTransport": "false"}}]


def test_batch_operations_role_reaches_what_backfill_writes_and_nothing_else() -> None:
    from cli import backfill
    from core.model import ObjectRef

    role = translate_template(region=REGION)["Resources"]["BatchOperationsRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "batchoperations.s3.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    (policy,) = role["Policies"]
    statements = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    assert set(statements) == {"InvokeIngestFunction", "ReadManifests", "WriteReports"}
    assert statements["InvokeIngestFunction"]["Action"] == "lambda:InvokeFunction"
    assert statements["InvokeIngestFunction"]["Resource"] == {"Fn::GetAtt": [FUNCTION_LOGICAL_ID, "Arn"]}
    assert statements["ReadManifests"]["Action"] == ["s3:GetObject", "s3:GetObjectVersion"]
    assert statements["WriteReports"]["Action"] == "s3:PutObject"

    def pattern(sid: str) -> str:
        resource = statements[sid]["Resource"]["Fn::Sub"]
        assert resource.startswith("${BackfillBucket.Arn}/"), resource
        return resource.removeprefix("${BackfillBucket.Arn}/")

    # What backfill really writes and asks for, with its default --manifest-prefix and --report-bucket
    # standing for --manifest-bucket, as the stack's BackfillWithBatchOperationsCommand runs it.
    args = _backfill_args("opsworks-trail backfill s3://b/AWSLogs/ --batch-operations")
    written: dict[str, Any] = {}

    class S3:
        def put_object(self, **kwargs: Any) -> dict[str, str]:
            written.update(kwargs)
            return {"ETag": '"0123"'}

    class S3Control:
        def create_job(self, **kwargs: Any) -> dict[str, str]:
            written["job"] = kwargs
            return {"JobId": "job-1"}

    ref = ObjectRef("b", "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/02/x_20240502T0000Z_y.json.gz")
    backfill.start_batch_job(S3(), S3Control(), [ref], account_id="111122223333", role_arn="r",
                             function_arn="f", report_bucket="backfill", manifest_bucket="backfill",
                             prefix=args.manifest_prefix)
    assert fnmatch.fnmatchcase(written["Key"], pattern("ReadManifests")), written["Key"]
    report = written["job"]["Report"]
    # S3 writes the report as <Prefix>/job-<id>/manifest.json and <Prefix>/job-<id>/results/*.csv
    assert fnmatch.fnmatchcase(f"{report['Prefix']}/job-1/results/a.csv", pattern("WriteReports"))
    assert not fnmatch.fnmatchcase(f"{report['Prefix']}/job-1/results/a.csv", pattern("ReadManifests"))
    assert not fnmatch.fnmatchcase(written["Key"], pattern("WriteReports"))


def test_batch_operations_stack_outputs_make_a_backfill_command(translated: dict[str, Any]) -> None:
    with mock_aws():
        outputs = _create_stack(translated, {"EnableBatchOperations": "true"})
        # The command in the outputs is one backfill accepts, with every value from the other outputs
        args = _backfill_args(outputs["BackfillWithBatchOperationsCommand"])
        assert args.batch_operations
        assert args.location == f"s3://{outputs['TrailBucketName']}/AWSLogs/"
        assert args.role_arn == outputs["BatchOperationsRoleArn"]
        assert args.function_arn == outputs["IngestFunctionArn"]
        assert args.report_bucket == outputs["BackfillBucketName"]
        assert args.account_id == outputs["AccountId"]
        assert args.manifest_bucket is None  # so the manifest goes to the report bucket, where the role reads it
        boto3.client("s3", region_name=REGION).head_bucket(Bucket=outputs["BackfillBucketName"])
        role_name = outputs["BatchOperationsRoleArn"].rsplit("/", 1)[-1]
        trust = boto3.client("iam", region_name=REGION).get_role(RoleName=role_name)["Role"]
        assert trust["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
            "Service": "batchoperations.s3.amazonaws.com"}
        queue = _backfill_args(outputs["BackfillWithQueueCommand"])
        assert queue.queue_url == outputs["IngestQueueUrl"] and not queue.batch_operations


def test_batch_operations_off_by_default(translated: dict[str, Any]) -> None:
    with mock_aws():
        outputs = _create_stack(translated, {})
        assert not {"BatchOperationsRoleArn", "BackfillBucketName", "BackfillWithBatchOperationsCommand"} & set(outputs)
        assert _backfill_args(outputs["BackfillWithQueueCommand"]).queue_url == outputs["IngestQueueUrl"]
        roles = boto3.client("iam", region_name=REGION).list_roles()["Roles"]
        assert not [r for r in roles if "batchoperations" in json.dumps(r.get("AssumeRolePolicyDocument", {}))]
