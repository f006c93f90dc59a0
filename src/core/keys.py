"""The events table's key formats, in one place: what the store writes and the queries, the proof and the
report read (CONTRACTS.md, "Events table", lists the items).

- event           pk=EVENT#<event_id>            sk=EVENT            + index keys: by_actor, by_account, failed, writes
- resource link   pk=RES#<type>#<id>             sk=<time>#<event_id> (a pointer to the event: its event_id)
- relation        pk=RES#stack|server#<id>       sk=CHILD#<type>#<id> (a layer, instance, backup... it owns)
- account         pk=ACCOUNTS                    sk=<account_id>      (the accounts the indexes are keyed by: once each)
- account head    pk=ACCOUNT#<account_id>        sk=ACCOUNT           (the claim that registers it, its own partition)
- file state      pk=FILE#<bucket>/<key>         sk=FILE              (+ failed_pk=FILE#FAILED when it failed)
- digest record   pk=PROOF#<account>#<region>    sk=DIGEST#<end>#<bucket>/<key>
- stream head     pk=PROOF#<account>#<region>    sk=STREAM            (the claim that registers the stream once)
- chain link      pk=PROOF#<account>#<region>    sk=LINK#<bucket>/<key of the previous digest>
- proof streams   pk=PROOF#STREAMS               sk=<account>#<region> (written once per stream)
- events proof    pk=PROOF#<account>#<region>    sk=EVENTS#<run time>  (a `verify --events` run's result)

Every part taken from a record (event id, resource id, account, actor) goes through `key_part`; it is
idempotent, so a part read back from an item gives the same key again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from core.event import Actor

MAX_KEY_PART_BYTES = 512
"""A key part from the record (event id, resource id, account, actor) longer than this, or not encodable
as UTF-8, is replaced by its SHA-256 (DynamoDB keys hold 2048 / 1024 bytes)."""

PK, SK, TIME_SK, EXPIRES_AT = "pk", "sk", "time_sk", "expires_at"
EVENT_SK = "EVENT"
RESOURCE_PREFIX = "RES#"
CHILD_PREFIX = "CHILD#"
ACCOUNTS_PK = "ACCOUNTS"
"""The registry of accounts seen: the `failed`, `writes` and `by_account` indexes are keyed by account."""
FILE_PREFIX = "FILE#"
FILE_SK = "FILE"
FAILED_FILES = "FILE#FAILED"
"""failed_pk of a permanently failed file: the `failed` index lists them for operators."""
ACCOUNT_PREFIX = "ACCOUNT#"
ACCOUNT_HEAD_SK = "ACCOUNT"
PROOF_STREAMS_PK = "PROOF#STREAMS"
DIGEST_PREFIX = "DIGEST#"
EVENTS_PROOF_PREFIX = "EVENTS#"
STREAM_HEAD_SK = "STREAM"
LINK_PREFIX = "LINK#"
AWAITING = "awaiting"
"""On a file state item: the digests that listed the file before it was read (a map, digest id -> where
its record is, the file's place in its list and the SHA-256 it lists); on a digest record: the places of
the listed files not read yet (a number set). The file's ingest settles each (core.ingest.proof)."""


@dataclass(frozen=True)
class Index:
    """A global secondary index: its name and key attributes (template.yaml defines them)."""

    name: str
    key: str
    sort_key: str = TIME_SK


BY_ACTOR = Index("by_actor", "actor_pk")
BY_ACCOUNT = Index("by_account", "account_pk")
FAILED = Index("failed", "failed_pk")
"""Failed calls (keyed by account) and permanently failed files (keyed by FAILED_FILES)."""
WRITES = Index("writes", "write_pk")
INDEXES = (BY_ACTOR, BY_ACCOUNT, FAILED, WRITES)
TABLE_KEYS = frozenset({PK, SK, TIME_SK, *(index.key for index in INDEXES), EXPIRES_AT})
"""Attributes of an event item that are keys, not the event."""


def table_definition() -> dict[str, Any]:
    """Arguments of `create_table` for an events table (the caller adds TableName): the key schema and
    indexes template.yaml's EventsTable declares (a test holds the two equal), for a table made outside
    the stack: `opsworks-trail local start` makes the local one with it."""
    def schema(hash_key: str, range_key: str) -> list[dict[str, str]]:
        return [{"AttributeName": hash_key, "KeyType": "HASH"}, {"AttributeName": range_key, "KeyType": "RANGE"}]

    keys = [PK, SK, TIME_SK, *(index.key for index in INDEXES)]
    return {
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": schema(PK, SK),
        "AttributeDefinitions": [{"AttributeName": key, "AttributeType": "S"} for key in keys],
        "GlobalSecondaryIndexes": [{"IndexName": index.name, "KeySchema": schema(index.key, index.sort_key),
                                    "Projection": {"ProjectionType": "ALL"}} for index in INDEXES],
    }


def key_part(text: str) -> str:
    """A value from the record made fit for a key: itself when short and encodable, else `~sha256:<hex>`.
    The same text always gives the same part (idempotent writes; queries compute it the same way)."""
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        size = MAX_KEY_PART_BYTES + 1
    if size <= MAX_KEY_PART_BYTES:
        return text
    return "~sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def event_pk(event_id: str) -> str:
    return f"EVENT#{key_part(event_id)}"


def time_sk(event_time: str, event_id: str) -> str:
    """The sort key of an event in every time-ordered partition (links and the indexes)."""
    return f"{event_time}#{key_part(event_id)}"


def resource_pk(rtype: str, rid: str) -> str:
    return f"{RESOURCE_PREFIX}{rtype}#{key_part(rid)}"


def child_sk(ctype: str, cid: str) -> str:
    return f"{CHILD_PREFIX}{ctype}#{key_part(cid)}"


def file_key(bucket: str | None, key: str) -> dict[str, str]:
    """The file state item of an object: the ledger entry of a log file."""
    return {PK: f"{FILE_PREFIX}{bucket}/{key}", SK: FILE_SK}


def failed_file_time_sk(at: str, bucket: str | None, key: str) -> str:
    return f"{at}#{bucket}/{key}"


def stream_pk(account: str, region: str) -> str:
    """The partition of one account-Region's digest records."""
    return f"PROOF#{account}#{region}"


def account_registry_key(account: str) -> dict[str, str]:
    """An account in the registry (`ACCOUNTS`): written once per account, never per event."""
    return {PK: ACCOUNTS_PK, SK: key_part(account)}


def account_head_key(account: str) -> dict[str, str]:
    """The claim on an account's own partition that decides which write registers it."""
    return {PK: f"{ACCOUNT_PREFIX}{key_part(account)}", SK: ACCOUNT_HEAD_SK}


def stream_registry_key(account: str, region: str) -> dict[str, str]:
    return {PK: PROOF_STREAMS_PK, SK: stream_sk(account, region)}


def stream_head_key(account: str, region: str) -> dict[str, str]:
    """The claim in a stream's own partition that decides which digest registers the stream."""
    return {PK: stream_pk(account, region), SK: STREAM_HEAD_SK}


def link_key(account: str, region: str, previous_bucket: str, previous_key: str) -> dict[str, str]:
    """A digest's claim about the previous digest of its chain, kept where that one finds it (same stream)."""
    return {PK: stream_pk(account, region), SK: f"{LINK_PREFIX}{previous_bucket}/{previous_key}"}


def stream_sk(account: str, region: str) -> str:
    """An account-Region in the proof streams registry (`parse_stream_sk` reads it back)."""
    return f"{account}#{region}"


def parse_stream_sk(sk: str) -> tuple[str, str]:
    account, _, region = sk.partition("#")
    return account, region


def digest_sk(end: str, bucket: str, key: str) -> str:
    return f"{DIGEST_PREFIX}{end}#{bucket}/{key}"


def events_proof_sk(run_at: str) -> str:
    """A `verify --events` run's record in its account-Region's proof partition, newest last."""
    return f"{EVENTS_PROOF_PREFIX}{run_at}"


def actor_partition(actor: Actor) -> str | None:
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
