"""What the table holds for an event, as items (pure: no AWS call): the event item with its document,
a link per resource it names, relations; and the event read back from its item.

The writing of these items (batches, retries, file state) is core.ingest.store's. One storage form that
no content can make DynamoDB refuse: the event item holds the normalized event as one JSON document
(`event`, a string; `event_zlib`, zlib-compressed binary, when large; the largest fields left out and named
in `omitted_compressed_bytes` when even that is too big). A document has no depth, no attribute names and
no numbers for DynamoDB to validate, and its text is ASCII (lone surrogates escaped). Every key part taken
from the record is kept short and encodable by `key_part`. Every key is derived from the event, so
writing the same event twice overwrites it with itself.
"""

from __future__ import annotations

import json
import zlib
from datetime import datetime, timedelta
from decimal import Decimal, DecimalException
from typing import Any, cast

import simplejson
from boto3.dynamodb.types import DYNAMODB_CONTEXT, Binary

from core.errors import Unstorable
from core.event import Event, Resource, SourceObject
from core.ingest.digests import parse_log_key
from core.keys import (
    BY_ACCOUNT,
    BY_ACTOR,
    EVENT_SK,
    FAILED,
    FILE_PREFIX,
    RESOURCE_PREFIX,
    TABLE_KEYS,
    TIME_SK,
    WRITES,
    actor_partition,
    child_sk,
    event_pk,
    key_part,
    resource_pk,
    time_sk,
)

Item = dict[str, Any]

DOCUMENT, PACKED = "event", "event_zlib"
SOURCE_RANK, SOURCE_FILES = "source_rank", "source_files"
"""Beside an event item's document: the rank of the file its `source_object` names (the earliest delivered,
`source_rank`), and every file that held the event (`source_files`, a string set of s3:// URIs). CloudTrail
sometimes delivers an event in two files; the store keeps the document of the lowest rank and the union
of the files, so any order of arrival, and any concurrency, ends in the same item."""
COMPRESS_OVER = 32_000
"""A document longer than this is stored zlib-compressed (binary)."""
MAX_DOCUMENT_BYTES = 350_000
"""DynamoDB refuses items over 400 KB; the keys of an item take at most a few KB more (see key_part)."""
MAX_LINKS = 1000
"""Resource link items per event (stacks and servers first). Past this the event records
`unlinked_resources` (how many of its `resources` have no link of their own): they stay in the event,
found through its stack's or server's link, its actor, account or id. With the relation cap, one event
writes at most ~2,000 small items besides itself (a few MB at most)."""
MAX_RELATIONS = 1000
_BULKY = ("request_parameters", "response_elements")


def event_items(event: Event, retention_days: int | None = None) -> list[Item]:
    """The event item, one small link item per resource it names (up to MAX_LINKS), its relation
    items (its account's registry entry is written once per account, by the sink)."""
    resources = event.get("resources", [])
    if len(resources) > MAX_LINKS:
        event = {**event, "unlinked_resources": len(resources) - MAX_LINKS}
    event_key = key_part(event["event_id"])
    sort_key = time_sk(event["event_time"], event_key)
    main: Item = {"pk": event_pk(event_key), "sk": EVENT_SK, "event_id": event_key, TIME_SK: sort_key,
                  **headline(event), **document(event)}
    if "source_object" in event:
        main[SOURCE_RANK] = source_rank(event["source_object"])
        main[SOURCE_FILES] = {source_uri(event["source_object"])}
    actor_key = actor_partition(event.get("actor", {}))
    if actor_key:
        main[BY_ACTOR.key] = key_part(actor_key)
    if event.get("account_id"):
        account = key_part(str(event["account_id"]))
        main[BY_ACCOUNT.key] = account
        if event.get("outcome") == "failure":
            main[FAILED.key] = account
        if event.get("read_only") is False:
            main[WRITES.key] = account
    expiry: Item = {}
    if retention_days:
        moment = datetime.fromisoformat(event["event_time"].replace("Z", "+00:00")) + timedelta(days=retention_days)
        main["expires_at"] = int(moment.timestamp())
        expiry = {"expires_at": main["expires_at"]}
    linked = sorted(resources, key=lambda r: r["type"] not in PARENT_TYPES)[:MAX_LINKS]  # stacks, servers first
    links = [{"pk": resource_pk(r["type"], r["id"]), "sk": sort_key, "event_id": event_key, **expiry}
             for r in linked]
    return [main, *links, *relation_items(event, linked)]


def source_uri(source: SourceObject) -> str:
    """The file an event was read from, as one string: s3://bucket/key, or a local file's path."""
    return f"s3://{source['bucket']}/{source['key']}" if source.get("bucket") else source["key"]


def source_rank(source: SourceObject) -> str:
    """The order among the files holding one event: delivery time (from CloudTrail's key name; files named
    otherwise after every CloudTrail file), then the file's URI. The store keeps the lowest."""
    name = parse_log_key(source["key"])
    return f"{name.delivered if name else '~'}#{source_uri(source)}"


HEADLINE = ("at", "action", "caller", "resource", "outcome", "error_code")
"""Plain attributes beside the document, so the DynamoDB console, PartiQL and an export to S3 show what
happened without decoding it. The document stays the source of truth: restore() reads only it."""
MAX_HEADLINE_CHARS = 512
"""A headline value is at most this long (a caller chooses its name): the item's size stays bounded."""


