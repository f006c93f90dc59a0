"""Derive the OpsWorks action catalog (src/core/ingest/catalog.json) from the AWS API models.

Current botocore no longer ships the OpsWorks models, so the project keeps the derived facts it needs:
for each action, whether it only reads, and which request / response parameters name which resource;
for the whole API, which parameters hold secrets. Run `make catalog` after a model update; a test
checks the committed file still matches the models when ../shared is present.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

MODELS = {
    "opsworks.amazonaws.com": ("opsworks", "opsworks-2013-02-18.service-2.json"),
    "opsworks-cm.amazonaws.com": ("opsworks-cm", "opsworkscm-2016-11-01.service-2.json"),
}

# Model member name -> resource type. Lists of ids map like the single id.
RESOURCE_MEMBERS = {
    "StackId": "stack", "StackIds": "stack", "SourceStackId": "stack",
    "LayerId": "layer", "LayerIds": "layer",
    "InstanceId": "instance", "InstanceIds": "instance",
    "AppId": "app", "AppIds": "app", "CloneAppIds": "app",
    "DeploymentId": "deployment", "DeploymentIds": "deployment",
    "CommandId": "command", "CommandIds": "command",
    "VolumeId": "volume", "VolumeIds": "volume",
    "RaidArrayId": "raid-array", "RaidArrayIds": "raid-array",
    "ElasticIp": "elastic-ip", "ElasticIps": "elastic-ip",
    "ElasticLoadBalancerName": "elastic-load-balancer", "ElasticLoadBalancerNames": "elastic-load-balancer",
    "RdsDbInstanceArn": "rds-db-instance", "RdsDbInstanceArns": "rds-db-instance",
    "EcsClusterArn": "ecs-cluster", "EcsClusterArns": "ecs-cluster",
    "IamUserArn": "user-profile", "IamUserArns": "user-profile",
    "ServerName": "server",
    "BackupId": "backup",
    "NodeName": "node",
}

# Member names that hold a secret although the model does not mark their shape sensitive.
SECRET_NAME = re.compile(r"(Password|PrivateKey|SshKey|Secret)$")
# The value of an engine attribute set by UpdateServerEngineAttributes (keys, passwords).
EXTRA_SECRET_MEMBERS = {"AttributeValue"}
# Calls that read although their names do not start with Describe / List / Get.
READ_ONLY_EXTRA = {"ExportServerEngineAttribute"}
MAX_DEPTH = 3


def lower_camel(name: str) -> str:
    """CloudTrail logs OpsWorks parameters in lowerCamelCase: StackId -> stackId."""
    return name[:1].lower() + name[1:]


def resource_paths(
    shapes: dict[str, Any], shape_name: str | None, prefix: str = "", depth: int = 0
) -> dict[str, str]:
    """Dotted parameter paths that name a resource, following nested structures (not lists of them)."""
    if shape_name is None or depth > MAX_DEPTH:
        return {}
    found: dict[str, str] = {}
    for member, ref in shapes[shape_name].get("members", {}).items():
        path = prefix + lower_camel(member)
        target = shapes[ref["shape"]]
        if member in RESOURCE_MEMBERS and target["type"] in ("string", "list"):
            found[path] = RESOURCE_MEMBERS[member]
        elif target["type"] == "structure":
            found.update(resource_paths(shapes, ref["shape"], path + ".", depth + 1))
    return found


def secret_rules(shapes: dict[str, Any]) -> tuple[set[str], set[str], set[str]]:
    """Three sets of lowerCamel keys: always secret; maps (or lists of maps) whose `value` is secret;
    secret when a sibling `secure` is true."""
    always: set[str] = set()
    item_lists: set[str] = set()
    when_secure: set[str] = set()
    structures_with_secret_value: set[str] = set()
    for shape_name, shape in shapes.items():
        members = shape.get("members", {})
        for member, ref in members.items():
            sensitive = shapes[ref["shape"]].get("sensitive", False)
            if member == "Value" and (sensitive or "Secure" in members):
                if sensitive:
                    structures_with_secret_value.add(shape_name)
                else:
                    when_secure.add(lower_camel(member))
            elif sensitive or SECRET_NAME.search(member) or member in EXTRA_SECRET_MEMBERS:
                always.add(lower_camel(member))
    for shape in shapes.values():
        for member, ref in shape.get("members", {}).items():
            target = shapes[ref["shape"]]
            element = target["member"]["shape"] if target["type"] == "list" else ref["shape"]
            if element in structures_with_secret_value:
                item_lists.add(lower_camel(member))
    return always, item_lists, when_secure


def build(models_dir: Path) -> dict[str, Any]:
    services: dict[str, Any] = {}
    always: set[str] = set()
    item_lists: set[str] = set()
    when_secure: set[str] = set()
    for event_source, (service, filename) in MODELS.items():
        model = json.loads((models_dir / filename).read_text())
        shapes = model["shapes"]
        actions = {}
        for name, op in sorted(model["operations"].items()):
            actions[name] = {
                "read_only": name.startswith(("Describe", "List", "Get")) or name in READ_ONLY_EXTRA,
                "request": resource_paths(shapes, op.get("input", {}).get("shape")),
                "response": resource_paths(shapes, op.get("output", {}).get("shape")),
            }
        services[event_source] = {
            "service": service,
            "api_version": model["metadata"]["apiVersion"],
            "actions": actions,
        }
        a, i, w = secret_rules(shapes)
        always |= a
        item_lists |= i
        when_secure |= w
    return {
        "_generated_by": "scripts/build_catalog.py from the botocore API models; do not edit by hand",
        "services": services,
        "secret_keys": sorted(always),
        "secret_value_containers": sorted(item_lists),
        "secret_when_secure": sorted(when_secure),
    }


def render(catalog: dict[str, Any]) -> str:
    return json.dumps(catalog, indent=1, sort_keys=True) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=Path, default=Path("../shared/reference/opsworks-api"))
    parser.add_argument("--out", type=Path, default=Path("src/core/ingest/catalog.json"))
    args = parser.parse_args()
    args.out.write_text(render(build(args.models)))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
