"""The only module that talks to DynamoDB: the table's key design, batched idempotent writes, file state.

Keys (see README, "Table design"):
- event           pk=EVENT#<event_id>        sk=EVENT            + GSI keys: by_actor, by_account, failed, writes
- resource link   pk=RES#<type>#<id>         sk=<time>#<event_id> (a copy of the event, no GSI keys)
- file state      pk=FILE#<bucket>/<key>     sk=FILE              (+ failed_pk when it failed permanently)
- relation        pk=RES#stack|server#<id>   sk=CHILD#<type>#<id> (a layer, instance, backup... it owns)
- account         pk=ACCOUNTS                sk=<account_id>      (the accounts the indexes are keyed by)
Every key is derived from the event or the object, so writing the same thing twice overwrites it with
itself: a redelivered file or an event seen in two files stays one item.
"""

from __future__ import annotations

import json
import random
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from decimal import Decimal, DecimalException
from typing import Any

from boto3.dynamodb.types import DYNAMODB_CONTEXT, Binary, TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from core.errors import TransientError
from core.model import ObjectRef, Outcome, utc_now

Item = dict[str, Any]

BATCH_SIZE = 25
MAX_ITEM_BYTES = 350_000
"""DynamoDB refuses items over 400 KB; past this estimate the parameters are compressed."""
FAILED_FILES = "FILE#FAILED"
"""failed_pk of a permanently failed file: the `failed` index lists them for operators."""
_BULKY = ("request_parameters", "response_elements")
_RETRYABLE_CODES = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable", "TransactionInProgressException", "SlowDown",
    "RequestTimeout", "RequestTimeoutException",
})
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def is_transient(error: Exception) -> bool:
    """Throttling, 5xx, timeouts and dropped connections are worth retrying; the rest are not."""
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in _RETRYABLE_CODES or int(status) >= 500
    return isinstance(error, BotoCoreError)


def event_items(event: Item, retention_days: int | None = None) -> list[Item]:
    """The main item of an event and one link item per resource it touched."""
    time_sk = f"{event['event_time']}#{event['event_id']}"
    main = dict(event, pk=f"EVENT#{event['event_id']}", sk="EVENT", time_sk=time_sk)
    actor_key = actor_partition(event.get("actor", {}))
    if actor_key:
        main["actor_pk"] = actor_key
    if event.get("account_id"):
        main["account_pk"] = event["account_id"]
        if event.get("outcome") == "failure":
            main["failed_pk"] = event["account_id"]
        if event.get("read_only") is False:
            main["write_pk"] = event["account_id"]
    if retention_days:
        expiry = datetime.fromisoformat(event["event_time"].replace("Z", "+00:00")) + timedelta(days=retention_days)
        main["expires_at"] = int(expiry.timestamp())
    links = [
        dict(event, pk=f"RES#{resource['type']}#{resource['id']}", sk=time_sk,
             **({"expires_at": main["expires_at"]} if "expires_at" in main else {}))
        for resource in event.get("resources", [])
    ]
    return [fit(item) for item in (main, *links)] + relation_items(event)


PARENT_TYPES = {"stack": frozenset({"layer", "instance", "app", "deployment", "command", "volume", "raid-array"}),
                "server": frozenset({"backup"})}
"""Resources owned by one stack or server, with ids OpsWorks made: an event naming one belongs to its parent.
External resources (Elastic IPs, load balancers, RDS, ECS clusters) move between stacks, and node names
repeat across servers (every node call also names its server), so they are left out."""
ACCOUNTS_PK = "ACCOUNTS"
"""The registry of accounts seen: the `failed`, `writes` and `by_account` indexes are keyed by account."""


def relation_items(event: Item) -> list[Item]:
    """Parent -> child items learnt from an event naming both (CreateLayer names the stack and the layer),
    so a stack's events include those naming only its layer; and the event's account in the registry."""
    resources = {(r["type"], r["id"]) for r in event.get("resources", [])}
    items = [{"pk": f"RES#{ptype}#{pid}", "sk": f"CHILD#{ctype}#{cid}", "child_type": ctype, "child_id": cid}
             for ptype, pid in sorted(resources) if ptype in PARENT_TYPES
             for ctype, cid in sorted(resources) if ctype in PARENT_TYPES[ptype]]
    if event.get("account_id"):
        items.append({"pk": ACCOUNTS_PK, "sk": str(event["account_id"])})
    return items


def actor_partition(actor: Item) -> str | None:
    """by_actor key: the role behind an assumed-role session (every session of it), else the identity."""
    if actor.get("type") == "AssumedRole" and actor.get("session_issuer_arn"):
        return principal_key(str(actor["session_issuer_arn"]))
    key = actor.get("arn") or actor.get("invoked_by")
    return principal_key(str(key)) if key else None


def principal_key(arn: str) -> str:
    """A role's ARN without its path (role names are unique in an account; session ARNs carry no path):
    arn:aws:iam::1:role/service-role/R and arn:aws:sts::1:assumed-role/R/session both give
    arn:aws:iam::1:role/R. Any other ARN is its own key."""
    head, sep, resource = arn.partition(":role/") if ":iam::" in arn else arn.partition(":assumed-role/")
    if not sep:
        return arn
    name = resource.rsplit("/", 1)[-1] if sep == ":role/" else resource.split("/", 1)[0]
    return f"{head.replace(':sts::', ':iam::')}:role/{name}"


