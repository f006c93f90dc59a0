"""An in-memory DynamoDB table speaking the subset of the API the store uses, for a bench of thousands of
files (bench/backfill_digests.py), where moto's ~40 ms a call would take an hour. Items are kept in the
wire format (`{"S": ...}`), so what comes back is what boto3's client returns.

Supported: PutItem, UpdateItem (SET with `list_append` / `if_not_exists` and map paths, REMOVE, ADD, DELETE
of set members), conditions built of attribute_exists / attribute_not_exists / contains / = / <> with
AND, OR and parentheses, GetItem, BatchGetItem, BatchWriteItem, Query on the table (pk =, with
BETWEEN or begins_with on sk). tests/test_proof_order.py holds it to moto on the same backfill.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

Wire = dict[str, Any]
_TOKEN = re.compile(r"\s*(attribute_not_exists|attribute_exists|contains|if_not_exists|list_append|AND|OR|<>|=|"
                    r"\(|\)|,|[#:]?[A-Za-z_][\w]*(?:\.[#:]?[A-Za-z_][\w]*)*)")


def _failed(item: Wire | None, wanted: bool) -> ClientError:
    error: dict[str, Any] = {"Error": {"Code": "ConditionalCheckFailedException", "Message": "condition failed"}}
    if wanted and item is not None:
        error["Item"] = copy.deepcopy(item)
    return ClientError(error, "ConditionalWrite")  # type: ignore[arg-type]


class FakeTable:
    """One table's items by (pk, sk); the client of every table name given."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], Wire] = {}
        self.partitions: dict[str, set[str]] = {}
        """The sort keys of each partition key: what a Query reads without going through every item."""

    def _store(self, key: tuple[str, str], item: Wire) -> None:
        self.items[key] = item
        self.partitions.setdefault(key[0], set()).add(key[1])

    # -- the calls -------------------------------------------------------------------------------------

    def put_item(self, *, TableName: str, Item: Wire, ConditionExpression: str | None = None,
                 ReturnValuesOnConditionCheckFailure: str = "NONE", **kwargs: Any) -> dict[str, Any]:
        key = _key(Item)
        old = self.items.get(key)
        self._check(old, ConditionExpression, kwargs, ReturnValuesOnConditionCheckFailure)
        self._store(key, copy.deepcopy(Item))
        return {}

    def update_item(self, *, TableName: str, Key: Wire, UpdateExpression: str,
                    ConditionExpression: str | None = None, ReturnValues: str = "NONE",
                    ReturnValuesOnConditionCheckFailure: str = "NONE", **kwargs: Any) -> dict[str, Any]:
        key = _key(Key)
        old = self.items.get(key)
        self._check(old, ConditionExpression, kwargs, ReturnValuesOnConditionCheckFailure)
        item = copy.deepcopy(old) if old is not None else copy.deepcopy(Key)
        _Update(kwargs.get("ExpressionAttributeNames", {}), kwargs.get("ExpressionAttributeValues", {})).apply(
            item, UpdateExpression)
        self._store(key, item)
        return {"Attributes": copy.deepcopy(old)} if ReturnValues == "ALL_OLD" and old else {}

    def get_item(self, *, TableName: str, Key: Wire, **_: Any) -> dict[str, Any]:
        item = self.items.get(_key(Key))
        return {"Item": copy.deepcopy(item)} if item else {}

    def batch_get_item(self, *, RequestItems: dict[str, Any]) -> dict[str, Any]:
        return {"Responses": {name: [copy.deepcopy(self.items[_key(k)]) for k in request["Keys"]
                                     if _key(k) in self.items] for name, request in RequestItems.items()},
                "UnprocessedKeys": {}}

    def batch_write_item(self, *, RequestItems: dict[str, Any]) -> dict[str, Any]:
        for requests in RequestItems.values():
            for request in requests:
                item = request["PutRequest"]["Item"]
                self._store(_key(item), copy.deepcopy(item))
        return {"UnprocessedItems": {}}

    def get_paginator(self, name: str) -> _QueryPaginator:
        assert name == "query", f"the fake table pages only Query, not {name}"
        return _QueryPaginator(self)

    # -- conditions ------------------------------------------------------------------------------------

    def _check(self, old: Wire | None, condition: str | None, kwargs: dict[str, Any], returns: str) -> None:
        if condition and not _Condition(kwargs.get("ExpressionAttributeNames", {}),
                                        kwargs.get("ExpressionAttributeValues", {}), old or {}).holds(condition):
            raise _failed(old, returns == "ALL_OLD")


class _QueryPaginator:
    def __init__(self, table: FakeTable) -> None:
        self.table = table

    def paginate(self, *, TableName: str, KeyConditionExpression: str,
                 ExpressionAttributeValues: Wire, **_: Any) -> Iterator[dict[str, Any]]:
        pk = ExpressionAttributeValues[":p"]["S"]
        values = {name: value["S"] for name, value in ExpressionAttributeValues.items()}
        found = []
        for sk in sorted(self.table.partitions.get(pk, ())):
            item = self.table.items[(pk, sk)]
            if "BETWEEN" in KeyConditionExpression and not values[":lo"] <= sk <= values[":hi"]:
                continue
            if "begins_with" in KeyConditionExpression:
                prefix = values[re.findall(r"begins_with\(sk, (:\w+)\)", KeyConditionExpression)[0]]
                if not sk.startswith(prefix):
                    continue
            found.append(copy.deepcopy(item))
        yield {"Items": found}


