"""The audit questions against a table filled from the sample bucket: every answer is compared with an
expectation computed from the manifest and the raw log files, never from the code under test."""

from __future__ import annotations

import gzip
import json
import random
import string
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from workshop.synthetic import OPSWORKS_SOURCES, ExpectedEvent, SampleManifest

from core.ingest.items import event_items
from core.ingest.pipeline import Pipeline
from core.ingest.selection import Selection
from core.ingest.sinks import TableSink
from core.ingest.sources import LocalSource
from core.ingest.store import EventStore
from core.model import Status
from core.read.queries import EventFilter, EventQueries, parse_when

# What a stack / server owns, written out here rather than imported: the test's own reading of the brief.
OWNED = {"stack": {"layer", "instance", "app", "deployment", "command", "volume", "raid-array"},
         "server": {"backup"}}


# -- helpers shared with test_query_cli.py and test_report.py --------------------------------------------

def ingest(client: Any, table: str, root: Path) -> None:
    """The core pipeline over a local folder, as `opsworks-trail ingest` builds it."""
    local = LocalSource()
    pipeline = Pipeline(open=local.open, selection=Selection(frozenset(OPSWORKS_SOURCES)),
                        sink=TableSink(EventStore(client, table)), max_decompressed_bytes=1 << 30)
    outcomes = [pipeline.ingest(ref) for ref in local.list(root)]
    assert not [o for o in outcomes if o.status is Status.FAILED]


def raw_identities(root: Path, manifest: SampleManifest) -> dict[str, dict[str, Any]]:
    """eventID -> userIdentity straight from the gzip log files."""
    identities: dict[str, dict[str, Any]] = {}
    for key in manifest.log_keys:
        with gzip.open(root / key, "rt") as handle:
            for record in json.load(handle)["Records"]:
                if record.get("eventSource") in OPSWORKS_SOURCES:
                    identities[record["eventID"]] = record.get("userIdentity") or {}
    return identities


def in_order(manifest: SampleManifest, ids: set[str]) -> list[str]:
    return sorted(ids, key=lambda i: (manifest.expected[i].event_time, i))


def expected_for(manifest: SampleManifest, ptype: str, pid: str) -> set[str]:
    """Events naming the parent or a resource it owns (learnt from events naming both)."""
    owned = {(t, i) for e in manifest.expected.values() if (ptype, pid) in e.resources
             for t, i in e.resources if t in OWNED[ptype]}
    scope = owned | {(ptype, pid)}
    return {e.event_id for e in manifest.expected.values() if scope & set(e.resources)}


def mutating(event: ExpectedEvent) -> bool:
    """readOnly as logged; older records lack it, and OpsWorks names its reads Describe*/List*/Get*."""
    if event.read_only is not None:
        return not event.read_only
    return not event.event_name.startswith(("Describe", "List", "Get"))


def ids(events: Iterator[dict[str, Any]]) -> list[str]:
    return [e["event_id"] for e in events]


def check_every_access_pattern(queries: EventQueries, root: Path, manifest: SampleManifest) -> None:
    """All the audit questions, each against its independent expectation, in time order, each event once."""
    expected = manifest.expected
    stacks = sorted({i for e in expected.values() for t, i in e.resources if t == "stack"})
    servers = sorted({i for e in expected.values() for t, i in e.resources if t == "server"})
    assert stacks and servers
    for stack in stacks:
        assert ids(queries.for_stack(stack)) == in_order(manifest, expected_for(manifest, "stack", stack))
    for server in servers:
        assert ids(queries.for_server(server)) == in_order(manifest, expected_for(manifest, "server", server))

    since = "2024-05-10T00:00:00Z"
    stack = max(stacks, key=lambda s: len(expected_for(manifest, "stack", s)))
    window = {i for i in expected_for(manifest, "stack", stack) if expected[i].event_time >= since}
    assert window and window != expected_for(manifest, "stack", stack)
    assert ids(queries.for_stack(stack, since=since)) == in_order(manifest, window)

    for account in manifest.accounts:
        mine = {i for i, e in expected.items() if e.account_id == account}
        assert ids(queries.by_account(account)) == in_order(manifest, mine)
    failed = {i for i, e in expected.items() if e.error_code}
    writes = {i for i, e in expected.items() if mutating(e)}
    assert failed and writes
    assert ids(queries.failed()) == in_order(manifest, failed)
    assert ids(queries.writes()) == in_order(manifest, writes)
    assert ids(queries.all_events()) == in_order(manifest, set(expected))
    assert ids(queries.search(EventFilter(stack=stack, failed=True))) == in_order(
        manifest, expected_for(manifest, "stack", stack) & failed)

    identities = raw_identities(root, manifest)
    roles = {i["sessionContext"]["sessionIssuer"]["arn"] for i in identities.values() if i.get("type") == "AssumedRole"}
    for role in roles:
        by_role = {e for e, i in identities.items() if i.get("type") == "AssumedRole"
                   and i["sessionContext"]["sessionIssuer"]["arn"] == role}
        assert ids(queries.by_actor(role)) == in_order(manifest, by_role)
    sessions = {i["arn"] for i in identities.values() if i.get("type") == "AssumedRole"}
    for session in sessions:
        assert ids(queries.by_actor(session)) == in_order(
            manifest, {e for e, i in identities.items() if i.get("arn") == session})
    users = {i["arn"] for i in identities.values() if i.get("type") == "IAMUser"}
    for user in users:
        assert ids(queries.by_actor(user)) == in_order(
            manifest, {e for e, i in identities.items() if i.get("arn") == user})

    some = next(iter(expected.values()))
    event = queries.by_id(some.event_id)
    assert event is not None and event["event_name"] == some.event_name and "pk" not in event
    assert queries.by_id("no-such-event") is None


