"""Shared fixtures: fake AWS credentials, a loopback-only network, moto tables shaped like the template."""

from __future__ import annotations

import ipaddress
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.server import ThreadedMotoServer

pytest_plugins = ["ddb_local_plugin", "package_plugin", "browser_plugin"]

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
EVENTS_DIR = REPO / "events"


@pytest.fixture(autouse=True)
def fake_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test can use a real account: fake credentials, one region, no profile."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "OpsWorksTrailTests")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")


_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: Any) -> Any:
    host = address[0] if isinstance(address, tuple) else None
    if host is not None:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise OSError(f"tests may only reach loopback servers, not {host}")
    return _real_connect(self, address)


@pytest.fixture(autouse=True, scope="session")
def no_network() -> Iterator[None]:
    """Every test runs with outbound connections limited to 127.0.0.0/8 and ::1."""
    socket.socket.connect = _loopback_only  # type: ignore[method-assign]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]


@pytest.fixture
def table_definition() -> dict[str, Any]:
    from template_schema import table_definition_from_template

    return table_definition_from_template()


@pytest.fixture
def moto_aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def moto_table(moto_aws: None, table_definition: dict[str, Any]) -> tuple[Any, str]:
    """A moto DynamoDB table built from template.yaml's own key schema; (client, table name)."""
    client = boto3.client("dynamodb", region_name="us-east-1")
    name = f"events-{uuid.uuid4().hex[:8]}"
    client.create_table(TableName=name, **table_definition)
    return client, name


@pytest.fixture
def moto_bucket(moto_aws: None) -> tuple[Any, str]:
    """An empty moto S3 bucket; (client, bucket name)."""
    client = boto3.client("s3", region_name="us-east-1")
    name = "trail-bucket"
    client.create_bucket(Bucket=name)
    return client, name


@pytest.fixture(scope="session")
def sample_bucket(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A generated trail bucket (the project's own fixture data) and its manifest of expected events."""
    from workshop.synthetic import write_sample_bucket

    root = tmp_path_factory.mktemp("bucket")
    manifest = write_sample_bucket(root, files=120)
    return root, manifest


def needs_shared(path: str) -> Path:
    """A path in ../shared, or skip: the suite passes without the shared corpus."""
    full = SHARED / path
    if not full.exists():
        pytest.skip(f"../shared/{path} is not present")
    return full


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """A moto server on loopback, for code that runs in another process (the packaged function, the
    installed command): one per test module."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def emptied(s3: Any, bucket: str, ddb: Any, table: str) -> None:
    """Every object of the bucket and every item of the table deleted: a fresh start for a hypothesis
    example on function-scoped moto fixtures."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=obj["Key"])
    for page in ddb.get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            ddb.delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})
