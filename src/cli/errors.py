"""What the command line says when it cannot go on: one line naming the cause and the fix, and an exit
code per kind of cause (docs/commands.md, "Errors and exit codes"), the way the AWS CLI does. Tracebacks
only with --debug.

Causes a retry cannot fix (no Region, no credentials, no table, an endpoint that refuses connections,
access denied) stop the command at once: `probe_table` asks DynamoDB once, with no retries, before any work.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from core.keys import ACCOUNTS_PK


class Exit(IntEnum):
    """The exit codes, documented in docs/commands.md."""

    OK = 0
    PARTIAL = 1
    """Some of the work failed (a file, a retried failure); the rest was done. Also an unforeseen error."""
    USAGE = 2
    """A bad option or value (argparse's own code)."""
    CONFIG = 3
    """Something to configure is missing: Region, credentials, table name, DynamoDB Local not started."""
    DENIED = 4
    """AWS refused the credentials or the permission."""
    UNREACHABLE = 5
    """The endpoint did not answer (nothing listening, no network)."""
    NOT_FOUND = 6
    """The table or bucket does not exist."""
    NOTHING = 7
    """Nothing to work on: no log file under the path, no stack or server by that name or id."""
    INTERRUPTED = 130


class CliError(Exception):
    """A reason to stop, said in one line; `code` is the process exit code."""

    def __init__(self, message: str, code: Exit) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class Where:
    """What a failing call was talking to, to name it in the message."""

    service: str = "AWS"
    endpoint: str | None = None
    region: str | None = None
    table: str | None = None
    bucket: str | None = None

    @property
    def place(self) -> str:
        if self.endpoint:
            return self.endpoint
        return f"{self.service} in {self.region}" if self.region else self.service


_DENIED = frozenset({
    "AccessDenied", "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
    "ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "SignatureDoesNotMatch",
    "InvalidAccessKeyId", "MissingAuthenticationToken", "AllAccessDisabled", "403",
})
_NOT_FOUND = frozenset({"ResourceNotFoundException", "NoSuchBucket"})
_UNREACHABLE = (EndpointConnectionError, ConnectTimeoutError, ConnectionClosedError, ReadTimeoutError)

PROBE_CONFIG = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=3, read_timeout=5)
"""A probe is asked once: what it can find out (no table, refused, denied) a retry would not change."""


def explain(exc: BaseException, where: Where) -> CliError | None:
    """The one-line message and exit code for an AWS failure, or None when it is not one we know."""
    if isinstance(exc, NoRegionError):
        return CliError("no AWS Region: set AWS_REGION or pass --region", Exit.CONFIG)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return CliError("no AWS credentials: set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), "
                        "or run `aws configure` / `aws sso login`; for DynamoDB Local pass --local", Exit.CONFIG)
    if isinstance(exc, _UNREACHABLE):
        hint = ("is DynamoDB Local running? start it with `opsworks-trail local start`"
                if where.endpoint else "check the network and the Region")
        return CliError(f"cannot reach {where.place}: {hint}", Exit.UNREACHABLE)
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = str(error.get("Message", "")).strip()
        if code in _NOT_FOUND:
            if code == "NoSuchBucket" or (where.bucket and not where.table):
                return CliError(f"bucket {where.bucket or '?'} does not exist (or is in another account): "
                                "check the s3:// path", Exit.NOT_FOUND)
            return CliError(f"table {where.table} does not exist at {where.place}: pass --table with the "
                            "stack's EventsTableName output (sam list stack-outputs), or, in a checkout, load DynamoDB "
                            "Local with `make demo` and pass --local", Exit.NOT_FOUND)
        if code in _DENIED:
            what = f"table {where.table}" if where.table else f"bucket {where.bucket}" if where.bucket else where.place
            return CliError(f"access denied to {what} ({code}: {message or 'no message'}): check the "
                            "credentials and their IAM permissions", Exit.DENIED)
        return CliError(f"{where.service} refused the call: {code}: {message}", Exit.PARTIAL)
    if isinstance(exc, BotoCoreError):
        return CliError(f"{where.service} call failed: {exc}", Exit.PARTIAL)
    return None


def probe_table(client: Any, where: Where, *, ingest: bool = False) -> None:
    """Ask the table once, with the permission the command needs first (GetItem to ingest, Query to read),
    so the causes no retry can fix stop the command now, named, in seconds."""
    try:
        if ingest:
            client.get_item(TableName=where.table, Key={"pk": {"S": ACCOUNTS_PK}, "sk": {"S": "-"}})
        else:
            client.query(TableName=where.table, KeyConditionExpression="pk = :p",
                         ExpressionAttributeValues={":p": {"S": ACCOUNTS_PK}}, Limit=1)
    except (ClientError, BotoCoreError) as exc:
        found = explain(exc, where)
        if found is None or (found.code == Exit.PARTIAL and _is_transient(exc)):
            return  # a transient refusal: the command's own retries deal with it
        raise found from exc


def _is_transient(exc: BaseException) -> bool:
    from core.ingest.store import is_transient

    return isinstance(exc, ClientError | BotoCoreError) and is_transient(exc)
