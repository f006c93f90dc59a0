"""The OpsWorks and OpsWorks CM action catalog, derived from the API models (scripts/build_catalog.py).

It answers three questions about a record: does the call only read, which resources do its parameters
name, and which parameter values are secrets that must never be stored or logged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources as package_files
from typing import Any

REDACTED = "*** redacted by opsworks-trail ***"

# arn:aws:opsworks:us-east-1:111122223333:stack/<id>/ ; arn:aws:opsworks-cm:...:server/<name>/<uuid>
_ARN = re.compile(r"^arn:aws[a-z-]*:(opsworks|opsworks-cm):[a-z0-9-]*:\d*:([a-z-]+)/([^/]+)")
_ARN_TYPES = {
    "opsworks": {"stack": "stack", "layer": "layer", "instance": "instance", "app": "app",
                 "deployment": "deployment", "command": "command", "volume": "volume",
                 "user": "user-profile"},
    "opsworks-cm": {"server": "server", "backup": "backup"},
}


@dataclass(frozen=True)
class Action:
    read_only: bool
    request: Mapping[str, str]
    """dotted lowerCamel parameter path -> resource type"""
    response: Mapping[str, str]


@dataclass(frozen=True)
class Catalog:
    services: Mapping[str, str]
    """eventSource -> short service name (opsworks, opsworks-cm)"""
    actions: Mapping[tuple[str, str], Action]
    secret_keys: frozenset[str]
    secret_value_containers: frozenset[str]
    secret_when_secure: frozenset[str]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Catalog:
        actions = {
            (source, name): Action(spec["read_only"], spec["request"], spec["response"])
            for source, service in data["services"].items()
            for name, spec in service["actions"].items()
        }
        return cls(
            services={source: service["service"] for source, service in data["services"].items()},
            actions=actions,
            secret_keys=frozenset(k.lower() for k in data["secret_keys"]),
            secret_value_containers=frozenset(k.lower() for k in data["secret_value_containers"]),
            secret_when_secure=frozenset(k.lower() for k in data["secret_when_secure"]),
        )

    def action(self, event_source: str, event_name: str) -> Action | None:
        return self.actions.get((event_source, event_name))

    def resources(self, event_source: str, event_name: str, request: Any, response: Any,
                  record_resources: Any = None) -> list[dict[str, str]]:
        """Every {type, id} the call names, from the catalog's parameter paths and from OpsWorks ARNs."""
        found: dict[tuple[str, str], None] = {}
        action = self.action(event_source, event_name)
        if action is not None:
            for params, paths in ((request, action.request), (response, action.response)):
                for path, rtype in paths.items():
                    for value in _values_at(params, path.split(".")):
                        found[(rtype, value)] = None
        for value in _strings(request, response, record_resources):
            resolved = resolve_arn(value)
            if resolved is not None:
                found[resolved] = None
        return [{"type": rtype, "id": rid} for rtype, rid in found]

    def redact(self, value: Any) -> Any:
        """A copy of request or response parameters with every secret replaced by REDACTED."""
        if isinstance(value, list):
            return [self.redact(item) for item in value]
        if not isinstance(value, dict):
            return value
        secure = value.get("secure") is True or str(value.get("secure")).lower() == "true"
        out: dict[str, Any] = {}
        for key, item in value.items():
            lowered = key.lower()
            if lowered in self.secret_keys or (secure and lowered in self.secret_when_secure):
                out[key] = REDACTED
            elif lowered in self.secret_value_containers:
                out[key] = _redact_values(item)
            else:
                out[key] = self.redact(item)
        return out


def resolve_arn(value: str) -> tuple[str, str] | None:
    """An OpsWorks or OpsWorks CM ARN as (type, id); None for anything else."""
    match = _ARN.match(value)
    if match is None:
        return None
    service, kind, rid = match.groups()
    rtype = _ARN_TYPES[service].get(kind)
    return (rtype, rid) if rtype else None


@cache
def load_catalog() -> Catalog:
    text = package_files.files("core.ingest").joinpath("catalog.json").read_text(encoding="utf-8")
    return Catalog.from_json(json.loads(text))


def _values_at(params: Any, path: list[str]) -> Iterator[str]:
    """String values at a dotted path (keys matched case-insensitively); lists of strings expand."""
    node = params
    for step in path:
        if not isinstance(node, dict):
            return
        lowered = step.lower()
        node = next((v for k, v in node.items() if k.lower() == lowered), None)
    if isinstance(node, str) and node:
        yield node
    elif isinstance(node, list):
        yield from (v for v in node if isinstance(v, str) and v)


def _strings(*values: Any) -> Iterator[str]:
    for value in values:
        if isinstance(value, str):
            if value.startswith("arn:"):
                yield value
        elif isinstance(value, dict):
            yield from _strings(*value.values())
        elif isinstance(value, list):
            yield from _strings(*value)


def _redact_values(container: Any) -> Any:
    """Engine attributes: keep each `name`, replace each `value`."""
    if isinstance(container, list):
        return [_redact_values(item) for item in container]
    if isinstance(container, dict):
        return {k: (REDACTED if k.lower() == "value" else v) for k, v in container.items()}
    return REDACTED