# -- fixtures --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def filled(sample_bucket: tuple[Path, SampleManifest]) -> Iterator[tuple[EventQueries, Path, SampleManifest]]:
    """One moto table holding the whole sample bucket, shared by the read-only tests of this module."""
    from template_schema import table_definition_from_template

    root, manifest = sample_bucket
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(TableName="events", **table_definition_from_template())
        ingest(client, "events", root)
        yield EventQueries(client, "events"), root, manifest


# -- tests -----------------------------------------------------------------------------------------------

def test_every_access_pattern_returns_exactly_the_expected_events_in_time_order(filled: Any) -> None:
    check_every_access_pattern(*filled)


def test_an_update_naming_only_a_layer_is_found_from_its_stack(filled: Any) -> None:
    queries, _, manifest = filled
    updates = [e for e in manifest.expected.values() if e.event_name == "UpdateLayer"]
    assert updates and all(not any(t == "stack" for t, _ in e.resources) for e in updates)
    stacks = {i for e in manifest.expected.values() for t, i in e.resources if t == "stack"}
    found = {eid for s in stacks for eid in ids(queries.for_stack(s))}
    assert {e.event_id for e in updates} <= found


def test_a_session_arn_matches_only_that_session_while_the_role_arn_matches_all(filled: Any) -> None:
    queries, root, manifest = filled
    identities = raw_identities(root, manifest)
    sso = next(i for i in identities.values() if "AWSReservedSSO" in i.get("arn", ""))
    role_arn = sso["sessionContext"]["sessionIssuer"]["arn"]
    assert "/aws-reserved/sso.amazonaws.com/" in role_arn  # the session ARN carries no such path
    by_role = set(ids(queries.by_actor(role_arn)))
    by_session = set(ids(queries.by_actor(sso["arn"])))
    assert by_session and by_session <= by_role
    other = sso["arn"].rsplit("/", 1)[0] + "/someone-else@example.com"
    assert list(queries.by_actor(other)) == []


def test_failed_calls_never_include_failed_files(filled: Any) -> None:
    queries, _, manifest = filled
    store = queries.store
    from core.model import ObjectRef

    store.mark_failed(ObjectRef("bucket", "AWSLogs/broken.json.gz"), "not gzip")
    assert [f["key"] for f in store.failed_files()] == ["AWSLogs/broken.json.gz"]
    assert all(e["outcome"] == "failure" for e in queries.failed())
    assert len(list(queries.failed())) == sum(1 for e in manifest.expected.values() if e.error_code)


def test_limit_and_combined_filters_keep_time_order(filled: Any) -> None:
    queries, _, manifest = filled
    account = manifest.accounts[0]
    got = ids(queries.search(EventFilter(account=account, writes=True), limit=5))
    writes = {i for i, e in manifest.expected.items() if e.account_id == account and mutating(e)}
    assert got == in_order(manifest, writes)[:5]


def _record(name: str, request: dict[str, Any], response: dict[str, Any] | None, when: str) -> dict[str, Any]:
    return {"eventVersion": "1.09", "eventTime": when, "eventSource": "opsworks.amazonaws.com", "eventName": name,
            "awsRegion": "us-east-1", "sourceIPAddress": "192.0.2.1", "userAgent": "aws-cli/2",
            "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/dave",
                             "accountId": "111122223333", "userName": "dave"},
            "requestParameters": request, "responseElements": response, "eventID": str(uuid.uuid4()),
            "readOnly": False, "eventType": "AwsApiCall", "recipientAccountId": "111122223333"}


def test_a_deployment_on_three_instances_is_found_from_each_instance(
        moto_table: tuple[Any, str], tmp_path: Path) -> None:
    client, table = moto_table
    stack, app, deployment = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    instances = [str(uuid.uuid4()) for _ in range(3)]
    deploy = _record("CreateDeployment", {"stackId": stack, "appId": app, "instanceIds": instances,
                                          "command": {"name": "deploy"}}, {"deploymentId": deployment},
                     "2024-05-20T10:00:00Z")
    reboot = _record("RebootInstance", {"instanceId": instances[2]}, None, "2024-05-20T11:00:00Z")
    log = tmp_path / "111122223333_CloudTrail_us-east-1_20240520T1000Z_abc.json.gz"
    log.write_bytes(gzip.compress(json.dumps({"Records": [reboot, deploy]}).encode()))
    ingest(client, table, tmp_path)
    queries = EventQueries(client, table)

    for instance in instances:
        assert deploy["eventID"] in ids(queries.for_resource("instance", instance))
    assert ids(queries.for_resource("deployment", deployment)) == [deploy["eventID"]]
    # the reboot names only the instance; the deployment taught that the instance is the stack's
    assert ids(queries.for_stack(stack)) == [deploy["eventID"], reboot["eventID"]]


