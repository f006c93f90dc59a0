"""The DynamoDB Local that stays (`opsworks-trail local start`, `make demo`): its data outlive a restart,
and the CLI's --local finds it."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from workshop.template import table_definition_from_template

from cli.dynamodb_local import (
    DynamoDBLocalUnavailable,
    client_kwargs,
    persistent_server,
    start_persistent,
    stop_persistent,
)
from cli.main import main

pytestmark = pytest.mark.dynamodb_local


@pytest.fixture
def state_dir(tmp_path: Path, dynamodb_local_endpoint: str) -> Iterator[Path]:
    """A private state and data folder (the session's DynamoDB Local proves java and the jar are there)."""
    yield tmp_path
    stop_persistent(tmp_path)


def start(state_dir: Path) -> dict[str, Any]:
    try:
        state, started = start_persistent(0, state_dir)
    except DynamoDBLocalUnavailable as exc:  # the session server started, so this one must too
        pytest.fail(f"the persistent DynamoDB Local did not start: {exc}")
    assert started
    return state


def test_the_tables_stay_on_disk_across_a_restart(state_dir: Path) -> None:
    state = start(state_dir)
    client = boto3.client("dynamodb", **client_kwargs(state["endpoint_url"]))
    client.create_table(TableName="kept", **table_definition_from_template())
    client.put_item(TableName="kept", Item={"pk": {"S": "ACCOUNTS"}, "sk": {"S": "111122223333"}})

    assert stop_persistent(state_dir) is not None
    assert persistent_server(state_dir) is None
    again = start(state_dir)
    client = boto3.client("dynamodb", **client_kwargs(again["endpoint_url"]))

    assert client.get_item(TableName="kept", Key={"pk": {"S": "ACCOUNTS"}, "sk": {"S": "111122223333"}})["Item"]
    assert any((state_dir / "data").iterdir())


def test_local_finds_the_running_server(state_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    state = start(state_dir)
    client = boto3.client("dynamodb", **client_kwargs(state["endpoint_url"]))
    client.create_table(TableName="opsworks-trail-demo", **table_definition_from_template())
    monkeypatch.setattr("cli.dynamodb_local.DEFAULT_CACHE_DIR", state_dir)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name)

    code = main(["query", "--local", "--failed"])

    assert code == 0, capsys.readouterr().err
    assert "(no events)" in capsys.readouterr().out


def test_local_start_makes_the_table_so_ingest_and_query_work_with_nothing_else(
        state_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    monkeypatch.setattr("cli.dynamodb_local.DEFAULT_CACHE_DIR", state_dir)
    log = tmp_path / "logs" / "111122223333_CloudTrail_us-east-1_20240501T0000Z_a.json.gz"
    log.parent.mkdir()
    record = {"eventVersion": "1.08", "eventID": "0b7d5f0e-1111-4c3e-9a5e-000000000001",
              "eventTime": "2024-05-01T00:00:00Z", "eventSource": "opsworks.amazonaws.com",
              "eventName": "DescribeStacks", "awsRegion": "us-east-1", "recipientAccountId": "111122223333",
              "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice"}}
    log.write_bytes(gzip.compress(json.dumps({"Records": [record]}).encode()))

    assert main(["local", "start", "--port", "0"]) == 0
    assert "table opsworks-trail-demo: created, empty" in capsys.readouterr().out
    assert main(["local", "start", "--port", "0"]) == 0
    assert "table opsworks-trail-demo: kept as it was" in capsys.readouterr().out
    assert main(["ingest", "--local", str(log.parent)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert main(["query", "--local", "--id", record["eventID"], "--format", "json"]) == 0

    assert [e["event_id"] for e in json.loads(capsys.readouterr().out)] == [record["eventID"]]
