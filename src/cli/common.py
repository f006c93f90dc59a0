"""What the CLI commands share: AWS clients, the table name, JSON output."""

from __future__ import annotations

import argparse
import json
import os
import sys
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import Binary
from botocore.exceptions import NoRegionError

from cli.errors import PROBE_CONFIG, CliError, Exit, Where, explain, probe_table
from cli.present.safe_text import for_terminal
from core.ingest.items import json_number
from core.ingest.selection import Selection
from core.ingest.store import RETRIES
from core.settings import DEFAULT_MAX_DECOMPRESSED_BYTES, SettingsError, parse_event_sources

LOCAL_TABLE = "opsworks-trail-demo"
"""The table `make demo` loads into the persistent DynamoDB Local; --local's default table."""


def add_table_arguments(parser: argparse.ArgumentParser, *, region: bool = True) -> None:
    """--table, --endpoint-url, --region (unless the command has a --region of its own) and --local."""
    parser.add_argument("--table", default=os.environ.get("TABLE_NAME"),
                        help="the events table (default: $TABLE_NAME; with --local: opsworks-trail-demo)")
    parser.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL_DYNAMODB"),
                        help="DynamoDB endpoint, e.g. DynamoDB Local (default: $AWS_ENDPOINT_URL_DYNAMODB)")
    if region:
        parser.add_argument("--region", default=os.environ.get("AWS_REGION") or None,
                            help="AWS Region (default: $AWS_REGION, $AWS_DEFAULT_REGION, then the profile's)")
    parser.add_argument("--local", action="store_true",
                        help="the persistent DynamoDB Local (`opsworks-trail local start`, `make demo`): "
                             "its endpoint, local credentials, table opsworks-trail-demo unless --table")


def add_selection_arguments(parser: argparse.ArgumentParser) -> None:
    """What the pipeline keeps and how large a file it reads: shared by ingest and retry-failures."""
    parser.add_argument("--event-sources", default="",
                        help="'all', or comma-separated eventSource values (default: OpsWorks and OpsWorks CM)")
    parser.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_DECOMPRESSED_BYTES,
                        help="refuse a file that inflates past this many bytes")


def selection_from(args: argparse.Namespace) -> Selection:
    try:
        return Selection(parse_event_sources(args.event_sources))
    except SettingsError as exc:
        raise CliError(f"--event-sources: {exc}", Exit.USAGE) from None


def dynamodb_client(args: argparse.Namespace, *, ingest: bool = False) -> Any:
    """The DynamoDB client for args.table, after one probe: a missing Region, credentials or table, an
    endpoint not listening or access denied stop the command here, in one line (cli.errors)."""
    kwargs: dict[str, Any] = {"endpoint_url": args.endpoint_url or None, "region_name": _aws_region(args)}
    if args.local:
        from cli.dynamodb_local import client_kwargs, running_local_endpoint

        kwargs = dict(client_kwargs(running_local_endpoint()))
        args.endpoint_url = kwargs["endpoint_url"]
        args.table = args.table or LOCAL_TABLE
    if not args.table:
        raise CliError("no table: pass --table NAME or set TABLE_NAME (for DynamoDB Local: --local)", Exit.CONFIG)
    where = Where("DynamoDB", endpoint=kwargs["endpoint_url"], region=kwargs["region_name"], table=args.table)
    try:
        client = boto3.client("dynamodb", config=RETRIES, **kwargs)
        probe = boto3.client("dynamodb", config=PROBE_CONFIG, **kwargs)
    except NoRegionError as exc:
        raise _explained(exc, where) from exc
    probe_table(probe, Where("DynamoDB", endpoint=kwargs["endpoint_url"], region=client.meta.region_name,
                             table=args.table), ingest=ingest)
    return client


def s3_client(args: argparse.Namespace) -> Any:
    try:
        return boto3.client("s3", region_name=_aws_region(args))
    except NoRegionError as exc:
        raise _explained(exc, Where("S3")) from exc


def _aws_region(args: argparse.Namespace) -> str | None:
    """--region, where the command takes it as the AWS Region (verify's picks digests), else $AWS_REGION."""
    return getattr(args, "region", None) or os.environ.get("AWS_REGION") or None


def _explained(exc: BaseException, where: Where) -> CliError:
    found = explain(exc, where)
    assert found is not None
    return found


def megabytes(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


def to_json(value: Any, **kwargs: Any) -> str:
    return json.dumps(value, default=json_default, ensure_ascii=False, **kwargs)


def json_default(value: Any) -> Any:
    """DynamoDB and the parser give Decimal; JSON wants int or float."""
    if isinstance(value, Decimal):
        return json_number(value)
    if isinstance(value, Binary):
        return _hex(value)
    if isinstance(value, set):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _hex(value: Any) -> str:
    return bytes(value).hex()


def fail(message: str) -> int:
    print(f"opsworks-trail: {for_terminal(message)}", file=sys.stderr)
    return int(Exit.USAGE)