def fit(item: Item) -> Item:
    """Keep an item under DynamoDB's size limit: compress bulky parameters rather than drop them."""
    if _estimated_size(item) <= MAX_ITEM_BYTES:
        return item
    fitted = dict(item)
    for name in _BULKY:
        if name in fitted:
            payload = json.dumps(fitted.pop(name), default=_json_number, separators=(",", ":")).encode()
            fitted[f"{name}_zlib"] = Binary(zlib.compress(payload, 9))
    packed = {k: v for k, v in fitted.items() if isinstance(v, Binary)}
    unpacked = {k: v for k, v in fitted.items() if k not in packed}
    if _estimated_size(unpacked) + sum(len(_bytes(v)) for v in packed.values()) > MAX_ITEM_BYTES:
        # incompressible: keep the event, say what was left out
        fitted["omitted_compressed_bytes"] = {
            name: len(_bytes(fitted.pop(f"{name}_zlib"))) for name in _BULKY if f"{name}_zlib" in fitted}
    return fitted


def json_number(value: Decimal) -> int | float:
    """A Decimal (how the reader and DynamoDB give numbers) as the JSON number it was."""
    return int(value) if value == value.to_integral_value() else float(value)


def _json_number(value: Any) -> Any:
    """Numbers stay numbers in compressed parameters, not strings."""
    return json_number(value) if isinstance(value, Decimal) else str(value)


def restore(item: Item) -> Item:
    """The normalized event from a stored item: compressed parameters restored, table keys removed."""
    event = {k: v for k, v in item.items() if k not in _TABLE_KEYS}
    for name in _BULKY:
        packed = event.pop(f"{name}_zlib", None)
        if packed is not None:
            event[name] = json.loads(zlib.decompress(_bytes(packed)), parse_float=Decimal, parse_int=Decimal)
    return event


_TABLE_KEYS = frozenset({"pk", "sk", "time_sk", "actor_pk", "account_pk", "failed_pk", "write_pk", "expires_at"})


class EventStore:
    """Writes events and file state to one table through a client the caller created."""

    def __init__(self, client: Any, table_name: str, *, max_attempts: int = 10,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.table_name = table_name
        self.max_attempts = max_attempts
        self._sleep = sleep

    # -- events --------------------------------------------------------------------------------------

    def put_items(self, items: Iterable[Item]) -> int:
        """BatchWriteItem in groups of 25, retrying unprocessed items with backoff; returns items written."""
        written = 0
        for batch in _batches(_unique_by_key(items), BATCH_SIZE):
            written += self._write_batch(batch)
        return written

    def _write_batch(self, batch: list[Item]) -> int:
        requests = [{"PutRequest": {"Item": serialize(item)}} for item in batch]
        for attempt in range(self.max_attempts):
            try:
                response = self.client.batch_write_item(RequestItems={self.table_name: requests})
            except (ClientError, BotoCoreError) as exc:
                if not is_transient(exc) or attempt == self.max_attempts - 1:
                    raise _as_transient(exc, "BatchWriteItem") from exc
            else:
                requests = response.get("UnprocessedItems", {}).get(self.table_name, [])
                if not requests:
                    return len(batch)
            self._sleep(backoff(attempt))
        raise TransientError(f"DynamoDB left {len(requests)} items unprocessed after {self.max_attempts} attempts")

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
        state = dict(_file_key(ref), status="failed", bucket=ref.bucket, key=ref.key, at=at, reason=reason,
                     failed_pk=FAILED_FILES, time_sk=f"{at}#{ref.bucket}/{ref.key}")
        if ref.etag:
            state["etag"] = ref.etag
        self._put(state)

    def failed_files(self) -> Iterator[Item]:
        """Permanently failed files, oldest first."""
        yield from self.query(IndexName="failed", KeyConditionExpression="failed_pk = :p",
                              ExpressionAttributeValues={":p": {"S": FAILED_FILES}})

    def query(self, **kwargs: Any) -> Iterator[Item]:
        """A paginated Query on the table, deserialized."""
        paginator = self.client.get_paginator("query")
        for page in paginator.paginate(TableName=self.table_name, **kwargs):
            for item in page.get("Items", []):
                yield deserialize(item)

    def _put(self, item: Item) -> None:
        self._call("PutItem", self.client.put_item, TableName=self.table_name, Item=serialize(item))

    def _call(self, name: str, method: Callable[..., Any], **kwargs: Any) -> Any:
        for attempt in range(self.max_attempts):
            try:
                return method(**kwargs)
            except (ClientError, BotoCoreError) as exc:
                if not is_transient(exc) or attempt == self.max_attempts - 1:
                    raise _as_transient(exc, name) from exc
            self._sleep(backoff(attempt))
        raise AssertionError("unreachable")


def backoff(attempt: int, base: float = 0.05, cap: float = 5.0) -> float:
    """Exponential backoff with full jitter (AWS Architecture Blog, 'Exponential Backoff and Jitter')."""
    return random.uniform(0, min(cap, base * 2**attempt))


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


def _as_transient(exc: Exception, operation: str) -> Exception:
    if is_transient(exc):
        return TransientError(f"DynamoDB {operation} kept failing: {exc}")
    return exc


def _file_key(ref: ObjectRef) -> Item:
    return {"pk": f"FILE#{ref.bucket}/{ref.key}", "sk": "FILE"}


def _unique_by_key(items: Iterable[Item]) -> Iterator[Item]:
    """One BatchWriteItem may not name a key twice; the last copy of an item wins."""
    latest: dict[tuple[str, str], Item] = {}
    for item in items:
        latest[(item["pk"], item["sk"])] = item
    yield from latest.values()


def _batches(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    batch: list[Item] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _estimated_size(item: Item) -> int:
    return len(json.dumps(item, default=str, separators=(",", ":")))


def _bytes(value: Any) -> bytes:
    """A Binary read back from DynamoDB (or plain bytes) as bytes."""
    return bytes(value)