def headline(event: Event) -> Item:
    """When, what, who, on what, and how it went, as short plain strings (absent when the event has none)."""
    actor = event.get("actor", {})
    resources = sorted(event.get("resources", []), key=lambda r: r["type"] not in PARENT_TYPES)
    values = {
        "at": event.get("event_time"),
        "action": f"{event.get('service', '')}:{event.get('event_name', '')}",
        "caller": actor.get("arn") or actor.get("name") or actor.get("invoked_by"),
        "resource": f"{resources[0]['type']}/{resources[0]['id']}" if resources else None,
        "outcome": event.get("outcome"),
        "error_code": event.get("error_code"),
    }
    return {name: _plain(value) for name, value in values.items() if value}


def _plain(value: object) -> str:
    text = str(value).encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates escaped
    return text if len(text) <= MAX_HEADLINE_CHARS else text[:MAX_HEADLINE_CHARS - 1] + "…"


def document(event: Event) -> Item:
    """The event as the one attribute DynamoDB stores it in: JSON text, compressed when large, its largest
    fields left out (and named, with their compressed size) when even compressed it would not fit."""
    text = encode(event)
    if len(text) <= COMPRESS_OVER:
        return {DOCUMENT: text}
    packed = zlib.compress(text.encode("ascii"), 6)
    if len(packed) <= MAX_DOCUMENT_BYTES:
        return {PACKED: Binary(packed)}
    kept: dict[str, Any] = dict(event)
    omitted: dict[str, int] = {}
    while len(packed) > MAX_DOCUMENT_BYTES:
        droppable = [name for name in kept if name not in ("event_id", "event_time")]
        if not droppable:
            raise Unstorable(f"too large to store even without its other fields ({len(packed):,} bytes compressed)")
        largest = max(droppable, key=lambda name: len(encode(kept[name])))
        omitted[largest] = len(zlib.compress(encode(kept.pop(largest)).encode("ascii"), 6))
        packed = zlib.compress(encode(dict(kept, omitted_compressed_bytes=omitted)).encode("ascii"), 6)
    return {PACKED: Binary(packed)}


def encode(value: Any) -> str:
    """JSON text of an event or a part of one: numbers exactly as read (Decimal, NaN, 1E+400, 60 digits),
    ASCII only (lone surrogates escaped), so DynamoDB can hold it whatever it holds."""
    text: str = simplejson.dumps(value, use_decimal=True, allow_nan=True, ensure_ascii=True,
                                 separators=(",", ":"))
    return text


def decode(text: str) -> Any:
    """The inverse of encode, with numbers as DynamoDB gives them (Decimal), or as their text where
    DynamoDB could not hold them (NaN, over 38 digits, out of range), as the event was always read back."""
    return json.loads(text, parse_int=_number, parse_float=_number, parse_constant=_number)


def _number(text: str) -> Decimal | str:
    try:
        number = DYNAMODB_CONTEXT.create_decimal(text)
    except DecimalException:
        return text
    return number if number.is_finite() else text


PARENT_TYPES = {"stack": frozenset({"layer", "instance", "app", "deployment", "command", "volume", "raid-array"}),
                "server": frozenset({"backup"})}
"""Resources owned by one stack or server, with ids OpsWorks made: an event naming one belongs to its parent.
External resources (Elastic IPs, load balancers, RDS, ECS clusters) move between stacks, and node names
repeat across servers (every node call also names its server), so they are left out."""


def relation_items(event: Event, resources: list[Resource] | None = None) -> list[Item]:
    """Parent -> child items learnt from an event naming both (CreateLayer names the stack and the layer),
    so a stack's events include those naming only its layer (at most MAX_RELATIONS per event). The event's
    account is registered once, not per event (core.ingest.sinks: the store's register_once)."""
    named = {(r["type"], r["id"]) for r in (event.get("resources", []) if resources is None else resources)}
    pairs = [(ptype, pid, ctype, cid) for ptype, pid in sorted(named) if ptype in PARENT_TYPES
             for ctype, cid in sorted(named) if ctype in PARENT_TYPES[ptype]][:MAX_RELATIONS]
    return [{"pk": resource_pk(ptype, pid), "sk": child_sk(ctype, cid), "child_type": ctype,
             "child_id": key_part(cid)} for ptype, pid, ctype, cid in pairs]


def json_number(value: Decimal) -> int | float:
    """A Decimal (how the reader and DynamoDB give numbers) as the JSON number it was."""
    return int(value) if value == value.to_integral_value() else float(value)


def restore(item: Item) -> Event:
    """The normalized event from a stored event item: its document decoded. An item written before the
    document form (attributes, parameters compressed one by one) is read as it was written."""
    if DOCUMENT in item:
        return cast(Event, dict(decode(item[DOCUMENT])))
    if PACKED in item:
        return cast(Event, dict(decode(zlib.decompress(bytes(item[PACKED])).decode("ascii"))))
    event = {k: v for k, v in item.items() if k not in TABLE_KEYS | {SOURCE_RANK, SOURCE_FILES}}
    for name in _BULKY:
        packed = event.pop(f"{name}_zlib", None)
        if packed is not None:
            event[name] = json.loads(zlib.decompress(bytes(packed)), parse_float=Decimal, parse_int=Decimal)
    return cast(Event, event)


def linked_event(item: Item) -> str | None:
    """The pk of the event a resource link item points to; None for any other item."""
    if str(item.get("pk", "")).startswith(RESOURCE_PREFIX) and "event_id" in item and not is_event_item(item):
        return event_pk(str(item["event_id"]))
    return None


def is_event_item(item: Item) -> bool:
    """An event item (not a link, relation, registry or file state item)."""
    return DOCUMENT in item or PACKED in item or (  # or one written before the document form
        "event_id" in item and "event_time" in item and not str(item.get("pk", "")).startswith(FILE_PREFIX))
