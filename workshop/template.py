"""template.yaml as data: the one place that reads the SAM template at run time.

The demo, `make invoke` and the tests build their DynamoDB tables from the template's own key schema,
so the code and the deployed stack cannot disagree unnoticed.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
TABLE_LOGICAL_ID = "EventsTable"
FUNCTION_LOGICAL_ID = "IngestFunction"


class _CfnLoader(yaml.SafeLoader):  # type: ignore[misc]
    """SafeLoader that understands CloudFormation's short intrinsic-function tags."""


def _construct_node(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]


def _intrinsic(name: str):  # type: ignore[no-untyped-def]
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        value = _construct_node(loader, node)
        if name == "Fn::GetAtt" and isinstance(value, str):
            resource, _, attribute = value.partition(".")
            value = [resource, attribute]
        return {name: value}

    return construct


for _tag in (
    "And", "Base64", "Cidr", "Equals", "FindInMap", "GetAtt", "GetAZs", "If", "ImportValue",
    "Join", "Not", "Or", "Select", "Split", "Sub", "Transform", "Contains", "EachMemberEquals",
    "EachMemberIn", "RefAll", "ValueOf", "ValueOfAll", "ToJsonString", "Length",
):  # fmt: skip
    _CfnLoader.add_constructor(f"!{_tag}", _intrinsic(f"Fn::{_tag}"))
_CfnLoader.add_constructor("!Ref", _intrinsic("Ref"))
_CfnLoader.add_constructor("!Condition", _intrinsic("Condition"))


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """The SAM template as plain dicts and lists, with intrinsic functions in their long form."""
    with open(path, encoding="utf-8") as handle:
        template: dict[str, Any] = yaml.load(handle, Loader=_CfnLoader)
    return template


def table_definition_from_template(template: dict[str, Any] | None = None) -> dict[str, Any]:
    """Kwargs for ``create_table`` from the template's events table; the caller adds ``TableName``.

    Returns KeySchema, AttributeDefinitions, GlobalSecondaryIndexes and BillingMode, copied, so the
    caller may change them.
    """
    template = template if template is not None else load_template()
    properties = template["Resources"][TABLE_LOGICAL_ID]["Properties"]
    definition = {
        key: copy.deepcopy(properties[key])
        for key in ("KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes", "BillingMode")
        if key in properties
    }
    for key, value in definition.items():
        if _has_intrinsic(value):
            raise ValueError(f"{TABLE_LOGICAL_ID}.{key} uses an intrinsic function; tests need literals")
    return definition


def _has_intrinsic(value: Any) -> bool:
    if isinstance(value, dict):
        return any(k == "Ref" or k.startswith("Fn::") or _has_intrinsic(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_intrinsic(v) for v in value)
    return False