def _key(item: Wire) -> tuple[str, str]:
    return item["pk"]["S"], item["sk"]["S"]


class _Expression:
    def __init__(self, names: dict[str, str], values: Wire) -> None:
        self.names, self.values = names, values

    def path(self, token: str) -> list[str]:
        return [self.names.get(part, part) for part in token.split(".")]

    @staticmethod
    def lookup(item: Wire, path: list[str]) -> Wire | None:
        value: Wire | None = item.get(path[0])
        for part in path[1:]:
            value = value.get("M", {}).get(part) if value else None
        return value


class _Condition(_Expression):
    """attribute_exists / attribute_not_exists / contains / = / <>, AND, OR, parentheses."""

    def __init__(self, names: dict[str, str], values: Wire, item: Wire) -> None:
        super().__init__(names, values)
        self.item = item

    def holds(self, text: str) -> bool:
        self.tokens = _TOKEN.findall(text)
        self.at = 0
        result = self._or()
        assert self.at == len(self.tokens), f"the fake table cannot read the condition {text!r}"
        return result

    def _next(self) -> str:
        token = self.tokens[self.at]
        self.at += 1
        return str(token)

    def _peek(self) -> str | None:
        return str(self.tokens[self.at]) if self.at < len(self.tokens) else None

    def _or(self) -> bool:
        result = self._and()
        while self._peek() == "OR":
            self._next()
            result = self._and() or result
        return result

    def _and(self) -> bool:
        result = self._term()
        while self._peek() == "AND":
            self._next()
            result = self._term() and result
        return result

    def _term(self) -> bool:
        token = self._next()
        if token == "(":
            result = self._or()
            assert self._next() == ")"
            return result
        if token in ("attribute_exists", "attribute_not_exists", "contains"):
            assert self._next() == "("
            value = self.lookup(self.item, self.path(self._next()))
            member = None
            if token == "contains":
                assert self._next() == ","
                member = self.values[self._next()]
            assert self._next() == ")"
            if token == "contains":
                return value is not None and _contains(value, member or {})
            return (value is not None) == (token == "attribute_exists")
        value = self.lookup(self.item, self.path(token))
        operator, other = self._next(), self.values[self._next()]
        if operator == "=":
            return value is not None and value == other
        return value is None or value != other


def _contains(value: Wire, member: Wire) -> bool:
    for kind in ("NS", "SS"):
        if kind in value:
            return next(iter(member.values())) in value[kind]
    if "L" in value:
        return member in value["L"]
    return "S" in value and member.get("S", "\0") in value["S"]


class _Update(_Expression):
    """SET (with list_append, if_not_exists, map paths), REMOVE, ADD, DELETE."""

    def apply(self, item: Wire, text: str) -> None:
        for clause, body in re.findall(r"(SET|REMOVE|ADD|DELETE)\s+(.*?)(?=\s+(?:SET|REMOVE|ADD|DELETE)\s|$)", text):
            for part in _split(body):
                getattr(self, f"_{clause.lower()}")(item, part.strip())

    def _set(self, item: Wire, part: str) -> None:
        target, _, source = (s.strip() for s in part.partition("="))
        self._put(item, self.path(target), self._value(item, source))

    def _value(self, item: Wire, source: str) -> Wire:
        if source.startswith("list_append("):
            first, second = _split(source[len("list_append("):-1])
            return {"L": self._value(item, first.strip())["L"] + self._value(item, second.strip())["L"]}
        if source.startswith("if_not_exists("):
            path, fallback = _split(source[len("if_not_exists("):-1])
            found = self.lookup(item, self.path(path.strip()))
            return found if found is not None else self.values[fallback.strip()]
        return copy.deepcopy(self.values[source])

    def _put(self, item: Wire, path: list[str], value: Wire) -> None:
        holder = item
        for part in path[:-1]:
            holder = holder[part]["M"]
        holder[path[-1]] = value

    def _remove(self, item: Wire, part: str) -> None:
        item.pop(self.path(part)[0], None)

    def _add(self, item: Wire, part: str) -> None:
        """ADD to a number, or to a set (SS, NS, BS: the union, in DynamoDB's unordered way)."""
        name, value = part.split()
        attribute = self.path(name)[0]
        added = self.values[value]
        kind = next(iter(added))
        if kind == "N":
            total = int(item.get(attribute, {"N": "0"})["N"]) + int(added["N"])
            item[attribute] = {"N": str(total)}
            return
        current = item.get(attribute, {kind: []})[kind]
        item[attribute] = {kind: current + [m for m in added[kind] if m not in current]}

    def _delete(self, item: Wire, part: str) -> None:
        name, value = part.split()
        attribute = self.path(name)[0]
        if attribute not in item:
            return
        kind = next(iter(item[attribute]))
        left = [m for m in item[attribute][kind] if m not in self.values[value][kind]]
        if left:
            item[attribute] = {kind: left}
        else:
            del item[attribute]


def _split(text: str) -> list[str]:
    """Comma-separated parts at the top level (commas inside parentheses kept)."""
    parts, depth, start = [], 0, 0
    for at, char in enumerate(text):
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(text[start:at])
            start = at + 1
    parts.append(text[start:])
    return parts
