"""The table writes (the only writer to DynamoDB): the items of an event, batched idempotent writes, file state.

The items: an event, a link per resource it names, relations, the account registry, file state; their
key formats are in core.keys (the reasons: docs/table-design.md). Every key is derived from
the event or the object, so writing the same thing twice overwrites it with itself: a redelivered file or
an event seen in two files stays one item.

One storage form that no content can make DynamoDB refuse: the event item holds the normalized event as
one JSON document (`event`, a string; `event_zlib`, zlib-compressed binary, when large; the largest
fields left out and named in `omitted_compressed_bytes` when even that is too big). A document has no
depth, no attribute names and no numbers for DynamoDB to validate, and its text is ASCII (lone surrogates
escaped). Every key part taken from the record is kept short and encodable by `key_part`.
"""

from __future__ import annotations

import json
import random
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from decimal import Decimal, DecimalException
from typing import Any, TypeVar, cast

import simplejson
from boto3.dynamodb.types import DYNAMODB_CONTEXT, Binary, TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from core.errors import IngestError, TransientError, Unstorable
from core.event import Event, Resource
from core.keys import (
    ACCOUNTS_PK,
    BY_ACCOUNT,
    BY_ACTOR,
    EVENT_SK,
    FAILED,
    FAILED_FILES,
    FILE_PREFIX,
    RESOURCE_PREFIX,
    TABLE_KEYS,
    TIME_SK,
    WRITES,
    actor_partition,
    child_sk,
    event_pk,
    failed_file_time_sk,
    file_key,
    key_part,
    resource_pk,
    time_sk,
)
from core.model import ObjectRef, Outcome, utc_now

Item = dict[str, Any]
T = TypeVar("T")

BATCH_SIZE = 25
RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 5}, connect_timeout=5, read_timeout=20)
"""The one retry policy of every DynamoDB call: botocore's standard mode (exponential backoff with jitter,
throttling, 5xx and dropped connections retried, 5 attempts in all). Give it to every client the store
uses; the store itself retries only what DynamoDB leaves unprocessed."""
UNPROCESSED_ATTEMPTS = 8
UNPROCESSED_SECONDS = 20.0
"""Bounds of the one loop of the store's own: items DynamoDB left unprocessed are sent again at most this
many times, within this many seconds, then the file is a transient failure."""
DOCUMENT, PACKED = "event", "event_zlib"
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
MAX_REASON_CHARS = 2000
_BULKY = ("request_parameters", "response_elements")
_RETRYABLE_CODES = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable", "TransactionInProgressException", "SlowDown",
    "RequestTimeout", "RequestTimeoutException", "Throttling", "TooManyRequestsException",
    "ExpiredToken", "ExpiredTokenException", "RequestExpired", "InvalidSignatureException",
})
"""Faults of the environment: load, outages, and credentials that expired or a clock that drifted."""
_REFUSED_CODES = frozenset({"ValidationException", "RequestEntityTooLarge", "ItemCollectionSizeLimitExceededException"})
"""Faults of the content: DynamoDB refuses these items the same way every time."""
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def is_transient(error: Exception) -> bool:
    """Throttling, 5xx, timeouts, dropped connections and expired credentials are worth retrying."""
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in _RETRYABLE_CODES or int(status) >= 500
    return isinstance(error, BotoCoreError)


