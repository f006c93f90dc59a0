"""The table writes (the only writer to DynamoDB): batched idempotent writes of an event's items, file
state and the ledger, failures and attempt counts, each call retried by one policy.

What the items are (the event item and its document, links, relations, the account registry) is
core.ingest.items'; their key formats are in core.keys (the reasons: docs/table-design.md). Every key
is derived from the event or the object, so writing the same thing twice overwrites it with itself: a
redelivered file or an event seen in two files stays one item.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, DecimalException
from typing import Any, TypeVar

from boto3.dynamodb.types import DYNAMODB_CONTEXT, TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from core.errors import IngestError, TransientError
from core.ingest.items import DOCUMENT, PACKED, SOURCE_FILES, SOURCE_RANK
from core.keys import (
    AWAITING,
    EVENT_SK,
    FAILED,
    FAILED_FILES,
    failed_file_time_sk,
    file_key,
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
MAX_REASON_CHARS = 2000
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
_FILE_STATE = ("status", "bucket", "key", "at", "bytes", "matched", "records", "sha256", "size", "etag", "reason",
               "failed_pk", "time_sk", "attempts")
"""Every attribute a file state item has ever held besides its key and AWAITING: a state write sets its own
and removes the others (what a put would do), and leaves the digests awaiting the file where they are."""
_NOT_INGESTED = "(attribute_not_exists(#status) OR #status <> :ingested)"
_AWAIT_TRIES = 4


@dataclass(frozen=True)
class Ledgered:
    """What recording a file as ingested found: when it had been before (nothing written), or the digests
    that listed it before it was read (to settle, core.ingest.proof.settle_awaiting)."""

    earlier: str | None = None
    awaiting: dict[str, Item] = field(default_factory=dict)


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
        self._registered: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    # -- events --------------------------------------------------------------------------------------

    def put_items(self, items: Iterable[Item]) -> int:
        """BatchWriteItem in groups of 25; returns items written. A batch DynamoDB refuses for its content
        is written item by item, so one bad item costs only itself: the refused ones are raised together
        (ItemsRefused, permanent) after every other item is stored."""
        written = 0
        refused: list[tuple[Item, str]] = []
        unique = list(_unique_by_key(items))
        events = [item for item in unique if SOURCE_RANK in item]
        for batch in _batches((item for item in unique if SOURCE_RANK not in item), BATCH_SIZE):
            written += self._write_batch(batch, refused)
        for event in events:
            written += self._write_event(event, refused)
        if refused:
            raise ItemsRefused(refused)
        return written

    def _write_event(self, item: Item, refused: list[tuple[Item, str]]) -> int:
        """An event item whose file is known, written so that the order of arrival does not matter: its
        document (and attributes) only when no file of lower rank wrote it first (one conditional
        UpdateItem), its file added to `source_files` in every case. DynamoDB applies each update to the
        item atomically, so concurrent writers of one event end in the same item as any sequence does."""
        key = {"pk": item["pk"], "sk": item["sk"]}
        attributes = [name for name in item if name not in ("pk", "sk", SOURCE_FILES) and item[name] is not None]
        names = {f"#a{i}": name for i, name in enumerate(attributes)}
        values = {f":a{i}": item[name] for i, name in enumerate(attributes)}
        names.update({"#files": SOURCE_FILES, "#rank": SOURCE_RANK,
                      "#other": PACKED if DOCUMENT in item else DOCUMENT})
        values.update({":files": item[SOURCE_FILES], ":rank": item[SOURCE_RANK]})
        assignments = ", ".join(f"#a{i} = :a{i}" for i in range(len(attributes)))
        try:
            for _ in range(3):  # the event item deleted (TTL) between the two updates: write it whole again
                if self._update(key, f"SET {assignments} ADD #files :files REMOVE #other",
                                "attribute_not_exists(#rank) OR #rank >= :rank", names, values):
                    return 1
                if self._update(key, "ADD #files :files", "attribute_exists(pk)", {"#files": SOURCE_FILES},
                                {":files": item[SOURCE_FILES]}):
                    return 1
        except ClientError as exc:
            if not is_refused(exc):
                raise
            refused.append((item, _error_text(exc)))
            return 0
        raise TransientError(f"{item['pk']}: the event item kept changing under its writes")

    def _update(self, key: Item, expression: str, condition: str, names: dict[str, str],
                values: dict[str, Any]) -> bool:
        """One conditional UpdateItem; False when its condition does not hold."""
        try:
            self._call("UpdateItem", self.client.update_item, TableName=self.table_name, Key=serialize(key),
                       UpdateExpression=expression, ConditionExpression=condition, ExpressionAttributeNames=names,
                       ExpressionAttributeValues=serialize(values))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

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

    def mark_ingested(self, outcome: Outcome) -> Ledgered:
        """Written after every event of the file is stored: its presence means the file is done. It is
        the ledger entry too: the SHA-256 of the decompressed content (as digests list it), sizes, when.

        One conditional write: a file already ingested with the same ETag is left as it was (its first
        entry kept) and the time of that ingest is returned. Otherwise the write takes, in the same atomic
        step, the digests that listed the file before it was read (AWAITING), for the caller to settle."""
        ref = outcome.ref
        state = dict(_file_key(ref), status="ingested", bucket=ref.bucket, key=ref.key, at=utc_now(),
                     bytes=outcome.bytes_read, matched=outcome.matched, records=outcome.records,
                     sha256=outcome.sha256 or None, size=ref.size, etag=ref.etag or None)
        condition, values = _NOT_INGESTED, {":ingested": "ingested"}
        if ref.etag:
            condition += " OR #etag <> :etag"
            values[":etag"] = ref.etag
        try:
            old = self._replace_file_state(state, condition, values, take_awaiting=True)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            found: dict[str, Any] = exc.response.get("Item") or {}  # type: ignore[assignment]
            return Ledgered(earlier=str(deserialize(found).get("at", "an earlier time")))
        return Ledgered(awaiting=dict(old.get(AWAITING) or {}))

    def _replace_file_state(self, state: Item, condition: str | None = None, values: Item | None = None, *,
                            take_awaiting: bool = False) -> Item:
        """Set a file state item's attributes and remove the state's others (a put, but for AWAITING, which
        stays unless taken); returns the item as it was before."""
        fields = {name: value for name, value in state.items() if name not in ("pk", "sk") and value is not None}
        removed = [name for name in _FILE_STATE if name not in fields] + ([AWAITING] if take_awaiting else [])
        expression = "SET " + ", ".join(f"#{name} = :{name}" for name in fields)
        if removed:
            expression += " REMOVE " + ", ".join(f"#{name}" for name in removed)
        named = [*fields, *removed, *(name for name in ("status", "etag") if condition and f"#{name}" in condition)]
        kwargs: dict[str, Any] = dict(
            TableName=self.table_name, Key=serialize({"pk": state["pk"], "sk": state["sk"]}),
            UpdateExpression=expression, ExpressionAttributeNames={f"#{name}": name for name in named},
            ExpressionAttributeValues=serialize({**{f":{name}": value for name, value in fields.items()},
                                                 **(values or {})}),
            ReturnValues="ALL_OLD")
        if condition:
            kwargs.update(ConditionExpression=condition, ReturnValuesOnConditionCheckFailure="ALL_OLD")
        try:
            response = self._call("UpdateItem", self.client.update_item, **kwargs)
        except ClientError as exc:
            if is_refused(exc):
                raise ItemsRefused([(state, _error_text(exc))]) from exc
            raise
        return deserialize(response.get("Attributes") or {})

    def await_file(self, bucket: str, key: str, digest_id: str, marker: Item) -> Item | None:
        """Leave a digest's marker on a log file's state item, unless the file is ingested already: then its
        ledger entry is returned (for the digest to check itself). One atomic step per attempt, so the
        file's ingest either takes the marker or was there first: nothing falls between the two."""
        item_key = file_key(bucket, key)
        names = {"#status": "status", "#aw": AWAITING}
        for _ in range(_AWAIT_TRIES):
            try:
                self._call("UpdateItem", self.client.update_item, TableName=self.table_name,
                           Key=serialize(item_key), UpdateExpression="SET #aw = :m",
                           ConditionExpression=f"{_NOT_INGESTED} AND attribute_not_exists(#aw)",
                           ExpressionAttributeNames=names,
                           ExpressionAttributeValues=serialize({":m": {digest_id: marker}, ":ingested": "ingested"}),
                           ReturnValuesOnConditionCheckFailure="ALL_OLD")
                return None
            except ClientError as exc:
                old = _conditional_old(exc)
            if old.get("status") == "ingested":
                return old
            if digest_id in (old.get(AWAITING) or {}):
                return None
            try:
                self._call("UpdateItem", self.client.update_item, TableName=self.table_name,
                           Key=serialize(item_key), UpdateExpression="SET #aw.#d = :m",
                           ConditionExpression=f"{_NOT_INGESTED} AND attribute_exists(#aw)",
                           ExpressionAttributeNames={**names, "#d": digest_id},
                           ExpressionAttributeValues=serialize({":m": marker, ":ingested": "ingested"}))
                return None
            except ClientError as exc:
                _conditional_old(exc)
        raise TransientError(f"s3://{bucket}/{key}: its state kept changing while a digest marked it awaited")

    def put_new(self, item: Item) -> Item | None:
        """Put an item that must not exist yet: None when this call wrote it, else the item found."""
        try:
            self._call("PutItem", self.client.put_item, TableName=self.table_name, Item=serialize(item),
                       ConditionExpression="attribute_not_exists(pk)", ReturnValuesOnConditionCheckFailure="ALL_OLD")
        except ClientError as exc:
            return _conditional_old(exc)
        return None

    def update_if(self, key: Item, expression: str, condition: str | None = None, *,
                  names: dict[str, str] | None = None, values: Item | None = None) -> bool:
        """One UpdateItem; False when its condition did not hold (nothing written)."""
        kwargs: dict[str, Any] = dict(TableName=self.table_name, Key=serialize({"pk": key["pk"], "sk": key["sk"]}),
                                      UpdateExpression=expression)
        if names:
            kwargs["ExpressionAttributeNames"] = names
        if values:
            kwargs["ExpressionAttributeValues"] = serialize(values)
        if condition:
            kwargs["ConditionExpression"] = condition
        try:
            self._call("UpdateItem", self.client.update_item, **kwargs)
        except ClientError as exc:
            _conditional_old(exc)
            return False
        return True

    def register_once(self, head: Item, entry: Item) -> bool:
        """Write a registry entry once per thing it registers (an account, a proof stream): a conditional
        put of `head` in the thing's own partition decides which write registers it, and this store
        remembers what it has seen, so the registry's partition (written by no one else) is not written
        per event or per digest. True when this call wrote the entry."""
        seen = (str(head["pk"]), str(head["sk"]))
        with self._lock:
            if seen in self._registered:
                return False
        found = self.put_new(head)
        wrote = found is None or not found.get("registered")  # absent flag: a writer stopped half-way
        if wrote:
            self._put(entry)
            self.update_if(head, "SET #r = :t", names={"#r": "registered"}, values={":t": True})
        with self._lock:
            self._registered.add(seen)
        return wrote

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
                     time_sk=failed_file_time_sk(at, ref.bucket, ref.key), etag=ref.etag or None)
        self._replace_file_state(state)

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
                        attempts=attempts, reason=storable_text(reason), etag=ref.etag or None)
        self._replace_file_state(retrying)
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


def _conditional_old(exc: ClientError) -> Item:
    """The item a failed condition found (ALL_OLD); any other error is raised again."""
    if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
        raise exc
    found: dict[str, Any] = exc.response.get("Item") or {}  # type: ignore[assignment]
    return deserialize(found)


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
