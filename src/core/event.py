"""The normalized event: the one type normalize makes, the store writes and restores, queries and reports read.

The schema is docs/layout.md's "The normalized event"; tests/test_event_type.py holds the two together. A
TypedDict is a plain dict at run time, so events keep the form they are stored and printed in. (No
`from __future__ import annotations` here: TypedDict reads NotRequired from evaluated annotations.)

Values have the types CloudTrail documents (strings, a boolean readOnly, objects for the parameters).
normalize copies a record's values as the record gives them, so a record that breaks CloudTrail's own
schema (a number where a string belongs) keeps that value in its event: readers that format values use
str() and isinstance rather than trust a field's type.
"""

from decimal import Decimal
from typing import Any, Literal, NotRequired, TypedDict


class Actor(TypedDict, total=False):
    """userIdentity, flattened; a field CloudTrail left out (or empty) is absent."""

    type: str
    arn: str
    principal_id: str
    account_id: str
    name: str
    """Who a person would say did it: the user name, the role behind a session, or the invoking service."""
    access_key_id: str
    invoked_by: str
    session_issuer_arn: str
    mfa_authenticated: bool
    session_created: str
    source_identity: str
    on_behalf_of: str


class Resource(TypedDict):
    """A stack, layer, instance, app, deployment, server, backup, node... the call names."""

    type: str
    id: str


class SourceObject(TypedDict):
    """The log file the event was read from; a local file has no bucket (its key is the path)."""

    bucket: NotRequired[str]
    key: str


class Event(TypedDict):
    """One CloudTrail event, snake_case; a field the record lacks is absent, never null or empty."""

    event_id: str
    event_time: str
    """ISO 8601 UTC with a Z."""
    event_source: NotRequired[str]
    event_name: NotRequired[str]
    event_type: NotRequired[str]
    event_version: NotRequired[str]
    service: NotRequired[str]
    """`opsworks`, `opsworks-cm`, else the eventSource without `.amazonaws.com`."""
    read_only: NotRequired[bool]
    outcome: Literal["success", "failure"]
    """`failure` when the record has an errorCode or an errorMessage."""
    error_code: NotRequired[str]
    error_message: NotRequired[str]
    region: NotRequired[str]
    account_id: NotRequired[str]
    actor: NotRequired[Actor]
    source_ip: NotRequired[str]
    user_agent: NotRequired[str]
    request_id: NotRequired[str]
    shared_event_id: NotRequired[str]
    vpc_endpoint_id: NotRequired[str]
    resources: NotRequired[list[Resource]]
    request_parameters: NotRequired[dict[str, Any]]
    """Free-form JSON, secrets redacted; numbers read back from the table are Decimal."""
    response_elements: NotRequired[dict[str, Any]]
    source_object: NotRequired[SourceObject]
    ingested_at: str
    unlinked_resources: NotRequired[int | Decimal]
    """Set by the store: how many of `resources` have no link item of their own (past MAX_LINKS). Numbers
    read back from the table are Decimal, as every number the table gives."""
    omitted_compressed_bytes: NotRequired[dict[str, int | Decimal]]
    """Set by the store: fields left out of an event too large to store, with their compressed sizes."""
