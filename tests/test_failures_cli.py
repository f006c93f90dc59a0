"""`opsworks-trail failures` lists permanent failures; `retry-failures` ingests them again after a fix and a
success replaces the failure state."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cli.main import main
from core.ingest.pipeline import Pipeline
from core.ingest.selection import Selection
from core.ingest.sinks import TableSink
from core.ingest.sources import S3Source
from core.ingest.store import EventStore
from core.model import ObjectRef, Status
from core.settings import DEFAULT_EVENT_SOURCES
from faults import client_error, good_file, stored_event_ids

KEY = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/01/locked file+1.json.gz"


class DenyingS3:
    """The function's role before the operator fixes its policy: every GetObject is denied."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def get_object(self, **_: Any) -> Any:
        raise client_error("AccessDenied", "GetObject", 403)


@pytest.fixture
def world(moto_table: tuple[Any, str], moto_bucket: tuple[Any, str]) -> dict[str, Any]:
    """A bucket with one good log file the function could not read (access denied), recorded as failed."""
    ddb, table = moto_table
    s3, bucket = moto_bucket
    data, ids = good_file("locked", 4)
    s3.put_object(Bucket=bucket, Key=KEY, Body=data)
    pipeline = Pipeline(open=S3Source(DenyingS3(s3)).open, selection=Selection(frozenset(DEFAULT_EVENT_SOURCES)),
                        sink=TableSink(EventStore(ddb, table)), max_decompressed_bytes=1 << 20)
    outcome = pipeline.ingest(ObjectRef(bucket, KEY, len(data)))
    assert outcome.status is Status.FAILED and outcome.permanent
    return {"ddb": ddb, "table": table, "s3": s3, "bucket": bucket, "ids": ids, "data": data}


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_failures_lists_bucket_key_reason_and_time_as_json(world: dict[str, Any],
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "failures", "--format", "json", "--table", world["table"])

    [row] = json.loads(out)
    assert code == 0
    assert (row["bucket"], row["key"]) == (world["bucket"], KEY)
    assert "access denied" in row["reason"]
    assert row["at"].endswith("Z")


def test_failures_as_a_table_has_a_header_and_one_line_per_file(world: dict[str, Any],
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "failures", "--table", world["table"])

    header, line = out.strip().splitlines()
    assert code == 0
    assert header.split() == ["AT", "BUCKET", "KEY", "REASON"]
    assert world["bucket"] in line and KEY in line and "access denied" in line
    assert line.index(world["bucket"]) == header.index("BUCKET")


def test_failures_says_so_when_there_are_none(moto_table: tuple[Any, str],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    _, table = moto_table

    assert cli(capsys, "failures", "--table", table)[1].startswith("no permanent failures (of S3 objects")
    assert json.loads(cli(capsys, "failures", "--format", "json", "--table", table)[1]) == []


def test_retry_failures_after_the_fix_ingests_the_file_and_the_failure_disappears(
        world: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "retry-failures", "--table", world["table"])

    assert code == 0
    assert out.startswith("ingested: s3://trail-bucket/") and "4 matched, 4 written" in out
    assert "1 failed files retried, 1 ok, 0 still failing" in err
    assert stored_event_ids(world["ddb"], world["table"]) == world["ids"]
    assert json.loads(cli(capsys, "failures", "--format", "json", "--table", world["table"])[1]) == []
    state = EventStore(world["ddb"], world["table"]).file_state(ObjectRef(world["bucket"], KEY))
    assert state is not None and state["status"] == "ingested" and "failed_pk" not in state


def test_retry_failures_dry_run_reads_the_file_but_writes_nothing(world: dict[str, Any],
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "retry-failures", "--dry-run", "--table", world["table"])

    assert code == 0
    assert out.startswith("would ingest: ") and "4 matched, 0 written" in out
    assert "checked" in err
    assert stored_event_ids(world["ddb"], world["table"]) == []
    assert [r["key"] for r in json.loads(cli(capsys, "failures", "--format", "json", "--table", world["table"])[1])] \
        == [KEY]


def test_retry_failures_keeps_a_still_broken_file_listed_with_its_new_reason_and_exits_1(
        world: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    world["s3"].put_object(Bucket=world["bucket"], Key=KEY, Body=world["data"][: len(world["data"]) // 2])

    code, out, err = cli(capsys, "retry-failures", "--table", world["table"])

    assert code == 1
    assert out.startswith("still failing (permanent): ") and "truncated gzip" in out
    assert "1 still failing" in err
    [row] = json.loads(cli(capsys, "failures", "--format", "json", "--table", world["table"])[1])
    assert "truncated gzip" in row["reason"]


def test_retry_failures_with_a_raised_cap_ingests_a_file_that_was_too_large(
        moto_table: tuple[Any, str], moto_bucket: tuple[Any, str], capsys: pytest.CaptureFixture[str]) -> None:
    ddb, table = moto_table
    s3, bucket = moto_bucket
    data, ids = good_file("big", 30)
    s3.put_object(Bucket=bucket, Key="AWSLogs/big.json.gz", Body=data)
    small_cap = Pipeline(open=S3Source(s3).open, selection=Selection(frozenset(DEFAULT_EVENT_SOURCES)),
                         sink=TableSink(EventStore(ddb, table)), max_decompressed_bytes=1000)
    assert "cap" in small_cap.ingest(ObjectRef(bucket, "AWSLogs/big.json.gz")).reason

    code, _, _ = cli(capsys, "retry-failures", "--max-bytes", str(1 << 20), "--table", table)

    assert code == 0
    assert stored_event_ids(ddb, table) == ids


def test_failures_without_a_table_name_says_how_to_give_one(monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("TABLE_NAME", raising=False)

    code, _, err = cli(capsys, "failures", "--table", "")

    assert code == 3
    assert "pass --table NAME or set TABLE_NAME" in err
