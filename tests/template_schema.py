"""template.yaml as data, for tests and tooling (no network, no AWS account).

- ``load_template()``: the SAM template as plain dicts, CloudFormation short tags (``!Ref``, ``!Sub``,
  ``!GetAtt``, ``!If`` ...) turned into their long forms (``{"Ref": ...}``, ``{"Fn::Sub": ...}``).
- ``table_definition_from_template()``: kwargs for ``dynamodb.create_table(TableName=..., **kwargs)``
  read from the template's own events table, so moto and DynamoDB Local tables in tests have exactly
  the deployed key schema and indexes.
- ``translate_template()``: the template after the SAM transform (``samtranslator``), i.e. what
  CloudFormation really creates.

Run as a script to write the translated template (used by ``make validate``)::

    python tests/template_schema.py .aws-sam/translated.json
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

from workshop.template import (  # the one loader; the demo and `make invoke` use it too
    FUNCTION_LOGICAL_ID,
    REPO_ROOT,
    TABLE_LOGICAL_ID,
    TEMPLATE_PATH,
    load_template,
    table_definition_from_template,
)

__all__ = ["FUNCTION_LOGICAL_ID", "REPO_ROOT", "TABLE_LOGICAL_ID", "TEMPLATE_PATH", "load_template",
           "table_definition_from_template", "table_ttl_attribute", "translate_template"]

# What a local CodeUri becomes for translation (`sam package` would upload it and put its S3 URI here).
PACKAGED_CODE_BUCKET = "opsworks-trail-artifacts"
PACKAGED_CODE_KEY = "ingest.zip"


def table_ttl_attribute(template: dict[str, Any] | None = None) -> str | None:
    """The TTL attribute of the events table, if TTL is enabled (for ``update_time_to_live``)."""
    template = template if template is not None else load_template()
    spec = template["Resources"][TABLE_LOGICAL_ID]["Properties"].get("TimeToLiveSpecification") or {}
    return spec.get("AttributeName") if spec.get("Enabled") else None



def translate_template(
    template: dict[str, Any] | None = None,
    *,
    region: str = "us-east-1",
    parameter_values: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The template after the SAM transform, offline.

    Local ``CodeUri`` values are replaced by ``s3://PACKAGED_CODE_BUCKET/PACKAGED_CODE_KEY``, as
    ``sam package`` would. The template uses no managed policy names, so no IAM look-up is needed.
    """
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.arn_generator import ArnGenerator
    from samtranslator.translator.translator import Translator

    sam = copy.deepcopy(template if template is not None else load_template())
    for resource in sam.get("Resources", {}).values():
        props = resource.get("Properties") or {}
        code_uri = props.get("CodeUri")
        is_function = resource.get("Type") == "AWS::Serverless::Function"
        if is_function and isinstance(code_uri, str) and not code_uri.startswith("s3://"):
            props["CodeUri"] = f"s3://{PACKAGED_CODE_BUCKET}/{PACKAGED_CODE_KEY}"

    previous_region = ArnGenerator.BOTO_SESSION_REGION_NAME
    ArnGenerator.BOTO_SESSION_REGION_NAME = region
    try:
        # A session only names the Region (pseudo parameters, partition); it makes no call.
        session = boto3.session.Session(region_name=region)
        translator = Translator(managed_policy_map=None, sam_parser=Parser(), boto_session=session)
        return translator.translate(
            sam_template=sam,
            parameter_values=dict(parameter_values or {}),
            get_managed_policy_map=lambda: {},
        )
    finally:
        ArnGenerator.BOTO_SESSION_REGION_NAME = previous_region


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} OUTPUT.json", file=sys.stderr)
        return 2
    output = Path(argv[1])
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(translate_template(), indent=2, sort_keys=False) + "\n", encoding="utf-8")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