def _bulky_parameters(target_bytes: int) -> dict[str, Any]:
    """About target_bytes of CloudTrail-like nested JSON: maps in lists in maps, ints, decimals, booleans."""
    rng = random.Random(5)
    nodes = []
    while len(json.dumps(nodes, default=str)) < target_bytes:
        for _ in range(200):
            n = len(nodes)
            nodes.append({"name": f"node-{n}", "ip": f"10.{n % 256}.{n // 256 % 256}.{rng.randint(1, 254)}",
                          "weight": Decimal(f"{rng.randint(0, 999)}.{rng.randint(0, 99):02d}"), "port": 8000 + n % 100,
                          "enabled": n % 3 == 0, "tags": {"team": rng.choice(["web", "db", "ops"]),
                                                          "env": {"tier": rng.choice(["a", "b"]), "n": n}}})
    return {"stackId": "11111111-2222-3333-4444-555555555555", "customJson": {"cluster": {"nodes": nodes}}}


def serialize_for_size(item: dict[str, Any]) -> str:
    """An upper bound of the item's DynamoDB size: JSON text, binary values as hex (twice their bytes)."""
    return json.dumps(item, default=lambda v: v.value.hex() if hasattr(v, "value") else str(v))


def _big_event(parameters: dict[str, Any]) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "event_time": "2024-05-20T10:00:00Z", "event_name": "UpdateStack",
            "service": "opsworks", "outcome": "success", "read_only": False, "account_id": "111122223333",
            "resources": [{"type": "stack", "id": parameters["stackId"]}], "request_parameters": parameters}


def check_megabyte_round_trip(client: Any, table: str) -> None:
    parameters = _bulky_parameters(1 << 20)
    event = _big_event(parameters)
    items = event_items(event)
    assert all(len(serialize_for_size(i)) < 400_000 for i in items)
    EventStore(client, table).put_items(items)
    queries = EventQueries(client, table)
    stored = queries.by_id(event["event_id"])
    assert stored == event
    node = stored["request_parameters"]["customJson"]["cluster"]["nodes"][7]
    assert isinstance(node["weight"], Decimal) and isinstance(node["tags"]["env"], dict)
    assert isinstance(node["port"], (int, Decimal)) and not isinstance(node["port"], bool)
    assert list(queries.for_stack(parameters["stackId"])) == [event]


def test_a_megabyte_of_request_parameters_survives_a_round_trip_exactly(moto_table: tuple[Any, str]) -> None:
    check_megabyte_round_trip(*moto_table)


def test_incompressible_parameters_are_left_out_and_the_event_is_still_stored(moto_table: tuple[Any, str]) -> None:
    client, table = moto_table
    noise = "".join(random.Random(1).choices(string.printable, k=1 << 20))
    event = _big_event({"stackId": "s-1", "customJson": noise})
    EventStore(client, table).put_items(event_items(event))
    stored = EventQueries(client, table).by_id(event["event_id"])
    assert stored is not None and "request_parameters" not in stored
    assert stored["omitted_compressed_bytes"]["request_parameters"] > 350_000


@pytest.mark.parametrize(("text", "expected"), [
    ("2024-05-26", "2024-05-26T00:00:00Z"),
    ("2024-05-26T12:30:00+02:00", "2024-05-26T10:30:00Z"),
    ("2024-05-26T12:30:00Z", "2024-05-26T12:30:00Z"),
    ("7d", "2024-05-19T12:00:00Z"),
    ("12h", "2024-05-26T00:00:00Z"),
    ("2w", "2024-05-12T12:00:00Z"),
])
def test_times_are_iso_or_relative_to_now(text: str, expected: str) -> None:
    from datetime import UTC, datetime

    assert parse_when(text, now=datetime(2024, 5, 26, 12, tzinfo=UTC)) == expected


def test_a_time_that_is_neither_iso_nor_relative_is_refused() -> None:
    from core.read.queries import BadTime

    with pytest.raises(BadTime):
        parse_when("last tuesday")


@pytest.mark.dynamodb_local
def test_every_access_pattern_on_dynamodb_local(dynamodb_local_table: tuple[Any, str],
                                                sample_bucket: tuple[Path, SampleManifest]) -> None:
    client, table = dynamodb_local_table
    root, manifest = sample_bucket
    ingest(client, table, root)
    check_every_access_pattern(EventQueries(client, table), root, manifest)


@pytest.mark.dynamodb_local
def test_a_megabyte_of_request_parameters_survives_dynamodb_local(dynamodb_local_table: tuple[Any, str]) -> None:
    check_megabyte_round_trip(*dynamodb_local_table)