def is_refused(error: Exception) -> bool:
    """DynamoDB refusing what it was sent (a shape, a size): the same bytes fail the same way again."""
    if not isinstance(error, ClientError):
        return False
    code = error.response.get("Error", {}).get("Code", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return code in _REFUSED_CODES or int(status) == 413


class ItemsRefused(IngestError):
    """DynamoDB refused some items one by one (every other item of the write was stored)."""

    def __init__(self, refused: list[tuple[Item, str]]) -> None:
        super().__init__(f"DynamoDB refused {len(refused)} item(s): {refused[0][1]}")
        self.refused = refused


def event_items(event: Event, retention_days: int | None = None) -> list[Item]:
    """The event item, one small link item per resource it names (up to MAX_LINKS), its relation and
    account registry items."""
    resources = event.get("resources", [])
    if len(resources) > MAX_LINKS:
        event = {**event, "unlinked_resources": len(resources) - MAX_LINKS}
    event_key = key_part(event["event_id"])
    sort_key = time_sk(event["event_time"], event_key)
    main: Item = {"pk": event_pk(event_key), "sk": EVENT_SK, "event_id": event_key, TIME_SK: sort_key,
                  **document(event)}
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
    so a stack's events include those naming only its layer (at most MAX_RELATIONS per event); and the
    event's account in the registry."""
    named = {(r["type"], r["id"]) for r in (event.get("resources", []) if resources is None else resources)}
    pairs = [(ptype, pid, ctype, cid) for ptype, pid in sorted(named) if ptype in PARENT_TYPES
             for ctype, cid in sorted(named) if ctype in PARENT_TYPES[ptype]][:MAX_RELATIONS]
    items = [{"pk": resource_pk(ptype, pid), "sk": child_sk(ctype, cid), "child_type": ctype,
              "child_id": key_part(cid)} for ptype, pid, ctype, cid in pairs]
    if event.get("account_id"):
        items.append({"pk": ACCOUNTS_PK, "sk": key_part(str(event["account_id"]))})
    return items


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
    event = {k: v for k, v in item.items() if k not in TABLE_KEYS}
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


class EventStore:
    """Writes events and file state to one table through a client the caller created (with RETRIES)."""

    def __init__(self, client: Any, table_name: str, *, max_attempts: int = UNPROCESSED_ATTEMPTS,
                 max_seconds: float = UNPROCESSED_SECONDS, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.table_name = table_name
        self.max_attempts = max_attempts
        self.max_seconds = max_seconds
        self._sleep = sleep
        self._clock = clock

    # -- events --------------------------------------------------------------------------------------

    def put_items(self, items: Iterable[Item]) -> int:
        """BatchWriteItem in groups of 25; returns items written. A batch DynamoDB refuses for its content
        is written item by item, so one bad item costs only itself: the refused ones are raised together
        (ItemsRefused, permanent) after every other item is stored."""
        written = 0
        refused: list[tuple[Item, str]] = []
        for batch in _batches(_unique_by_key(items), BATCH_SIZE):
            written += self._write_batch(batch, refused)
        if refused:
            raise ItemsRefused(refused)
        return written

    def _write_batch(self, batch: list[Item], refused: list[tuple[Item, str]]) -> int:
        requests = [{"PutRequest": {"Item": serialize(item)}} for item in batch]
        started = self._clock()
        for attempt in range(self.max_attempts):
            try:
                response = self.client.batch_write_item(RequestItems={self.table_name: requests})
            except (ClientError, BotoCoreError) as exc:
                if is_refused(exc):
                    return self._write_one_by_one(batch, refused)
                if is_transient(exc):
                    raise _classified(exc, "BatchWriteItem") from exc
                raise
            requests = response.get("UnprocessedItems", {}).get(self.table_name, [])
            if not requests:
                return len(batch)
            pause = backoff(attempt)
            if attempt == self.max_attempts - 1 or self._clock() + pause - started > self.max_seconds:
                break
            self._sleep(pause)
        raise TransientError(f"DynamoDB left {len(requests)} items unprocessed after {attempt + 1} attempts "
                             f"in {self._clock() - started:.1f} s")

    def _write_one_by_one(self, batch: list[Item], refused: list[tuple[Item, str]]) -> int:
        written = 0
        for item in batch:
            try:
                self._put(item)
            except ItemsRefused as exc:
                refused.extend(exc.refused)
            else:
                written += 1
        return written

    def get_events(self, event_pks: Iterable[str]) -> dict[str, Item]:
        """Event items by pk (BatchGetItem, 100 keys a call): what resource link items point to."""
        found: dict[str, Item] = {}
        for keys in _batches(dict.fromkeys(event_pks), 100):
            request: dict[str, Any] = {self.table_name: {
                "Keys": [serialize({"pk": pk, "sk": EVENT_SK}) for pk in keys]}}
            started = self._clock()
            for attempt in range(self.max_attempts):
                response = self._call("BatchGetItem", self.client.batch_get_item, RequestItems=request)
                for item in response.get("Responses", {}).get(self.table_name, []):
                    event = deserialize(item)
                    found[event["pk"]] = event
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                if attempt == self.max_attempts - 1 or self._clock() - started > self.max_seconds:
                    raise TransientError(f"DynamoDB left keys unprocessed after {attempt + 1} attempts")
                self._sleep(backoff(attempt))
        return found

    # -- file state ----------------------------------------------------------------------------------

    def file_state(self, ref: ObjectRef) -> Item | None:
        response = self._call("GetItem", self.client.get_item, TableName=self.table_name,
                              Key=serialize(_file_key(ref)), ConsistentRead=True)
        item = response.get("Item")
        return deserialize(item) if item else None

    def mark_ingested(self, outcome: Outcome) -> str | None:
        """Written after every event of the file is stored: its presence means the file is done. It is
        the ledger entry too: the SHA-256 of the decompressed content (as digests list it), sizes, when.

        One conditional write: a file already ingested with the same ETag is left as it was (its first
        entry kept) and the time of that ingest is returned; None when this write recorded the file."""
        ref = outcome.ref
        state = dict(_file_key(ref), status="ingested", bucket=ref.bucket, key=ref.key, at=utc_now(),
                     bytes=outcome.bytes_read, matched=outcome.matched)
        if outcome.records is not None:
            state["records"] = outcome.records
        if outcome.sha256:
            state["sha256"] = outcome.sha256
        if ref.size is not None:
            state["size"] = ref.size
        condition, values = "attribute_not_exists(pk) OR #status <> :ingested", {":ingested": {"S": "ingested"}}
        if ref.etag:
            state["etag"] = ref.etag
            condition += " OR etag <> :etag"
            values[":etag"] = {"S": ref.etag}
        try:
            self._call("PutItem", self.client.put_item, TableName=self.table_name, Item=serialize(state),
                       ConditionExpression=condition, ExpressionAttributeNames={"#status": "status"},
                       ExpressionAttributeValues=values, ReturnValuesOnConditionCheckFailure="ALL_OLD")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            old: dict[str, Any] = exc.response.get("Item") or {}  # type: ignore[assignment]
            return str(deserialize(old).get("at", "an earlier time"))
        return None

    def get_item(self, key: Item) -> Item | None:
        """One item by its key (consistent read), deserialized."""
        response = self._call("GetItem", self.client.get_item, TableName=self.table_name,
                              Key=serialize(key), ConsistentRead=True)
        item = response.get("Item")
        return deserialize(item) if item else None

    def get_items(self, keys: Iterable[Item]) -> list[Item]:
        """Items by key, 100 per BatchGetItem, unprocessed keys retried with backoff; absent keys are
        simply not returned."""
        found: list[Item] = []
        for batch in _batches(_unique_by_key(keys), 100):
            pending = [serialize({"pk": k["pk"], "sk": k["sk"]}) for k in batch]
            for attempt in range(self.max_attempts):
                response = self._call("BatchGetItem", self.client.batch_get_item,
                                      RequestItems={self.table_name: {"Keys": pending, "ConsistentRead": True}})
                found += [deserialize(item) for item in response.get("Responses", {}).get(self.table_name, [])]
                pending = response.get("UnprocessedKeys", {}).get(self.table_name, {}).get("Keys", [])
                if not pending:
                    break
                self._sleep(backoff(attempt))
            else:
                raise TransientError(f"DynamoDB left {len(pending)} keys unread after {self.max_attempts} attempts")
        return found

    def put_item(self, item: Item) -> None:
        self._put(item)

    def mark_failed(self, ref: ObjectRef, reason: str) -> None:
        """A permanent failure, listed by `opsworks-trail failures` until a later success replaces it."""
        at = utc_now()
        state = dict(_file_key(ref), status="failed", bucket=ref.bucket, key=ref.key, at=at,
                     reason=storable_text(reason), failed_pk=FAILED_FILES,
                     time_sk=failed_file_time_sk(at, ref.bucket, ref.key))
        if ref.etag:
            state["etag"] = ref.etag
        self._put(state)

    def count_attempt(self, ref: ObjectRef, reason: str, limit: int) -> int:
        """One more failed attempt of unknown cause on this object (its content unchanged): the count, kept
        on the file state item (status `retrying`) so that a fault no one foresaw cannot loop forever. A
        file already listed as failed with the same content has had its `limit` (the pipeline reads no
        state before work, so a redelivery comes this far)."""
        state = self.file_state(ref) or {}
        if state.get("status") == "failed" and ref.etag and state.get("etag") == ref.etag:
            return limit
        same = state.get("status") == "retrying" and state.get("etag") == ref.etag
        attempts = int(state.get("attempts", 0)) + 1 if same else 1
        retrying = dict(_file_key(ref), status="retrying", bucket=ref.bucket, key=ref.key, at=utc_now(),
                        attempts=attempts, reason=storable_text(reason))
        if ref.etag:
            retrying["etag"] = ref.etag
        self._put(retrying)
        return attempts

    def failed_files(self) -> Iterator[Item]:
        """Permanently failed files, oldest first."""
        yield from self.query(IndexName=FAILED.name, KeyConditionExpression=f"{FAILED.key} = :p",
                              ExpressionAttributeValues={":p": {"S": FAILED_FILES}})

    def query(self, **kwargs: Any) -> Iterator[Item]:
        """A paginated Query on the table, deserialized."""
        paginator = self.client.get_paginator("query")
        for page in paginator.paginate(TableName=self.table_name, **kwargs):
            for item in page.get("Items", []):
                yield deserialize(item)

    def _put(self, item: Item) -> None:
        try:
            self._call("PutItem", self.client.put_item, TableName=self.table_name, Item=serialize(item))
        except ClientError as exc:
            if is_refused(exc):
                raise ItemsRefused([(item, _error_text(exc))]) from exc
            raise

    def _call(self, name: str, method: Callable[..., Any], **kwargs: Any) -> Any:
        """One call; botocore (RETRIES) has already retried what is worth retrying when it raises."""
        try:
            return method(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            if is_transient(exc):
                raise _classified(exc, name) from exc
            raise


def backoff(attempt: int, base: float = 0.05, cap: float = 5.0) -> float:
    """Exponential backoff with full jitter (AWS Architecture Blog, 'Exponential Backoff and Jitter')."""
    return random.uniform(0, min(cap, base * 2**attempt))


def storable_text(text: str) -> str:
    """A reason fit to store and log: at most MAX_REASON_CHARS, encodable (lone surrogates escaped)."""
    if len(text) > MAX_REASON_CHARS:
        text = text[:MAX_REASON_CHARS] + f"... ({len(text) - MAX_REASON_CHARS:,} more characters)"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def serialize(item: Item) -> dict[str, Any]:
    return {k: _serializer.serialize(_dynamo_value(v)) for k, v in item.items() if v is not None}


def deserialize(item: dict[str, Any]) -> Item:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


def _dynamo_value(value: Any) -> Any:
    """DynamoDB has no float and no empty sets; floats become Decimal (json floats are parsed as Decimal).
    A number DynamoDB cannot hold (over 38 digits, out of range, NaN) is kept as its text rather than
    failing the whole batch on every retry."""
    if isinstance(value, float):
        value = Decimal(str(value))
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        try:
            number = DYNAMODB_CONTEXT.create_decimal(value)
        except (DecimalException, TypeError):
            return str(value)
        return value if number.is_finite() else str(value)
    if isinstance(value, dict):
        return {k: _dynamo_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_dynamo_value(v) for v in value]
    return value


def _classified(exc: Exception, operation: str) -> TransientError:
    return TransientError(f"DynamoDB {operation} kept failing: {_error_text(exc)}")


def _error_text(exc: Exception) -> str:
    return storable_text(str(exc))


def _file_key(ref: ObjectRef) -> Item:
    return dict(file_key(ref.bucket, ref.key))


def _unique_by_key(items: Iterable[Item]) -> Iterator[Item]:
    """One BatchWriteItem may not name a key twice; the last copy of an item wins."""
    latest: dict[tuple[str, str], Item] = {}
    for item in items:
        latest[(item["pk"], item["sk"])] = item
    yield from latest.values()


def _batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
