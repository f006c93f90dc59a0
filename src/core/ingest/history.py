"""CloudTrail Event history (LookupEvents): the last 90 days of management events of one account and Region,
with or without a trail, read within the API's limit.

LookupEvents allows 2 requests a second per account and Region: each account-Region gets its own
TokenBucket, so account-Regions run in parallel and each stays within its limit. Throttling (and the
faults store.is_transient names) are retried with exponential backoff and jitter; anything else (access
denied, a Region not enabled) is raised for the caller to list.

Each event's CloudTrailEvent is the CloudTrail record, as a trail file holds it: the caller passes it to
core.ingest.records, the path every record takes.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from core.ingest.store import is_transient

REQUESTS_PER_SECOND = 2.0
"""LookupEvents' limit per account and Region (CloudTrail quotas)."""
RETENTION_DAYS = 90
"""How far back Event history goes."""
PAGE_SIZE = 50
"""LookupEvents' largest MaxResults."""
MAX_ATTEMPTS = 8
"""Attempts of one page before the account-Region is given up (and listed as skipped)."""
THROTTLING_CODES = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException",
                              "RequestLimitExceeded"})
CLIENT_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=30)
"""Retries are this module's (each attempt takes a token from the bucket), not botocore's."""


class TokenBucket:
    """At most `rate` requests a second on average, `burst` at once; thread-safe. take() waits its turn."""

    def __init__(self, rate: float = REQUESTS_PER_SECOND, burst: float = 1.0, *,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"a token bucket needs a positive rate and a burst of at least 1 (got {rate}, {burst})")
        self.rate, self.burst = rate, burst
        self._clock, self._sleep = clock, sleep
        self._tokens, self._at = burst, clock()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Wait for a token; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            self._tokens -= 1
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait


def backoff(attempt: int, base: float = 0.5, cap: float = 20.0) -> float:
    """Exponential backoff with full jitter (AWS Architecture Blog, 'Exponential Backoff and Jitter')."""
    return random.uniform(base, min(cap, base * 2 ** (attempt + 1)))


def error_code(error: BaseException) -> str:
    return str(error.response.get("Error", {}).get("Code", "")) if isinstance(error, ClientError) else ""


def is_retryable(error: BaseException) -> bool:
    return error_code(error) in THROTTLING_CODES or (isinstance(error, Exception) and is_transient(error))


@dataclass
class Lookup:
    """One account-Region's Event history: its client, its token bucket, what reading it cost."""

    client: Any
    bucket: TokenBucket
    sleep: Callable[[float], None] = time.sleep
    on_retry: Callable[[str, int, float], None] | None = None
    """Told (error code, attempt, pause) before each retry: progress on stderr."""
    requests: int = 0
    retries: int = 0
    unreadable: list[str] = field(default_factory=list)
    """Events whose CloudTrailEvent is not a JSON object: named, never dropped silently."""

    def records(self, event_source: str, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        """The CloudTrail records of `event_source` between start and end, newest first, page by page."""
        token: str | None = None
        while True:
            request: dict[str, Any] = {
                "LookupAttributes": [{"AttributeKey": "EventSource", "AttributeValue": event_source}],
                "StartTime": start, "EndTime": end, "MaxResults": PAGE_SIZE}
            if token:
                request["NextToken"] = token
            page = self._page(request)
            for event in page.get("Events", []):
                record = _record(event)
                if record is None:
                    self.unreadable.append(f"event {event.get('EventId')}: CloudTrailEvent is not a JSON object")
                    continue
                yield record
            token = page.get("NextToken")
            if not token:
                return

    def _page(self, request: dict[str, Any]) -> dict[str, Any]:
        for attempt in range(MAX_ATTEMPTS):
            self.bucket.take()
            self.requests += 1
            try:
                page: dict[str, Any] = self.client.lookup_events(**request)
                return page
            except (ClientError, BotoCoreError) as exc:
                if not is_retryable(exc) or attempt == MAX_ATTEMPTS - 1:
                    raise
                pause = backoff(attempt)
                self.retries += 1
                if self.on_retry is not None:
                    self.on_retry(error_code(exc) or type(exc).__name__, attempt + 1, pause)
                self.sleep(pause)
        raise AssertionError("unreachable: the last attempt returns or raises")


def _record(event: dict[str, Any]) -> dict[str, Any] | None:
    text = event.get("CloudTrailEvent")
    if not isinstance(text, str):
        return None
    try:
        record = json.loads(text, parse_float=Decimal)  # as core.ingest.trailfile reads a trail file
    except ValueError:
        return None
    return record if isinstance(record, dict) else None
