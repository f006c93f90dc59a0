"""One CloudTrail record -> one normalized OpsWorks event (see ARCHITECTURE.md for the schema).

Pure: no I/O, no table keys. Absent CloudTrail fields stay absent; secrets are redacted here, before
anything else can store or log them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from core.catalog import Catalog
from core.model import ObjectRef

Event = dict[str, Any]

_SERVICE_NAMES = {"opsworks.amazonaws.com": "opsworks", "opsworks-cm.amazonaws.com": "opsworks-cm"}
_COPIED = (
    ("event_source", "eventSource"), ("event_name", "eventName"), ("event_type", "eventType"),
    ("event_version", "eventVersion"), ("error_code", "errorCode"), ("error_message", "errorMessage"),
    ("region", "awsRegion"), ("source_ip", "sourceIPAddress"), ("user_agent", "userAgent"),
    ("request_id", "requestID"), ("shared_event_id", "sharedEventID"), ("vpc_endpoint_id", "vpcEndpointId"),
)


class InvalidRecord(ValueError):
    """A selected record lacks what an event needs (an eventID, a parseable eventTime)."""


def normalize(record: dict[str, Any], source: ObjectRef | None, catalog: Catalog, ingested_at: str) -> Event:
    event_id = record.get("eventID")
    if not isinstance(event_id, str) or not event_id:
        raise InvalidRecord("no eventID")
    event: Event = {"event_id": event_id, "event_time": iso_utc(record.get("eventTime"))}
    for name, field in _COPIED:
        value = record.get(field)
        if value is not None and value != "":
            event[name] = value
    event_source = str(record.get("eventSource") or "")
    event_name = str(record.get("eventName") or "")
    service = _SERVICE_NAMES.get(event_source) or event_source.removesuffix(".amazonaws.com")
    if service:  # an Insights record has no eventSource: no service rather than an empty string
        event["service"] = service
    read_only = _read_only(record, catalog, event_source, event_name)
    if read_only is not None:
        event["read_only"] = read_only
    event["outcome"] = "failure" if record.get("errorCode") or record.get("errorMessage") else "success"
    identity = _mapping(record.get("userIdentity"))
    account = record.get("recipientAccountId") or identity.get("accountId")
    if account:
        event["account_id"] = str(account)
    actor = normalize_actor(identity)
    if actor:
        event["actor"] = actor
    request = record.get("requestParameters")
    response = record.get("responseElements")
    resources = catalog.resources(event_source, event_name, request, response, record.get("resources"))
    if resources:
        event["resources"] = resources
    if request is not None:
        event["request_parameters"] = catalog.redact(request)
    if response is not None:
        event["response_elements"] = catalog.redact(response)
    if source is not None:
        event["source_object"] = ({"bucket": source.bucket, "key": source.key} if source.bucket is not None
                                  else {"key": source.key})
    event["ingested_at"] = ingested_at
    return event


def normalize_actor(identity: dict[str, Any]) -> dict[str, Any]:
    """userIdentity -> the actor map; `name` is who a person would say did it."""
    context = _mapping(identity.get("sessionContext"))
    issuer = _mapping(context.get("sessionIssuer"))
    attributes = _mapping(context.get("attributes"))
    actor = {
        "type": identity.get("type"),
        "arn": identity.get("arn"),
        "principal_id": identity.get("principalId"),
        "account_id": identity.get("accountId"),
        "name": identity.get("userName") or issuer.get("userName") or identity.get("invokedBy"),
        "access_key_id": identity.get("accessKeyId"),
        "invoked_by": identity.get("invokedBy"),
        "session_issuer_arn": issuer.get("arn"),
        "session_created": attributes.get("creationDate"),
        "source_identity": context.get("sourceIdentity"),
        "on_behalf_of": _mapping(identity.get("onBehalfOf")).get("userId"),
    }
    mfa = attributes.get("mfaAuthenticated")
    if mfa is not None:
        actor["mfa_authenticated"] = mfa is True or str(mfa).lower() == "true"
    return {k: v for k, v in actor.items() if v is not None and v != ""}


def iso_utc(value: Any) -> str:
    """CloudTrail's eventTime as ISO 8601 UTC with a Z."""
    if not isinstance(value, str) or not value:
        raise InvalidRecord("no eventTime")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRecord(f"eventTime {value!r} is not ISO 8601") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    text = moment.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _read_only(record: dict[str, Any], catalog: Catalog, source: str, name: str) -> bool | None:
    flag = record.get("readOnly")
    if isinstance(flag, bool):
        return flag
    if isinstance(flag, str) and flag.lower() in ("true", "false"):
        return flag.lower() == "true"
    action = catalog.action(source, name)
    if action is not None:
        return action.read_only
    if name:
        return name.startswith(("Describe", "List", "Get"))
    return None
