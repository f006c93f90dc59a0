"""core.event.Event is the schema docs/layout.md documents, and what normalize makes and restore gives
back: its fields are the documented ones, and real-shaped records (generated, and the shared corpus of
real trails when present) normalize to events with only those fields, of the declared types."""

from __future__ import annotations

import functools
import gzip
import json
import os
import re
import types
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints, is_typeddict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import REPO, needs_shared
from core.event import Actor, Event, Resource, SourceObject
from core.ingest.catalog import load_catalog
from core.ingest.items import MAX_LINKS, document, event_items, restore
from core.ingest.normalize import InvalidRecord, normalize
from core.model import ObjectRef

CATALOG = load_catalog()
INGESTED_AT = "2024-06-01T00:00:00Z"


# -- the type against the docs --------------------------------------------------------------------


SCHEMA_PAGE = REPO / "docs" / "layout.md"
"""Where the normalized event is documented (the README links to it)."""


def schema_text() -> str:
    text = SCHEMA_PAGE.read_text(encoding="utf-8")
    return text.split("## The normalized event", 1)[1].split("\n#", 1)[0]


def documented_fields() -> set[str]:
    """The backticked snake_case names of the schema, outside the parentheses that describe them."""
    text = schema_text()
    while True:
        shorter = re.sub(r"\([^()]*\)", "", text)
        if shorter == text:
            break
        text = shorter
    return set(re.findall(r"`([a-z][a-z0-9_]*)`", text))


def described(field: str) -> set[str]:
    """The names listed in the parentheses after a field: `actor` (type, arn, ...)."""
    found = re.search(rf"`{field}` \(([^()]*)\)", schema_text())
    assert found, f"{SCHEMA_PAGE.name}'s schema describes no parts of {field}"
    return {name.strip() for name in found[1].split(",")}


def fields(kind: Any) -> set[str]:
    return set(kind.__required_keys__ | kind.__optional_keys__)


def test_the_event_type_has_exactly_the_fields_the_docs_document() -> None:
    documented = documented_fields()

    assert len(documented) > 20, f"{SCHEMA_PAGE.name}'s schema section was not found in the expected form"
    assert fields(Event) == documented


def test_actor_resource_and_source_object_have_the_parts_the_docs_list() -> None:
    assert fields(Actor) == described("actor")
    assert re.search(r"`\{type, id\}`", schema_text())
    assert fields(Resource) == {"type", "id"}
    assert fields(SourceObject) == described("source_object")


def test_the_fields_normalize_always_sets_are_the_required_ones() -> None:
    event = normalize({"eventID": "e-1", "eventTime": "2024-03-01T10:00:00Z"}, None, CATALOG, INGESTED_AT)

    assert set(event) == Event.__required_keys__ == {"event_id", "event_time", "outcome", "ingested_at"}


# -- values against the declared types --------------------------------------------------------------


@functools.cache
def declared(kind: Any) -> dict[str, Any]:
    return get_type_hints(kind)


def problems(value: Any, hint: Any, where: str = "event") -> list[str]:
    """Where `value` breaks the type `hint` (a TypedDict, list, dict, Literal, union or plain class)."""
    if hint is Any:
        return []
    if is_typeddict(hint):
        if not isinstance(value, dict):
            return [f"{where} is {type(value).__name__}, not a {hint.__name__}"]
        hints = declared(hint)
        found = [f"{where}.{key}: not a field of {hint.__name__}" for key in value if key not in hints]
        found += [f"{where}.{key}: missing" for key in hint.__required_keys__ if key not in value]
        for key, item in value.items():
            if key in hints:
                found += problems(item, hints[key], f"{where}.{key}")
        return found
    origin, args = get_origin(hint), get_args(hint)
    if origin is Literal:
        return [] if value in args else [f"{where}: {value!r} is not one of {args}"]
    if origin in (Union, types.UnionType):
        return [] if any(not problems(value, arg, where) for arg in args) else [f"{where}: {value!r} is not {hint}"]
    if origin is list:
        if not isinstance(value, list):
            return [f"{where}: {type(value).__name__}, not a list"]
        return [p for n, item in enumerate(value) for p in problems(item, args[0], f"{where}[{n}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{where}: {type(value).__name__}, not an object"]
        return [p for key, item in value.items()
                for p in ([] if isinstance(key, str) else [f"{where}: key {key!r}"]) + problems(item, args[1],
                                                                                                 f"{where}.{key}")]
    if hint is int and isinstance(value, bool):
        return [f"{where}: {value!r} is a bool, not an int"]
    return [] if isinstance(value, hint) else [f"{where}: {value!r} is {type(value).__name__}, not {hint.__name__}"]


def test_the_checker_finds_an_undeclared_field_a_missing_one_and_a_wrong_type() -> None:
    event = normalize({"eventID": "e-1", "eventTime": "2024-03-01T10:00:00Z", "readOnly": True}, None, CATALOG,
                      INGESTED_AT)

    assert problems(event, Event) == []
    assert problems({**event, "extra": 1}, Event) == ["event.extra: not a field of Event"]
    assert problems({k: v for k, v in event.items() if k != "outcome"}, Event) == ["event.outcome: missing"]
    assert problems({**event, "read_only": "true"}, Event) == ["event.read_only: 'true' is str, not bool"]
    assert problems({**event, "actor": {"name": 7}}, Event) == ["event.actor.name: 7 is int, not str"]
    assert problems({**event, "outcome": "ok"}, Event) == ["event.outcome: 'ok' is not one of ('success', 'failure')"]


OPSWORKS_CALLS = sorted(CATALOG.actions)
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=24)
IDS = st.one_of(st.uuids().map(str), st.from_regex(r"[a-z]{1,8}-[0-9a-f]{4,17}", fullmatch=True))
JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), TEXT),
                    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(TEXT, inner, max_size=3)),
                    max_leaves=12)
