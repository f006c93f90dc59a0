"""`make invoke EVENT=events/NAME.json`: the template's handler, in-process, on one event, against a local stack.

The local stack:

- DynamoDB: DynamoDB Local (started for the run, or the one at --dynamodb-endpoint /
  $AWS_ENDPOINT_URL_DYNAMODB), with the events table created from template.yaml's key schema if absent.
- S3: moto, in-process, holding the deterministic sample trail bucket (`SAMPLE_*` below) that the
  events/ files point at; or the S3 at --s3-endpoint / $AWS_ENDPOINT_URL_S3, which must already hold
  the objects the event names.

The handler path and its environment variables are read from template.yaml (the function's and the
Globals' Environment), so a renamed handler or a new setting shows up here without an edit. Variables
already set in the environment win; template literals and parameter defaults fill the rest.

    python -m workshop.invoke events/sqs-s3.json [--table NAME] [--dynamodb-endpoint URL] [--s3-endpoint URL]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

SAMPLE_BUCKET = "opsworks-trail-sample"
"""The bucket every events/*.json file names; its keys come from write_sample_bucket(SAMPLE_SEED, SAMPLE_FILES)."""
SAMPLE_SEED = 7
SAMPLE_FILES = 120
DEFAULT_TABLE = "opsworks-trail-local"
LOCAL_REGION = "us-east-1"

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class FakeContext:
    """What the handler and Powertools read from a Lambda context."""

    function_name: str = "opsworks-trail-ingest-local"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{LOCAL_REGION}:000000000000:function:opsworks-trail-ingest-local"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/opsworks-trail-ingest-local"
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


@dataclass(frozen=True)
class FunctionSpec:
    handler: str
    """`module.function`, as the template's Handler says."""
    environment: dict[str, str]
    """Every variable the template sets, with a local value (unresolvable ones left out)."""


def function_spec(template: Mapping[str, Any], logical_id: str = "IngestFunction") -> FunctionSpec:
    """The handler and environment of a function in the SAM template (Globals merged under it)."""
    resources = template.get("Resources", {})
    if logical_id not in resources:
        raise SystemExit(f"invoke: template.yaml has no resource {logical_id}")
    props = resources[logical_id].get("Properties", {})
    globals_ = template.get("Globals", {}).get("Function", {})
    handler = props.get("Handler") or globals_.get("Handler")
    if not isinstance(handler, str) or "." not in handler:
        raise SystemExit(f"invoke: {logical_id}.Handler is not a module.function string: {handler!r}")
    variables = {**globals_.get("Environment", {}).get("Variables", {}),
                 **props.get("Environment", {}).get("Variables", {})}
    parameters = template.get("Parameters", {})
    environment = {}
    for name, value in variables.items():
        resolved = _resolve(value, parameters)
        if resolved is not None:
            environment[name] = resolved
    return FunctionSpec(handler, environment)


def _resolve(value: Any, parameters: Mapping[str, Any]) -> str | None:
    """A literal, or a Ref to a parameter with a default; anything else (a resource Ref) is None."""
    if isinstance(value, str | int | float | bool):
        return str(value)
    if isinstance(value, dict) and set(value) == {"Ref"}:
        default = parameters.get(value["Ref"], {}).get("Default")
        return None if default is None else str(default)
    return None


def load_handler(path: str) -> Handler:
    module_name, _, function = path.rpartition(".")
    module = importlib.import_module(module_name)
    handler: Handler = getattr(module, function)
    return handler


@contextlib.contextmanager
def local_dynamodb(endpoint: str | None) -> Iterator[str]:
    """The given endpoint, or a DynamoDB Local started for the run."""
    if endpoint:
        yield endpoint
        return
    from cli.dynamodb_local import DynamoDBLocal, DynamoDBLocalUnavailable

    try:
        server = DynamoDBLocal()
        server.start()
    except DynamoDBLocalUnavailable as exc:
        raise SystemExit(f"invoke: DynamoDB Local could not start: {exc} "
                         "(or pass --dynamodb-endpoint URL of one that runs)") from exc
    try:
        yield server.endpoint_url
    finally:
        server.stop()


@contextlib.contextmanager
def local_s3(endpoint: str | None) -> Iterator[str]:
    """The given S3 endpoint, or moto in-process holding the sample trail bucket; yields a description."""
    if endpoint:
        yield endpoint
        return
    from moto import mock_aws

    from workshop.synthetic import upload_to_s3, write_sample_bucket

    with mock_aws(), tempfile.TemporaryDirectory(prefix="opsworks-trail-sample-") as folder:
        s3 = boto3.client("s3", region_name=LOCAL_REGION)
        s3.create_bucket(Bucket=SAMPLE_BUCKET)
        write_sample_bucket(Path(folder), seed=SAMPLE_SEED, files=SAMPLE_FILES)
        keys = upload_to_s3(Path(folder), s3, SAMPLE_BUCKET)
        yield f"moto in-process, s3://{SAMPLE_BUCKET} with {len(keys)} sample objects"


def ensure_table(endpoint: str, table: str) -> None:
    from cli.dynamodb_local import client_kwargs
    from workshop.template import table_definition_from_template

    client = boto3.client("dynamodb", **client_kwargs(endpoint))
    try:
        client.create_table(TableName=table, **table_definition_from_template())
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
            raise


def run(args: argparse.Namespace) -> int:
    from cli.common import to_json
    from workshop.template import load_template

    try:
        event = json.loads(Path(args.event).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SystemExit(f"invoke: cannot read {args.event}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise SystemExit(f"invoke: {args.event} is not JSON: {exc}") from exc
    spec = function_spec(load_template())
    for name, value in spec.environment.items():
        os.environ.setdefault(name, value)
    os.environ.update({
        "TABLE_NAME": args.table,
        # Local endpoints only: never a developer's real credentials or account.
        "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": LOCAL_REGION,
        "POWERTOOLS_TRACE_DISABLED": "true",
    })
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_SESSION_TOKEN", None)
    with local_dynamodb(args.dynamodb_endpoint) as ddb, local_s3(args.s3_endpoint) as s3:
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = ddb
        if args.s3_endpoint:
            os.environ["AWS_ENDPOINT_URL_S3"] = args.s3_endpoint
        ensure_table(ddb, args.table)
        print(f"invoke: {spec.handler} on {args.event}; DynamoDB {ddb} table {args.table}; S3 {s3}",
              file=sys.stderr)
        handler = load_handler(spec.handler)  # imported here: its module-level clients see the endpoints
        response = handler(event, FakeContext())
    print(to_json(response, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m workshop.invoke", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("event", help="an event file, e.g. events/sqs-s3.json")
    parser.add_argument("--table", default=os.environ.get("TABLE_NAME") or DEFAULT_TABLE,
                        help=f"events table, created if absent (default: $TABLE_NAME or {DEFAULT_TABLE})")
    parser.add_argument("--dynamodb-endpoint", default=os.environ.get("AWS_ENDPOINT_URL_DYNAMODB"),
                        help="a running DynamoDB Local (default: $AWS_ENDPOINT_URL_DYNAMODB, else one is started)")
    parser.add_argument("--s3-endpoint", default=os.environ.get("AWS_ENDPOINT_URL_S3"),
                        help="a local S3 holding the event's objects (default: $AWS_ENDPOINT_URL_S3, "
                             "else moto in-process with the sample bucket)")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
