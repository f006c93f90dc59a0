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

from core.selection import Selection
from core.settings import DEFAULT_MAX_DECOMPRESSED_BYTES, SettingsError, parse_event_sources
from core.store import RETRIES, json_number


def add_table_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--table", default=os.environ.get("TABLE_NAME"),
                        help="the events table (default: $TABLE_NAME)")
    parser.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL_DYNAMODB"),
                        help="DynamoDB endpoint, e.g. DynamoDB Local (default: $AWS_ENDPOINT_URL_DYNAMODB)")


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
        raise SystemExit(f"opsworks-trail: --event-sources: {exc}") from None


def dynamodb_client(args: argparse.Namespace) -> Any:
    if not args.table:
        raise SystemExit("opsworks-trail: no table: pass --table NAME or set TABLE_NAME")
    return boto3.client("dynamodb", endpoint_url=args.endpoint_url or None, config=RETRIES)


def s3_client() -> Any:
    return boto3.client("s3")


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
    print(f"opsworks-trail: {message}", file=sys.stderr)
    return 2