ID_KEYS = ["stackId", "layerId", "instanceId", "appId", "deploymentId", "serverName", "backupId", "nodeName"]


def optional(draw: st.DrawFn, target: dict[str, Any], key: str, values: st.SearchStrategy[Any]) -> None:
    if draw(st.booleans()):
        target[key] = draw(values)


@st.composite
def user_identities(draw: st.DrawFn) -> dict[str, Any]:
    """userIdentity as CloudTrail writes it: some of its fields, a session context for sessions."""
    account = draw(st.from_regex(r"[0-9]{12}", fullmatch=True))
    identity: dict[str, Any] = {"type": draw(st.sampled_from(
        ["IAMUser", "AssumedRole", "Root", "AWSService", "FederatedUser", "IdentityCenterUser", "AWSAccount"]))}
    optional(draw, identity, "principalId", IDS)
    optional(draw, identity, "arn", st.sampled_from([f"arn:aws:iam::{account}:user/alice",
                                                     f"arn:aws:sts::{account}:assumed-role/Deploy/runner-1",
                                                     f"arn:aws:iam::{account}:root"]))
    optional(draw, identity, "accountId", st.just(account))
    optional(draw, identity, "accessKeyId", st.from_regex(r"(AKIA|ASIA)[A-Z0-9]{16}", fullmatch=True))
    optional(draw, identity, "userName", TEXT)
    optional(draw, identity, "invokedBy", st.sampled_from(["opsworks.amazonaws.com", "AWS Internal"]))
    if draw(st.booleans()):
        context: dict[str, Any] = {"attributes": {"creationDate": "2024-03-01T09:00:00Z"}}
        optional(draw, context["attributes"], "mfaAuthenticated", st.sampled_from(["true", "false"]))
        optional(draw, context, "sessionIssuer", st.fixed_dictionaries(
            {"type": st.just("Role"), "arn": st.just(f"arn:aws:iam::{account}:role/Deploy"),
             "userName": st.just("Deploy"), "accountId": st.just(account)}))
        optional(draw, context, "sourceIdentity", TEXT)
        identity["sessionContext"] = context
    optional(draw, identity, "onBehalfOf", st.fixed_dictionaries({"userId": IDS}))
    return identity


