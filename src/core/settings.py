"""The function's settings, read once from the environment into a validated, typed object."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_EVENT_SOURCES = ("opsworks.amazonaws.com", "opsworks-cm.amazonaws.com")
DEFAULT_MAX_DECOMPRESSED_BYTES = 512 * 1024 * 1024


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable and the reason."""


@dataclass(frozen=True)
class Settings:
    table_name: str
    event_sources: frozenset[str] | None = frozenset(DEFAULT_EVENT_SOURCES)
    """None selects every event source (`--event-sources all`)."""
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES
    retention_days: int | None = None
    digest_public_keys: str | None = None
    """Where digest files' public keys come from: `cloudtrail` (ListPublicKeys), a saved
    `aws cloudtrail list-public-keys` file, or None (DIGEST_PUBLIC_KEYS unset or `off`): digests skipped."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        table_name = env.get("TABLE_NAME", "").strip()
        if not table_name:
            raise SettingsError("TABLE_NAME is not set: name the DynamoDB table that stores the events")
        return cls(
            table_name=table_name,
            event_sources=parse_event_sources(env.get("EVENT_SOURCES", "")),
            max_decompressed_bytes=_positive_int(env, "MAX_DECOMPRESSED_BYTES", DEFAULT_MAX_DECOMPRESSED_BYTES,
                                                 minimum=1),
            retention_days=_positive_int(env, "RETENTION_DAYS", 0) or None,
            digest_public_keys=_digest_keys(env.get("DIGEST_PUBLIC_KEYS", "")),
        )


def parse_event_sources(text: str) -> frozenset[str] | None:
    """`a,b` -> {a, b}; empty -> the OpsWorks defaults; `all` -> None (keep every record)."""
    text = text.strip()
    if not text:
        return frozenset(DEFAULT_EVENT_SOURCES)
    if text.lower() == "all":
        return None
    sources = frozenset(part.strip() for part in text.split(",") if part.strip())
    if not sources:
        raise SettingsError(f"EVENT_SOURCES={text!r} names no eventSource: leave it unset for the OpsWorks defaults")
    for source in sources:
        if not source.endswith(".amazonaws.com"):
            raise SettingsError(f"EVENT_SOURCES: {source!r} is not an eventSource such as opsworks.amazonaws.com")
    return sources


def _digest_keys(text: str) -> str | None:
    text = text.strip()
    if not text or text.lower() == "off":
        return None
    if text.lower() == "cloudtrail":
        return "cloudtrail"
    if not os.path.isfile(text):
        raise SettingsError(f"DIGEST_PUBLIC_KEYS={text!r} is neither 'cloudtrail', 'off' nor a readable file of "
                            "`aws cloudtrail list-public-keys --output json`")
    return text


def _positive_int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise SettingsError(f"{name}={raw!r} must be at least {minimum}")
    return value
