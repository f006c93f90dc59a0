"""The audit questions, answered with Query only (never Scan); see docs/table-design.md.

Every answer is a lazy iterator of normalized events in time order, each event once, restored with
`store.restore` (the stored document decoded, numbers as Decimal; resource links resolved to their
events). Several partitions (a stack and its
layers, instances...; every account) are merged by time, so a caller can stop early with a limit.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

from core.store import (
    ACCOUNTS_PK,
    PARENT_TYPES,
    EventStore,
    actor_partition,
    is_event_item,
    key_part,
    linked_event,
    principal_key,
    resource_pk,
    restore,
)

Event = dict[str, Any]
Resource = tuple[str, str]

LINKS_PER_FETCH = 100
"""Resource links read before the events they point to are fetched (BatchGetItem's limit)."""
_LOWEST = "0"
_HIGHEST = "9999-12-31T23:59:59Z"
_AFTER = "#\uffff"
"""Appended to `until`: a time_sk is `<time>#<event_id>`, so every event at `until` itself is included."""
_RELATIVE = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class BadTime(ValueError):
    """A --since / --until value that is neither ISO 8601 nor relative (7d, 12h, 30m, 2w)."""


def parse_when(text: str, now: datetime | None = None) -> str:
    """ISO 8601 (a date means its midnight UTC; no zone means UTC) or `7d` / `12h` / `30m` / `2w` ago,
    as the `YYYY-MM-DDTHH:MM:SSZ` form the table's sort keys use."""
    match = _RELATIVE.match(text)
    if match:
        moment = (now or datetime.now(UTC)) - timedelta(**{_UNITS[match[2]]: int(match[1])})
    else:
        try:
            moment = datetime.fromisoformat(text.strip().replace("z", "Z"))
        except ValueError:
            raise BadTime(f"{text!r} is neither ISO 8601 nor relative like 7d, 12h, 30m, 2w") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class EventFilter:
    """Combinable conditions; the most selective one picks the Query, the rest filter its results."""

    stack: str | None = None
    server: str | None = None
    resource: Resource | None = None
    actor: str | None = None
    account: str | None = None
    since: str | None = None
    until: str | None = None
    failed: bool = False
    writes: bool = False


class EventQueries:
    """Read side of the events table, through store.EventStore.query (the one module calling DynamoDB)."""

    def __init__(self, client: Any, table_name: str, *, store: EventStore | None = None) -> None:
        self.store = store or EventStore(client, table_name)

    # -- single access patterns ------------------------------------------------------------------------

    def by_id(self, event_id: str) -> Event | None:
        items = self.store.query(KeyConditionExpression="pk = :p AND sk = :s",
                                 ExpressionAttributeValues={":p": {"S": f"EVENT#{key_part(event_id)}"},
                                                            ":s": {"S": "EVENT"}})
        return next(self._events(items), None)

    def for_resource(self, rtype: str, rid: str, since: str | None = None, until: str | None = None) -> Iterator[Event]:
        """Events naming this resource (its link items)."""
        return self._events(self._range(None, "pk", resource_pk(rtype, rid), "sk", since, until))

    def for_stack(self, stack_id: str, since: str | None = None, until: str | None = None) -> Iterator[Event]:
        """Events naming the stack or anything it owns (layers, instances, apps, deployments...)."""
        return self._for_parent("stack", stack_id, since, until)

    def for_server(self, name: str, since: str | None = None, until: str | None = None) -> Iterator[Event]:
        """Events naming the OpsWorks CM server or one of its backups (node calls always name the server)."""
        return self._for_parent("server", name, since, until)

    def by_actor(self, arn: str, since: str | None = None, until: str | None = None) -> Iterator[Event]:
        """A role ARN (any path) gives every session of the role; an assumed-role session ARN only that
        session; a user, root, federated-user ARN or a service name (opsworks.amazonaws.com) itself."""
        items = self._events(self._range("by_actor", "actor_pk", key_part(principal_key(arn)), "time_sk",
                                         since, until))
        if ":assumed-role/" in arn:
            return (e for e in items if e.get("actor", {}).get("arn") == arn)
        return items

    def by_account(self, account: str, since: str | None = None, until: str | None = None) -> Iterator[Event]:
        return self._events(self._range("by_account", "account_pk", key_part(account), "time_sk", since, until))

    def failed(self, account: str | None = None, since: str | None = None,
               until: str | None = None) -> Iterator[Event]:
        """Failed calls (errorCode or errorMessage) of one account, or of every account seen."""
        return self._per_account("failed", "failed_pk", account, since, until)

    def writes(self, account: str | None = None, since: str | None = None,
               until: str | None = None) -> Iterator[Event]:
        """Mutating calls (readOnly false) of one account, or of every account seen."""
        return self._per_account("writes", "write_pk", account, since, until)

    def all_events(self, since: str | None = None, until: str | None = None) -> Iterator[Event]:
        """Every event: by_account over each account in the registry."""
        return _merge([self.by_account(a, since, until) for a in self.accounts()])

    def accounts(self) -> list[str]:
        """The accounts seen at ingest (the registry item written with every event)."""
        items = self.store.query(KeyConditionExpression="pk = :p",
                                 ExpressionAttributeValues={":p": {"S": ACCOUNTS_PK}})
        return [str(item["sk"]) for item in items]

    def children(self, ptype: str, pid: str) -> list[Resource]:
        """What a stack or server owns, as learnt from events naming both (CreateLayer, CreateInstance...)."""
        items = self.store.query(KeyConditionExpression="pk = :p AND begins_with(sk, :c)",
                                 ExpressionAttributeValues={":p": {"S": resource_pk(ptype, pid)},
                                                            ":c": {"S": "CHILD#"}})
        return [(str(item["child_type"]), str(item["child_id"])) for item in items]

    # -- combined --------------------------------------------------------------------------------------

    def search(self, f: EventFilter, limit: int | None = None) -> Iterator[Event]:
        """One Query family picked by the most selective condition; the others filter in memory."""
        since, until = f.since, f.until
        checks: list[Callable[[Event], bool]] = []
        source: Iterator[Event]
        if f.stack:
            source = self.for_stack(f.stack, since, until)
        elif f.server:
            source = self.for_server(f.server, since, until)
        elif f.resource:
            source = self.for_resource(*f.resource, since, until)
        elif f.actor:
            source = self.by_actor(f.actor, since, until)
        elif f.failed:
            source = self.failed(f.account, since, until)
        elif f.writes:
            source = self.writes(f.account, since, until)
        elif f.account:
            source = self.by_account(f.account, since, until)
        else:
            source = self.all_events(since, until)
        if f.server and f.stack:
            checks.append(_names_any(self._scope("server", f.server)))
        if f.resource and (f.stack or f.server):
            checks.append(_names_any({(f.resource[0], key_part(f.resource[1]))}))
        if f.actor and (f.stack or f.server or f.resource):
            checks.append(_actor_is(f.actor))
        if f.account:
            checks.append(lambda e: e.get("account_id") == f.account)
        if f.failed:
            checks.append(lambda e: e.get("outcome") == "failure")
        if f.writes:
            checks.append(lambda e: e.get("read_only") is False)
        found = (e for e in source if all(check(e) for check in checks))
        return islice(found, limit) if limit is not None else found

    # -- helpers ---------------------------------------------------------------------------------------

    def _events(self, items: Iterable[dict[str, Any]]) -> Iterator[Event]:
        """Stored items -> events, in their order: a resource link is resolved to the event it points to
        (BatchGetItem, a page of links at a time); anything else (a failed-file state) is dropped."""
        for page in _pages(items, LINKS_PER_FETCH):
            pointers = [linked_event(item) for item in page]
            wanted = [pk for pk in pointers if pk]
            found = self.store.get_events(wanted) if wanted else {}
            for item, pointer in zip(page, pointers, strict=True):
                event_item = found.get(pointer) if pointer else item
                if event_item is not None and is_event_item(event_item):
                    yield restore(event_item)

    def _for_parent(self, ptype: str, pid: str, since: str | None, until: str | None) -> Iterator[Event]:
        return _merge([self.for_resource(rtype, rid, since, until) for rtype, rid in sorted(self._scope(ptype, pid))])

    def _scope(self, ptype: str, pid: str) -> set[Resource]:
        return {(ptype, key_part(pid)), *(r for r in self.children(ptype, pid) if r[0] in PARENT_TYPES[ptype])}

    def _per_account(self, index: str, key: str, account: str | None, since: str | None,
                     until: str | None) -> Iterator[Event]:
        accounts = [account] if account else self.accounts()
        return _merge([self._events(self._range(index, key, key_part(a), "time_sk", since, until))
                       for a in accounts])

    def _range(self, index: str | None, key: str, value: str, sort_key: str, since: str | None,
               until: str | None) -> Iterator[dict[str, Any]]:
        """One partition between two times; the bounds also keep out non-event items (CHILD#..., FILE)."""
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "#k = :k AND #s BETWEEN :lo AND :hi",
            "ExpressionAttributeNames": {"#k": key, "#s": sort_key},
            "ExpressionAttributeValues": {":k": {"S": value}, ":lo": {"S": since or _LOWEST},
                                          ":hi": {"S": (until or _HIGHEST) + _AFTER}},
        }
        if index:
            kwargs["IndexName"] = index
        return self.store.query(**kwargs)




def _merge(sources: list[Iterator[Event]]) -> Iterator[Event]:
    """Time-ordered sources -> one time-ordered stream, each event once."""
    seen: set[str] = set()
    for event in heapq.merge(*sources, key=lambda e: (e["event_time"], e["event_id"])):
        if event["event_id"] not in seen:
            seen.add(event["event_id"])
            yield event


def _names_any(scope: set[Resource]) -> Callable[[Event], bool]:
    """Scopes hold ids as keys hold them (key_part), as children() reads them back."""
    return lambda e: any((r["type"], key_part(r["id"])) in scope for r in e.get("resources", []))


def _pages(items: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    page: list[dict[str, Any]] = []
    for item in items:
        page.append(item)
        if len(page) == size:
            yield page
            page = []
    if page:
        yield page


def _actor_is(arn: str) -> Callable[[Event], bool]:
    key = principal_key(arn)

    def check(event: Event) -> bool:
        actor = event.get("actor", {})
        if actor_partition(actor) != key:
            return False
        return ":assumed-role/" not in arn or actor.get("arn") == arn

    return check