@st.composite
def cloudtrail_records(draw: st.DrawFn) -> dict[str, Any]:
    """A record as CloudTrail writes one: OpsWorks (the catalog's calls) or another service, any of the
    optional fields present or absent, parameters with resource ids and ARNs among free-form JSON."""
    source, name = draw(st.one_of(st.sampled_from(OPSWORKS_CALLS),
                                  st.tuples(st.just("s3.amazonaws.com"), st.just("GetObject"))))
    when = draw(st.datetimes(min_value=datetime(2015, 1, 1), max_value=datetime(2030, 1, 1)))
    record: dict[str, Any] = {"eventVersion": "1.09", "eventID": draw(st.uuids().map(str)),
                              "eventTime": when.replace(microsecond=0, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                              "eventSource": source, "eventName": name}
    for key in ("awsRegion", "sourceIPAddress", "userAgent", "requestID", "sharedEventID", "vpcEndpointId",
                "errorCode", "errorMessage", "recipientAccountId", "eventType"):
        optional(draw, record, key, TEXT)
    optional(draw, record, "readOnly", st.booleans())
    optional(draw, record, "userIdentity", user_identities())
    parameters = st.dictionaries(st.one_of(st.sampled_from(ID_KEYS), TEXT), st.one_of(IDS, JSON), max_size=5)
    optional(draw, record, "requestParameters", st.one_of(st.none(), parameters))
    optional(draw, record, "responseElements", st.one_of(st.none(), parameters))
    optional(draw, record, "resources", st.lists(st.fixed_dictionaries(
        {"ARN": st.builds("arn:aws:opsworks:us-east-1:111122223333:stack/{}/".format, IDS),
         "accountId": st.just("111122223333")}), max_size=3))
    return record


SOURCES = st.one_of(st.none(), st.builds(ObjectRef, st.just("trail-bucket"), TEXT.filter(bool)),
                    st.builds(ObjectRef, st.none(), TEXT.filter(bool)))


@settings(max_examples=int(os.environ.get("EVENT_TYPE_EXAMPLES", "200")), deadline=None)
@given(record=cloudtrail_records(), source=SOURCES)
def test_a_normalized_real_shaped_record_has_only_declared_fields_of_the_declared_types(
        record: dict[str, Any], source: ObjectRef | None) -> None:
    event = normalize(record, source, CATALOG, INGESTED_AT)

    assert problems(event, Event) == []


@settings(max_examples=50, deadline=None)
@given(record=cloudtrail_records())
def test_an_event_read_back_from_its_stored_document_is_still_an_event(record: dict[str, Any]) -> None:
    event = normalize(record, None, CATALOG, INGESTED_AT)

    restored = restore(document(event))

    assert problems(restored, Event) == []
    assert set(restored) == set(event)


def test_what_the_store_adds_to_an_event_too_big_or_too_wide_is_declared() -> None:
    wide = normalize({"eventID": "wide", "eventTime": "2024-03-01T10:00:00Z", "eventSource": "opsworks.amazonaws.com",
                      "eventName": "DescribeInstances",
                      "requestParameters": {"instanceIds": [f"i-{n}" for n in range(MAX_LINKS + 3)]}},
                     None, CATALOG, INGESTED_AT)
    huge = normalize({"eventID": "huge", "eventTime": "2024-03-01T10:00:00Z",
                      "requestParameters": {"blob": os.urandom(450_000).hex()}}, None, CATALOG, INGESTED_AT)

    wide_back = restore(event_items(wide)[0])
    huge_back = restore(event_items(huge)[0])

    assert "unlinked_resources" in wide_back and problems(wide_back, Event) == []
    assert "omitted_compressed_bytes" in huge_back and problems(huge_back, Event) == []


# -- real trails ------------------------------------------------------------------------------------


def corpus_records() -> list[tuple[str, dict[str, Any]]]:
    """Every record of the corpus's CloudTrail log files (MANIFEST.tsv kind `cloudtrail-log`)."""
    root = needs_shared("corpus")
    found: list[tuple[str, dict[str, Any]]] = []
    with (root / "MANIFEST.tsv").open(encoding="utf-8") as manifest:
        header = manifest.readline().rstrip("\n").split("\t")
        for line in manifest:
            row = dict(zip(header, line.rstrip("\n").split("\t"), strict=False))
            if row.get("kind") != "cloudtrail-log":
                continue
            path = Path(root, row["local_path"])
            data = path.read_bytes()
            text = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
            found += [(row["local_path"], r) for r in json.loads(text)["Records"] if isinstance(r, dict)]
    return found


def shape(value: Any, depth: int = 3) -> str:
    """Keys and value types, `depth` levels deep: what the event's types depend on (not the values)."""
    if isinstance(value, dict) and depth:
        return "{" + ",".join(f"{key}:{shape(item, depth - 1)}" for key, item in sorted(value.items())) + "}"
    if isinstance(value, list) and depth:
        return "[" + "|".join(sorted({shape(item, depth - 1) for item in value})) + "]"
    return type(value).__name__


@pytest.mark.corpus
def test_every_shape_of_record_in_the_real_trails_normalizes_to_the_declared_types() -> None:
    records = corpus_records()
    shapes: dict[str, tuple[str, dict[str, Any]]] = {}
    for path, record in records:  # the parameters are free-form JSON: by their type only
        outline = {k: type(v).__name__ if k in ("requestParameters", "responseElements") else v
                   for k, v in record.items()}
        shapes.setdefault(shape(outline), (path, record))
    seen: dict[str, int] = {}

    for path, record in shapes.values():
        try:
            event = normalize(record, ObjectRef("corpus", path), CATALOG, INGESTED_AT)
        except InvalidRecord:
            continue
        found = problems(event, Event)
        assert found == [], f"{path}: {found[:3]}"
        for name in event:
            seen[name] = seen.get(name, 0) + 1

    assert len(records) > 30_000, "the corpus's log files were not all read"
    assert len(shapes) > 50
    assert {"actor", "resources", "request_parameters", "response_elements", "error_code"} <= set(seen)
