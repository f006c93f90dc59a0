"""A DynamoDB client that counts what reaches the table, per partition key (tests, bench/backfill_digests.py).

It wraps a real client (moto's, DynamoDB Local's) and records, for every write call, the partition key of
each item it wrote or tried to write: `attempts` counts every write sent (a write whose condition fails
still costs a write unit on its partition), `stored` only those that changed the table.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

_WRITES = ("put_item", "update_item", "delete_item")


class RecordingClient:
    """Passes every call through to `client`; counts writes per pk and calls per operation."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.attempts: Counter[str] = Counter()
        self.stored: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()

    def reset(self) -> None:
        self.attempts.clear()
        self.stored.clear()
        self.calls.clear()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)
        if name in _WRITES:
            return lambda **kwargs: self._write(method, name, **kwargs)
        if name == "batch_write_item":
            return lambda **kwargs: self._batch_write(method, **kwargs)
        if callable(method) and not name.startswith(("get_paginator", "meta", "exceptions")):
            def counted(*args: Any, **kwargs: Any) -> Any:
                self.calls[name] += 1
                return method(*args, **kwargs)
            return counted
        return method

    def _write(self, method: Any, name: str, **kwargs: Any) -> Any:
        self.calls[name] += 1
        item = kwargs.get("Item") or kwargs.get("Key") or {}
        pk = str(item.get("pk", {}).get("S", ""))
        self.attempts[pk] += 1
        response = method(**kwargs)  # a failed condition raises: attempted, not stored
        self.stored[pk] += 1
        return response

    def _batch_write(self, method: Any, **kwargs: Any) -> Any:
        self.calls["batch_write_item"] += 1
        response = method(**kwargs)
        unprocessed = {str(r["PutRequest"]["Item"]["pk"]["S"]) for table in
                       response.get("UnprocessedItems", {}).values() for r in table if "PutRequest" in r}
        for table in kwargs["RequestItems"].values():
            for request in table:
                pk = str(request.get("PutRequest", {}).get("Item", {}).get("pk", {}).get("S", ""))
                self.attempts[pk] += 1
                if pk not in unprocessed:
                    self.stored[pk] += 1
        return response

    def get_paginator(self, name: str) -> Any:
        self.calls[f"paginate:{name}"] += 1
        return self.client.get_paginator(name)
