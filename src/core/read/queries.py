"""The audit questions, answered with Query only (never Scan); see docs/table-design.md.

Every answer is a lazy iterator of normalized events in time order, each event once, restored with
`items.restore` (the stored document decoded, numbers as Decimal; resource links resolved to their
events). Several partitions (a stack and its
layers, instances...; every account) are merged by time, so a caller can stop early with a limit.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

from core.event import Event
from core.ingest.items import PARENT_TYPES, is_event_item, linked_event, restore
from core.ingest.store import EventStore
from core.keys import (
    ACCOUNTS_PK,
    BY_ACCOUNT,
    BY_ACTOR,
    CHILD_PREFIX,
    EVENT_SK,
    FAILED,
    PK,
    SK,
    WRITES,
    Index,
    actor_partition,
    event_pk,
    key_part,
    principal_key,
    resource_pk,
    time_sk,
)
from core.read.actors import matches

Resource = tuple[str, str]

LINKS_PER_FETCH = 100
"""Resource links read before the events they point to are fetched (BatchGetItem's limit)."""
_LOWEST = "0"
_HIGHEST = "9999-12-31T23:59:59Z"
_AFTER = "#\uffff"
"""Appended to `until`: a time_sk is `<time>#<event_id>`, so every event at `until` itself is included."""
_NAMING_CALLS = frozenset({"CreateStack", "CloneStack", "UpdateStack"})
_RELATIVE = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class BadTime(ValueError):
    """A --since / --until value that is neither ISO 8601 nor relative (7d, 12h, 30m, 2w)."""


class BadToken(ValueError):
    """A resume token that is not one `resume_token` made (or was made for the other order)."""


class UnknownName(LookupError):
    """No stack or server has this name or id in the table; `known` lists what the table has."""

    def __init__(self, kind: str, text: str, known: list[str]) -> None:
        seen = f"; {kind}s seen: {', '.join(known[:8])}{' ...' if len(known) > 8 else ''}" if known else ""
        super().__init__(f"no {kind} named or with id {text!r} in the table{seen}")
        self.known = known


def time_key(event: Event) -> str:
    """The event's place in every time-ordered partition: its `time_sk`, as stored (a long id hashed)."""
    return time_sk(event["event_time"], event["event_id"])


def resume_token(event: Event, newest_first: bool) -> str:
    """An opaque token to continue after `event` in the same order (`query --resume`)."""
    text = f"{'desc' if newest_first else 'asc'}|{time_key(event)}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def parse_resume_token(token: str, newest_first: bool) -> str:
    """The time key a token continues after; BadToken when it is not a token, or is of the other order."""
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadToken(f"--resume {token!r} is not a token this command printed") from None
    order, sep, key = text.partition("|")
    if not sep or order not in ("asc", "desc") or "#" not in key:
        raise BadToken(f"--resume {token!r} is not a token this command printed")
    if (order == "desc") != newest_first:
        raise BadToken(f"--resume: the token continues --order {order}; pass the same --order")
    return key


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
    newest_first: bool = False
    resume_after: str | None = None
    """A time key (`time_key`) the answer continues after, in its order: from `parse_resume_token`."""


class EventQueries:
    """Read side of the events table, through store.EventStore.query (the one module calling DynamoDB)."""

    def __init__(self, client: Any, table_name: str, *, store: EventStore | None = None) -> None:
        self.store = store or EventStore(client, table_name)

    # -- single access patterns ------------------------------------------------------------------------

    def by_id(self, event_id: str) -> Event | None:
        items = self.store.query(KeyConditionExpression="pk = :p AND sk = :s",
                                 ExpressionAttributeValues={":p": {"S": event_pk(event_id)},
                                                            ":s": {"S": EVENT_SK}})
        return next(self._events(items), None)

    def for_resource(self, rtype: str, rid: str, since: str | None = None, until: str | None = None, *,
                     newest_first: bool = False) -> Iterator[Event]:
        """Events naming this resource (its link items)."""
        return self._events(self._range(None, resource_pk(rtype, rid), since, until, newest_first))

    def for_stack(self, stack_id: str, since: str | None = None, until: str | None = None, *,
                  newest_first: bool = False) -> Iterator[Event]:
        """Events naming the stack or anything it owns (layers, instances, apps, deployments...)."""
        return self._for_parent("stack", stack_id, since, until, newest_first)

    def for_server(self, name: str, since: str | None = None, until: str | None = None, *,
                   newest_first: bool = False) -> Iterator[Event]:
        """Events naming the OpsWorks CM server or one of its backups (node calls always name the server)."""
        return self._for_parent("server", name, since, until, newest_first)

    def by_actor(self, arn: str, since: str | None = None, until: str | None = None, *,
                 newest_first: bool = False) -> Iterator[Event]:
        """A role ARN (any path) gives every session of the role; an assumed-role session ARN only that
        session; a user, root, federated-user ARN or a service name (opsworks.amazonaws.com) itself."""
        items = self._events(self._range(BY_ACTOR, key_part(principal_key(arn)), since, until,
                                         newest_first))
        if ":assumed-role/" in arn:
            return (e for e in items if e.get("actor", {}).get("arn") == arn)
        return items

    def by_account(self, account: str, since: str | None = None, until: str | None = None, *,
                   newest_first: bool = False) -> Iterator[Event]:
        return self._events(self._range(BY_ACCOUNT, key_part(account), since, until, newest_first))

    def failed(self, account: str | None = None, since: str | None = None,
               until: str | None = None, *, newest_first: bool = False) -> Iterator[Event]:
        """Failed calls (errorCode or errorMessage) of one account, or of every account seen."""
        return self._per_account(FAILED, account, since, until, newest_first)

    def writes(self, account: str | None = None, since: str | None = None,
               until: str | None = None, *, newest_first: bool = False) -> Iterator[Event]:
        """Mutating calls (readOnly false) of one account, or of every account seen."""
        return self._per_account(WRITES, account, since, until, newest_first)

    def all_events(self, since: str | None = None, until: str | None = None, *,
                   newest_first: bool = False) -> Iterator[Event]:
        """Every event: by_account over each account in the registry."""
        return _merge([self.by_account(a, since, until, newest_first=newest_first) for a in self.accounts()],
                      newest_first)

    # -- names -----------------------------------------------------------------------------------------

    def stack_names(self) -> dict[str, str]:
        """Stack id -> name, from the calls that name a stack (CreateStack, CloneStack, UpdateStack) on the
        writes index: the table keeps ids, people remember names."""
        names: dict[str, str] = {}
        for event in self.writes():
            if event.get("event_name") not in _NAMING_CALLS:
                continue
            request = event.get("request_parameters") or {}
            response = event.get("response_elements") or {}
            stack_id = (response.get("stackId") if isinstance(response, dict) else None) or request.get("stackId")
            if isinstance(request, dict) and stack_id and request.get("name"):
                names[str(stack_id)] = str(request["name"])
        return names

    def stack_ids(self, text: str) -> list[str]:
        """The stack with this id, else every stack that has (or had) this name (one per account or
        Region that reuses it). UnknownName when neither."""
        if self._has_events("stack", text):
            return [text]
        names = self.stack_names()
        found = sorted(i for i, name in names.items() if name == text) or \
            sorted(i for i, name in names.items() if name.casefold() == text.casefold())
        if not found:
            raise UnknownName("stack", text, sorted(f"{name} ({i})" for i, name in names.items()))
        return found

    def server_name(self, text: str) -> str:
        """An OpsWorks CM server by name or ARN (arn:...:server/NAME/ID). UnknownName when absent."""
        name = text.split(":server/", 1)[1].split("/")[0] if ":server/" in text else text
        if self._has_events("server", name):
            return name
        known = sorted({str(e.get("request_parameters", {}).get("serverName")) for e in self.writes()
                        if e.get("event_name") == "CreateServer" and e.get("request_parameters")})
        raise UnknownName("server", text, known)

    def _has_events(self, kind: str, rid: str) -> bool:
        items = self.store.query(KeyConditionExpression="pk = :p AND sk BETWEEN :lo AND :hi",
                                 ExpressionAttributeValues={":p": {"S": resource_pk(kind, rid)},
                                                            ":lo": {"S": _LOWEST}, ":hi": {"S": _HIGHEST}},
                                 Limit=1)
        return next(iter(items), None) is not None

    def accounts(self) -> list[str]:
        """The accounts seen at ingest (the registry item written with every event)."""
        items = self.store.query(KeyConditionExpression="pk = :p",
                                 ExpressionAttributeValues={":p": {"S": ACCOUNTS_PK}})
        return [str(item["sk"]) for item in items]

    def children(self, ptype: str, pid: str) -> list[Resource]:
        """What a stack or server owns, as learnt from events naming both (CreateLayer, CreateInstance...)."""
        items = self.store.query(KeyConditionExpression="pk = :p AND begins_with(sk, :c)",
                                 ExpressionAttributeValues={":p": {"S": resource_pk(ptype, pid)},
                                                            ":c": {"S": CHILD_PREFIX}})
        return [(str(item["child_type"]), str(item["child_id"])) for item in items]

    # -- combined --------------------------------------------------------------------------------------

    def search(self, f: EventFilter, limit: int | None = None) -> Iterator[Event]:
        """One Query family picked by the most selective condition; the others filter in memory. Stack
        and server names are resolved here (UnknownName when the table has neither name nor id); an
        --actor that is not an ARN or a service is a person's name or e-mail, matched in memory."""
        since, until, newest = f.since, f.until, f.newest_first
        if f.resume_after:
            if newest:
                until = min(until, f.resume_after) if until else f.resume_after
            else:
                since = max(since, f.resume_after) if since else f.resume_after
        checks: list[Callable[[Event], bool]] = []
        source: Iterator[Event]
        actor_arn = f.actor if f.actor and _is_principal(f.actor) else None
        server = self.server_name(f.server) if f.server else None
        if f.stack:
            source = _merge([self.for_stack(i, since, until, newest_first=newest) for i in self.stack_ids(f.stack)],
                            newest)
        elif server:
            source = self.for_server(server, since, until, newest_first=newest)
        elif f.resource:
            source = self.for_resource(*f.resource, since, until, newest_first=newest)
        elif actor_arn:
            source = self.by_actor(actor_arn, since, until, newest_first=newest)
        elif f.failed:
            source = self.failed(f.account, since, until, newest_first=newest)
        elif f.writes:
            source = self.writes(f.account, since, until, newest_first=newest)
        elif f.account:
            source = self.by_account(f.account, since, until, newest_first=newest)
        else:
            source = self.all_events(since, until, newest_first=newest)
        if server and f.stack:
            checks.append(_names_any(self._scope("server", server)))
        if f.resource and (f.stack or f.server):
            checks.append(_names_any({(f.resource[0], key_part(f.resource[1]))}))
        if actor_arn and (f.stack or f.server or f.resource):
            checks.append(_actor_is(actor_arn))
        if f.actor and not actor_arn:
            person = f.actor
            checks.append(lambda e: matches(e.get("actor", {}), person))
        if f.account:
            checks.append(lambda e: e.get("account_id") == f.account)
        if f.failed:
            checks.append(lambda e: e.get("outcome") == "failure")
        if f.writes:
            checks.append(lambda e: e.get("read_only") is False)
        if f.resume_after:
            after = f.resume_after
            checks.append((lambda e: time_key(e) < after) if newest else (lambda e: time_key(e) > after))
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

    def _for_parent(self, ptype: str, pid: str, since: str | None, until: str | None,
                    newest_first: bool = False) -> Iterator[Event]:
        return _merge([self.for_resource(rtype, rid, since, until, newest_first=newest_first)
                       for rtype, rid in sorted(self._scope(ptype, pid))], newest_first)

    def _scope(self, ptype: str, pid: str) -> set[Resource]:
        return {(ptype, key_part(pid)), *(r for r in self.children(ptype, pid) if r[0] in PARENT_TYPES[ptype])}

    def _per_account(self, index: Index, account: str | None, since: str | None,
                     until: str | None, newest_first: bool = False) -> Iterator[Event]:
        accounts = [account] if account else self.accounts()
        return _merge([self._events(self._range(index, key_part(a), since, until, newest_first))
                       for a in accounts], newest_first)

    def _range(self, index: Index | None, value: str, since: str | None, until: str | None,
               newest_first: bool = False) -> Iterator[dict[str, Any]]:
        """One partition of an index (None: the table's own pk and sk) between two times; the bounds also
        keep out non-event items (CHILD#..., FILE)."""
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "#k = :k AND #s BETWEEN :lo AND :hi",
            "ExpressionAttributeNames": {"#k": index.key if index else PK, "#s": index.sort_key if index else SK},
            "ExpressionAttributeValues": {":k": {"S": value}, ":lo": {"S": since or _LOWEST},
                                          ":hi": {"S": (until or _HIGHEST) + _AFTER}},
        }
        if index:
            kwargs["IndexName"] = index.name
        if newest_first:
            kwargs["ScanIndexForward"] = False
        return self.store.query(**kwargs)




def _merge(sources: list[Iterator[Event]], newest_first: bool = False) -> Iterator[Event]:
    """Time-ordered sources -> one time-ordered stream (newest first if asked), each event once."""
    seen: set[str] = set()
    for event in heapq.merge(*sources, key=time_key, reverse=newest_first):
        if event["event_id"] not in seen:
            seen.add(event["event_id"])
            yield event


def _is_principal(text: str) -> bool:
    """An ARN or a service principal, which the by_actor index answers; else a person's name or e-mail."""
    return text.startswith("arn:") or text.endswith(".amazonaws.com")


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
