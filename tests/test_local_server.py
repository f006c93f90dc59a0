"""The DynamoDB Local that stays (`opsworks-trail local start`, `make demo`): its data outlive a restart,
and the CLI's --local finds it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from workshop.template import table_definition_from_template

from opsworks_trail.cli.dynamodb_local import (
    DynamoDBLocalUnavailable,
    client_kwargs,
    persistent_server,
    start_persistent,
    stop_persistent,
)
from opsworks_trail.cli.main import main

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
    monkeypatch.setattr("opsworks_trail.cli.dynamodb_local.DEFAULT_CACHE_DIR", state_dir)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name)

    code = main(["query", "--local", "--failed"])

    assert code == 0, capsys.readouterr().err
    assert "(no events)" in capsys.readouterr().out
