"""One CloudTrail record -> one normalized OpsWorks event (the schema: docs/layout.md, "The normalized event").

Pure: no I/O, no table keys. Absent CloudTrail fields stay absent; secrets are redacted here, before
anything else can store or log them: the fields the API models mark (catalog), then secrets by shape
(`redact_secrets`, docs/secrets.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

import simplejson

from core.event import Actor, Event
from core.ingest.catalog import REDACTED, Catalog
from core.model import ObjectRef

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
    # Built as a plain dict, in the order the fields are stored; tests/test_event_type.py holds its keys
    # and their types to Event.
    event: dict[str, Any] = {"event_id": event_id, "event_time": iso_utc(record.get("eventTime"))}
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
    return cast(Event, {name: value if name == "event_id" else redact_secrets(value) for name, value in event.items()})


# -- secrets by shape -------------------------------------------------------------------------------

_SECRET_WORDS = re.compile(r"passw(?:or)?d|passphrase|secret|token|privatekey|credential|apikey|authorization"
                           r"|^(?:pwd|pass|auth|accesskey|sshkey)$")
_NOT_SECRET_ENDINGS = ("id", "ids", "name", "names", "arn", "arns", "type", "types", "enabled", "length",
                       "expiration", "expiry", "expiresat", "version", "count", "required", "policy", "url", "uri")
_SECRET_KEY_TEXT = (r"(?<![\w.-])[\w.-]{0,40}?"  # a key starts a word and is short: linear time on any text
                    r"(?:passw(?:or)?d|passphrase|secret|token|private[_.-]?key|credential|api[_.-]?key)[\w.-]{0,40}")
_TEXT_RULES: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    # PEM private keys (RSA, EC, OPENSSH, ENCRYPTED, PGP ... BLOCK), an unterminated one to the end of the text
    (re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----[\s\S]*?"
                r"(?:-----END [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----|$)"), REDACTED),
    # key: value, key = value, "key": "value" where the key names a secret (YAML, INI, env files, shell, JSON text)
    (re.compile(r"(?i)(?P<key>" + _SECRET_KEY_TEXT + r")(?P<sep>[\"']?\s*[:=]\s*)"
                r"(?P<value>\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*'|[^\s,;&}\]\"']+)"),
     lambda m: m[0] if not names_secret(m["key"]) or REDACTED in m["value"] else _redacted_value(m)),
    # user:password@ in URLs (git remotes, database URLs)
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/\s:@]*):([^/\s@]+)@"), rf"\1:{REDACTED}@"),
    # AWS secret access keys: 40 base64 characters standing alone, with upper, lower case and digits
    (re.compile(r"(?<![A-Za-z0-9/+])(?=[A-Za-z0-9/+]{0,39}[A-Z])(?=[A-Za-z0-9/+]{0,39}[a-z])"
                r"(?=[A-Za-z0-9/+]{0,39}[0-9])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])"), REDACTED),
    # tokens with a published shape: GitHub, Slack, Google API keys, JWTs
    (re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}|xox[abposr]-[A-Za-z0-9-]{10,}"
                r"|AIza[0-9A-Za-z_-]{35}|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})"), REDACTED),
]


_SECRET_HINTS = ("passw", "passphrase", "secret", "token", "private", "credential", "apikey", "api_key", "api.key",
                 "api-key", "://", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "xox", "aiza", "eyj")
"""What each of _TEXT_RULES needs in the text (lower-cased), but the AWS secret key rule (a 40-character
run): a text with none of it is returned as it is, without running the rules (most strings are ids and
names; substring tests cost a tenth of one regular expression with these alternatives)."""
_BASE64_RUN = re.compile(r"[A-Za-z0-9/+]{40}")


def names_secret(key: str) -> bool:
    """A key that names a secret: password, secret, token, private key, credentials, API key... but not
    the secret's id, name, ARN, type or expiry (sshKeyName, secretArn, tokenExpiration)."""
    word = re.sub(r"[^a-z0-9]", "", key.lower())
    return bool(_SECRET_WORDS.search(word)) and not word.endswith(_NOT_SECRET_ENDINGS)


def redact_secrets(value: Any) -> Any:
    """Secrets by shape, anywhere in a value: the value of a key naming a secret; inside a string, a JSON
    document (customJson) redacted the same way, and secret formats in text (see _TEXT_RULES)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, list):
        return [redact_secrets(item) for item in value]
    if isinstance(value, dict):
        return {key: REDACTED if names_secret(key) and _is_secret_value(item) else redact_secrets(item)
                for key, item in value.items()}
    return value


def redact_text(text: str) -> str:
    """A string with its secrets redacted: a JSON object or list in it is redacted as a structure and
    written back (unchanged when it held none); any other text by the format rules."""
    document = _json_container(text)
    if document is not None:
        redacted = redact_secrets(document)
        if redacted == document:
            return text
        return str(simplejson.dumps(redacted, use_decimal=True, allow_nan=True, ensure_ascii=False))
    lowered = text.lower()
    if not any(hint in lowered for hint in _SECRET_HINTS) and (len(text) < 40 or not _BASE64_RUN.search(text)):
        return text
    for pattern, replacement in _TEXT_RULES:
        text = pattern.sub(replacement, text)
    return text


def _json_container(text: str) -> Any:
    stripped = text.strip()
    if not stripped.startswith(("{", "[")):
        return None
    try:
        document = json.loads(stripped, parse_float=Decimal)
    except (ValueError, RecursionError):
        return None
    return document if isinstance(document, dict | list) else None


def _redacted_value(match: re.Match[str]) -> str:
    quote = match["value"][0] if match["value"][0] in "\"'" else ""
    return f"{match['key']}{match['sep']}{quote}{REDACTED}{quote}"


def _is_secret_value(value: Any) -> bool:
    return value not in (None, "", REDACTED) and not isinstance(value, bool)


def normalize_actor(identity: dict[str, Any]) -> Actor:
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
    return cast(Actor, {k: v for k, v in actor.items() if v is not None and v != ""})


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
