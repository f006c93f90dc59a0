"""The stack's two managed policies for people who read hold exactly the calls of the commands they serve:
the auditor's (query, report, failures) and the verifier's (the auditor's, and verify). The calls are
recorded from the commands themselves, run against moto, so a command that starts calling something new
fails here until its policy says so (and a policy that grants what no command calls fails too)."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import boto3
import pytest
from workshop.template import load_template

from cli.main import main
from core.ingest.items import event_items
from test_safe_output import hostile_event
from test_template import _as_list, _branches
from test_verify import SIGNER, Trail

REPO = Path(__file__).resolve().parent.parent
PUBLIC_KEYS_SOURCE = REPO / "src" / "core" / "ingest" / "publickeys.py"
S3_ACTIONS = {"ListObjectsV2": "s3:ListBucket", "ListObjects": "s3:ListBucket", "HeadBucket": "s3:ListBucket",
              "GetObject": "s3:GetObject", "HeadObject": "s3:GetObject"}
"""S3's operations as IAM names them (a HEAD is authorized as the GET it stands for)."""
BY_HAND = {"dynamodb:GetItem"}
"""Granted for reading one item by hand (the DynamoDB console's item view, PartiQL SELECT by key), which
the event item's headline attributes are for; no command needs it."""
RECORDING = {"dynamodb:PutItem"}
"""`verify --events` records its result in the table; the table's policy lets only its writers (the
function, OperatorRoleArns) do that, and a verifier's run says the result was not recorded."""



def iam_action(service: str, operation: str) -> str:
    if service == "s3":
        return S3_ACTIONS[operation]
    return f"{service}:{operation}"


class Calls:
    """Every AWS call made by clients of boto3's default session while recording."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def __call__(self, model: Any, **_: Any) -> None:
        self.seen.add(iam_action(model.service_model.endpoint_prefix, model.name))


@pytest.fixture
def calls() -> Iterator[Calls]:
    boto3.setup_default_session()
    recorder = Calls()
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register("before-call", recorder)
    yield recorder
    boto3.DEFAULT_SESSION = None


def policy_actions(name: str) -> set[str]:
    """Every action the managed policy allows, in any branch of its conditions."""
    document = load_template()["Resources"][name]["Properties"]["PolicyDocument"]
    return {action for statement in _as_list(document["Statement"]) for branch in _branches(statement)
            if branch.get("Effect") == "Allow" for action in _as_list(branch["Action"])}


def run(*argv: str) -> int:
    with redirect_stdout(io.StringIO()):
        return main(list(argv))


@pytest.fixture
def signed_trail(moto_bucket: tuple[Any, str], moto_table: tuple[Any, str]) -> Trail:
    trail = Trail(*moto_bucket, *moto_table)
    trail.write()
    trail.ingest()
    return trail


def auditor_calls(trail: Trail, calls: Calls) -> set[str]:
    """What query (each kind of question), report and failures ask of AWS."""
    trail.store.put_items(event_items(hostile_event("stack-1")))  # an event on a stack, for query --stack
    calls.seen.clear()
    for argv in (["--account", "111122223333"], ["--stack", "stack-1"], ["--failed", "--account", "111122223333"]):
        assert run("query", "--table", trail.table, *argv) == 0
    assert run("query", "--table", trail.table, "--id", "evt-1") == 0
    assert run("report", "--table", trail.table) == 0
    assert run("failures", "--table", trail.table) == 0
    return set(calls.seen)


def verifier_calls(trail: Trail, calls: Calls, tmp_path: Path) -> set[str]:
    """What verify asks of AWS; CloudTrail's public keys come from the API (publickeys.py) unless given."""
    calls.seen.clear()
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(SIGNER.listing()))
    assert run("verify", f"s3://{trail.bucket}/", "--public-keys", str(keys), "--table", trail.table) == 0
    assert run("verify", f"s3://{trail.bucket}/", "--events", "--public-keys", str(keys),
               "--table", trail.table) == 0
    listed = re.findall(r'get_paginator\("(\w+)"\)', PUBLIC_KEYS_SOURCE.read_text(encoding="utf-8"))
    assert listed == ["list_public_keys"], "the pattern no longer matches core/ingest/publickeys.py"
    return set(calls.seen) | {"cloudtrail:ListPublicKeys"}


def test_the_auditor_policy_allows_exactly_the_calls_of_query_report_and_failures(
        signed_trail: Trail, calls: Calls) -> None:
    needed = auditor_calls(signed_trail, calls)

    assert needed, "no call was recorded"
    assert policy_actions("AuditorPolicy") - BY_HAND == needed


def test_the_verifier_policy_allows_exactly_the_auditors_calls_and_those_of_verify(
        signed_trail: Trail, calls: Calls, tmp_path: Path) -> None:
    verifier = verifier_calls(signed_trail, calls, tmp_path)  # first: the auditor's scenario adds an unbacked event
    needed = auditor_calls(signed_trail, calls) | verifier

    assert {"s3:GetObject", "s3:ListBucket", "cloudtrail:ListPublicKeys"} <= needed
    assert needed >= RECORDING, "verify --events no longer records its result: drop RECORDING"
    assert policy_actions("VerifierPolicy") - BY_HAND == needed - RECORDING


def test_both_reach_only_the_table_and_its_indexes_and_the_verifier_only_the_trail_prefix() -> None:
    resources = load_template()["Resources"]
    for name in ("AuditorPolicy", "VerifierPolicy"):
        statements = {s["Sid"]: s for st in resources[name]["Properties"]["PolicyDocument"]["Statement"]
                      for s in _branches(st)}
        assert statements["ReadEvents"]["Resource"] == [{"Fn::GetAtt": ["EventsTable", "Arn"]},
                                                        {"Fn::Sub": "${EventsTable.Arn}/index/*"}]
    verifier = {s["Sid"]: s for st in resources["VerifierPolicy"]["Properties"]["PolicyDocument"]["Statement"]
                for s in _branches(st)}
    assert verifier["ReadTrailFiles"]["Resource"]["Fn::Sub"][0] == "arn:${AWS::Partition}:s3:::${Bucket}/${LogPrefix}*"


def test_the_table_denies_every_write_to_all_but_the_function_and_the_operator_roles() -> None:
    table = load_template()["Resources"]["EventsTable"]["Properties"]
    (deny,) = table["ResourcePolicy"]["PolicyDocument"]["Statement"]
    writers = deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]["Fn::If"]

    assert deny["Effect"] == "Deny" and deny["Principal"] == "*"
    assert set(deny["Action"]) == {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                                   "dynamodb:BatchWriteItem", "dynamodb:PartiQLInsert", "dynamodb:PartiQLUpdate",
                                   "dynamodb:PartiQLDelete"}
    assert writers[0] == "HasOperatorRoles"
    assert writers[2] == [{"Fn::GetAtt": ["IngestFunctionRole", "Arn"]}]
    assert "OperatorRoleArns" in json.dumps(writers[1])


def test_the_table_is_encrypted_with_the_given_key_which_the_function_may_use() -> None:
    resources = load_template()["Resources"]
    sse = resources["EventsTable"]["Properties"]["SSESpecification"]
    role = resources["IngestFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    key = next(s["Fn::If"] for s in role if "Fn::If" in s and s["Fn::If"][1]["Sid"] == "EventsTableKey")

    assert sse["KMSMasterKeyId"] == {"Fn::If": ["HasTableKmsKey", {"Ref": "TableKmsKeyArn"},
                                                {"Ref": "AWS::NoValue"}]}
    assert key[0] == "HasTableKmsKey" and key[1]["Resource"] == {"Ref": "TableKmsKeyArn"}
