"""Nothing lost, nothing twice: bad objects through the real handler, redelivery, a refusing DynamoDB,
a crash in the middle of a file, the seed documents' own malformed examples, and no secret in any
stored item or log line."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO, needs_shared
from core.ingest.pipeline import Pipeline
from core.ingest.selection import Selection
from core.ingest.sinks import TableSink
from core.ingest.sources import S3Source
from core.ingest.store import EventStore
from core.model import ObjectRef, Status
from core.settings import DEFAULT_EVENT_SOURCES, DEFAULT_MAX_DECOMPRESSED_BYTES
from faults import (
    READ_BEFORE_THE_FAULT,
    EventWriteCounter,
    FlakyDynamoDB,
    LambdaContext,
    bad_files,
    bomb,
    good_file,
    record,
    s3_message,
    scan_all,
    sqs_event,
    stored_event_ids,
    trail_file,
)

SELECTION = Selection(frozenset(DEFAULT_EVENT_SOURCES))
PREFIX = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/01/"


@dataclass
class Aws:
    """moto S3 and DynamoDB wired into the real handler module."""

    s3: Any
    bucket: str
    ddb: Any
    table: str
    handler: Any

    def put(self, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)

    def deliver(self, keys: list[str]) -> dict[str, Any]:
        """One SQS batch (one S3 notification per key, size and ETag as S3 announces them)."""
        bodies = []
        for key in keys:
            try:
                head = self.s3.head_object(Bucket=self.bucket, Key=key)
                bodies.append(s3_message(self.bucket, key, head["ContentLength"], head["ETag"].strip('"')))
            except self.s3.exceptions.ClientError:
                bodies.append(s3_message(self.bucket, key, 1234))
        response: dict[str, Any] = self.handler.lambda_handler(sqs_event(bodies), LambdaContext())
        return response

    def failures(self) -> list[dict[str, Any]]:
        """What an operator sees: `opsworks-trail failures --format json`."""
        return run_cli(["failures", "--format", "json", "--table", self.table])


def run_cli(argv: list[str]) -> Any:
    from cli.main import main

    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "stdout", out)
        main(argv)
    return json.loads(out.getvalue())


@pytest.fixture
def aws(moto_table: tuple[Any, str], moto_bucket: tuple[Any, str],
        monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    import handlers.ingest as handler

    ddb, table = moto_table
    s3, bucket = moto_bucket
    monkeypatch.setenv("TABLE_NAME", table)
    monkeypatch.setattr(handler, "s3_client", s3)
    monkeypatch.setattr(handler, "dynamodb_client", ddb)
    handler.pipeline.cache_clear()
    yield Aws(s3, bucket, ddb, table, handler)
    handler.pipeline.cache_clear()


@pytest.fixture(scope="session")
def bomb_768(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """768 MiB of spaces after a valid `{"Records":[` head, gzip-streamed once per session (~750 KB)."""
    return bomb(tmp_path_factory.mktemp("bomb") / "bomb.json.gz", inflated=768 << 20)


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The handler's log output, formatted exactly as Lambda would ship it."""
    from handlers.observability import logger

    stream = io.StringIO()
    capture = logging.StreamHandler(stream)
    capture.setFormatter(logger.registered_formatter)
    logger._logger.addHandler(capture)
    yield stream
    logger._logger.removeHandler(capture)


def upload_bad_batch(aws: Aws, bomb_path: Path) -> tuple[list[str], dict[str, str], list[str]]:
    """Every malformed file, the bomb and one good file in the bucket: (keys, key -> reason fragment, good ids)."""
    expected = {}
    for name, (data, fragment) in bad_files().items():
        aws.put(PREFIX + f"{name}.json.gz", data)
        expected[PREFIX + f"{name}.json.gz"] = fragment
    aws.put(PREFIX + "bomb.json.gz", bomb_path.read_bytes())
    expected[PREFIX + "bomb.json.gz"] = "cap of"  # the file's cap, or the record cap that a blank bomb meets first
    data, ids = good_file("good", 7)
    aws.put(PREFIX + "good.json.gz", data)
    return [*expected, PREFIX + "good.json.gz"], expected, ids


# -- Acceptance 1: one SQS batch of bad objects beside a good one ------------------------------------------


def test_a_batch_of_bad_objects_is_recorded_and_acknowledged_and_the_good_file_stored(
        aws: Aws, bomb_768: Path) -> None:
    keys, expected, good_ids = upload_bad_batch(aws, bomb_768)
    assert len(keys) > 10  # SQS batches are 10 at most: deliver in two, as Lambda would
    tracemalloc.start()
    try:
        responses = [aws.deliver(keys[:10]), aws.deliver(keys[10:])]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert responses == [{"batchItemFailures": []}] * 2  # nothing sent back for retry
    assert stored_event_ids(aws.ddb, aws.table) == sorted({*good_ids, *READ_BEFORE_THE_FAULT.values()})
    listed = {row["key"]: row for row in aws.failures()}
    assert set(listed) == set(expected)
    for key, fragment in expected.items():
        assert fragment in listed[key]["reason"], (key, listed[key]["reason"])
        assert listed[key]["bucket"] == aws.bucket and listed[key]["at"]
    print(f"\npeak traced memory while the batch (with a 768 MiB bomb) ran: {peak / 2**20:.1f} MiB")
    assert peak < 100 << 20


def test_the_bomb_inflates_in_bounded_resident_memory(bomb_768: Path) -> None:
    """Resident memory, C allocations included (the gzip inflater, the JSON parser), in a fresh process.
    The peak is VmHWM (this process image only): ru_maxrss would carry over the forking parent's peak."""
    script = f"""
import resource, sys
sys.path.insert(0, {str(REPO / "src")!r})

def peak_kib():
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

from core.ingest.catalog import load_catalog
from core.model import ObjectRef
from core.ingest.pipeline import Pipeline
from core.ingest.selection import Selection
from core.ingest.sinks import DryRunSink
from core.ingest.sources import LocalSource
catalog = load_catalog()
before = peak_kib()
pipeline = Pipeline(open=LocalSource().open, selection=Selection(None), sink=DryRunSink(),
                    max_decompressed_bytes={DEFAULT_MAX_DECOMPRESSED_BYTES}, catalog=catalog)
outcome = pipeline.ingest(ObjectRef(None, {str(bomb_768)!r}))
print(before, peak_kib(), outcome.status.value, outcome.permanent, outcome.reason)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                            timeout=300)
    before, after, status, permanent, reason = result.stdout.split(" ", 4)
    growth_mib = (int(after) - int(before)) / 1024
    peak_mib = int(after) / 1024
    print(f"\nbomb (768 MiB, cap 512 MiB): peak RSS {peak_mib:.0f} MiB, {growth_mib:.0f} MiB over the imports; "
          f"{reason.strip()}")
    assert (status, permanent) == ("failed", "True")
    assert "cap of" in reason  # refused by the file's or the record's cap, before memory grows
    assert growth_mib < 64 and peak_mib < 200, f"peak RSS {peak_mib:.0f} MiB, {growth_mib:.0f} MiB over the imports"


# -- Acceptance 2: three deliveries of the same files -------------------------------------------------------


def test_redelivered_files_write_no_event_again(aws: Aws, bomb_768: Path) -> None:
    keys, expected, good_ids = upload_bad_batch(aws, bomb_768)
    more, more_ids = good_file("more", 60)
    aws.put(PREFIX + "more.json.gz", more)
    keys.append(PREFIX + "more.json.gz")
    counter = EventWriteCounter(aws.ddb)

    first = [aws.deliver(keys[i:i + 10]) for i in range(0, len(keys), 10)]
    written_once = list(counter.events)
    state_once = {(i["pk"], i["sk"]): i for i in scan_all(aws.ddb, aws.table) if i["sk"] != "FILE"}
    batch_calls_once = counter.calls.get("BatchWriteItem", 0)
    for _ in range(2):
        again = [aws.deliver(keys[i:i + 10]) for i in range(0, len(keys), 10)]
        assert again == first == [{"batchItemFailures": []}] * len(first)

    read_before_faults = list(READ_BEFORE_THE_FAULT.values())  # one write per file that holds it
    assert sorted(written_once) == sorted(f"EVENT#{i}" for i in good_ids + more_ids + read_before_faults)
    assert counter.events == written_once, "a redelivery wrote events again"
    assert counter.calls.get("BatchWriteItem", 0) == batch_calls_once
    assert {(i["pk"], i["sk"]): i for i in scan_all(aws.ddb, aws.table) if i["sk"] != "FILE"} == state_once
    assert {row["key"] for row in aws.failures()} == set(expected)


def test_a_file_replaced_under_the_same_key_is_read_again(aws: Aws) -> None:
    key = PREFIX + "rewritten.json.gz"
    aws.put(key, trail_file([record("v1-0001")]))
    aws.deliver([key])
    aws.put(key, trail_file([record("v1-0001"), record("v2-0001")]))

    aws.deliver([key])

    assert stored_event_ids(aws.ddb, aws.table) == ["v1-0001", "v2-0001"]


# -- Acceptance 3: DynamoDB refusing half of every batch for a while, and throttling -------------------------


def test_every_event_ends_stored_while_dynamodb_refuses_half_of_each_batch(
        moto_table: tuple[Any, str], moto_bucket: tuple[Any, str], sample_bucket: tuple[Path, Any]) -> None:
    from workshop.synthetic import upload_to_s3

    ddb, table = moto_table
    s3, bucket = moto_bucket
    root, manifest = sample_bucket
    upload_to_s3(root, s3, bucket)
    flaky = FlakyDynamoDB(ddb, refuse_half_times=40)  # throttling is botocore's to retry (test_hostile.py)
    sleeps: list[float] = []
    source = S3Source(s3)
    pipeline = Pipeline(open=source.open, selection=SELECTION,
                        sink=TableSink(EventStore(flaky, table, sleep=sleeps.append)),
                        max_decompressed_bytes=DEFAULT_MAX_DECOMPRESSED_BYTES)

    outcomes = [pipeline.ingest(ref) for ref in source.list(bucket)]

    assert [o for o in outcomes if o.status is Status.FAILED] == []
    assert flaky.refuse_half_times == 0, "the faults did not all happen"
    assert len(sleeps) >= 40
    assert stored_event_ids(ddb, table) == sorted(manifest.expected)
    assert sum(o.matched for o in outcomes) >= len(manifest.expected)


# -- A crash in the middle of a file -----------------------------------------------------------------------


@pytest.mark.parametrize("crash", ["exception", "process killed"])
def test_a_crash_mid_file_leaves_a_state_the_retry_completes_without_duplicate_or_gap(
        moto_table: tuple[Any, str], moto_bucket: tuple[Any, str], crash: str) -> None:
    ddb, table = moto_table
    s3, bucket = moto_bucket
    data, ids = good_file("crash", 250)  # 250 events, 500 links, 250 relations: 40 batches of 25
    key = PREFIX + "crash.json.gz"
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    ref = ObjectRef(bucket, key, len(data))

    class Killed(BaseException):
        """Stands for SIGKILL or a Lambda timeout: nothing in the process gets to run after it."""

    flaky = FlakyDynamoDB(ddb, fail_batch_after=3, crash=RuntimeError if crash == "exception" else Killed)

    def pipeline(client: Any) -> Pipeline:
        return Pipeline(open=S3Source(s3).open, selection=SELECTION,
                        sink=TableSink(EventStore(client, table, sleep=lambda _: None)),
                        max_decompressed_bytes=DEFAULT_MAX_DECOMPRESSED_BYTES)

    if crash == "exception":
        first = pipeline(flaky).ingest(ref)
        assert first.retry, "a crash mid-file must be retried"
    else:
        with pytest.raises(Killed):
            pipeline(flaky).ingest(ref)
    partial = stored_event_ids(ddb, table)
    assert 0 < len(partial) < len(ids)
    store = EventStore(ddb, table)
    state = store.file_state(ref)
    assert state is None or state["status"] == "retrying", "no ingested marker may exist for a half-written file"
    assert list(store.failed_files()) == []

    counter = EventWriteCounter(ddb)
    retry = pipeline(ddb).ingest(ref)
    third = pipeline(ddb).ingest(ref)

    assert retry.status is Status.INGESTED and retry.written == len(ids)
    assert third.status is Status.SKIPPED and "already ingested" in third.reason
    assert len(counter.events) == len(ids)
    items = scan_all(ddb, table)
    assert stored_event_ids(ddb, table) == ids  # no gap, and one item per event
    links = sorted(i["event_id"] for i in items
                   if i["pk"].startswith("RES#") and i["sk"].endswith(i.get("event_id", "-")))
    assert links == sorted(ids + ids)  # each event's stack and layer link, once


# -- The seed documents' own malformed examples --------------------------------------------------------------


@pytest.mark.corpus
def test_the_published_malformed_examples_fail_permanently_naming_file_and_reason(aws: Aws) -> None:
    folder = needs_shared("corpus/opsworks-docs-examples")
    verbatim = sorted(folder.glob("*.verbatim.txt"))
    fixed = sorted(folder.glob("*.fixed.json"))
    assert verbatim and fixed
    # Trail buckets only hold *.json(.gz) log files; the examples go in under that name.
    keys = {}
    for path in verbatim + fixed:
        key = "docs/" + path.name.removesuffix(".txt") + (".json" if path.suffix == ".txt" else "")
        aws.put(key, path.read_bytes())
        keys[key] = path

    assert aws.deliver(sorted(keys)) == {"batchItemFailures": []}

    listed = {row["key"]: row["reason"] for row in aws.failures()}
    assert set(listed) == {k for k, p in keys.items() if p in verbatim}
    for key, reason in listed.items():  # as published, each is invalid JSON or a bare record
        try:
            json.loads(keys[key].read_bytes())
        except ValueError:
            assert reason.startswith("invalid JSON: "), (key, reason)
        else:
            assert reason == "no Records list: the JSON object has no Records key", (key, reason)
    stored = stored_event_ids(aws.ddb, aws.table)
    for path in fixed:
        for rec in json.loads(path.read_text())["Records"]:
            if rec["eventSource"] in DEFAULT_EVENT_SOURCES:
                assert rec["eventID"] in stored


# -- Fault injection on S3 through the handler ----------------------------------------------------------------


def test_a_key_not_yet_readable_is_sent_back_for_retry_and_not_recorded(aws: Aws) -> None:
    data, _ = good_file("ok", 2)
    aws.put(PREFIX + "ok.json.gz", data)

    response = aws.deliver([PREFIX + "ok.json.gz", PREFIX + "late.json.gz"])

    assert response == {"batchItemFailures": [{"itemIdentifier": "msg-1"}]}
    assert aws.failures() == []


def test_access_denied_is_recorded_for_the_operator_and_not_retried(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    from faults import client_error

    key = PREFIX + "locked.json.gz"
    aws.put(key, good_file("locked", 2)[0])

    class Denying:
        def __getattr__(self, name: str) -> Any:
            return getattr(aws.s3, name)

        def get_object(self, **_: Any) -> Any:
            raise client_error("AccessDenied", "GetObject", 403)

    monkeypatch.setattr(aws.handler, "s3_client", Denying())
    aws.handler.pipeline.cache_clear()

    assert aws.deliver([key]) == {"batchItemFailures": []}
    [row] = aws.failures()
    assert row["key"] == key and "access denied" in row["reason"]


# -- Secrets -------------------------------------------------------------------------------------------------


def test_no_stored_item_and_no_log_line_holds_a_planted_secret(
        aws: Aws, sample_bucket: tuple[Path, Any], log_lines: io.StringIO,
        capsys: pytest.CaptureFixture[str]) -> None:
    from workshop.synthetic import SECRET_MARKER, upload_to_s3

    root, manifest = sample_bucket
    keys = upload_to_s3(root, aws.s3, aws.bucket)
    leaky = PREFIX + "leaky.json"  # a malformed file with a secret right at the parse error
    aws.put(leaky, b'{"Records":[{"eventVersion":"1.08","eventSource":"opsworks.amazonaws.com",'
                   b'"requestParameters":{"password":"' + SECRET_MARKER.encode() + b'at-the-error"} x}]}')
    keys.append(leaky)

    responses = [aws.deliver(keys[i:i + 10]) for i in range(0, len(keys), 10)]

    assert all(r == {"batchItemFailures": []} for r in responses)
    assert manifest.secrets, "the sample must plant secrets for this test to mean anything"
    stored = json.dumps(scan_all(aws.ddb, aws.table), default=str)
    logs = log_lines.getvalue() + capsys.readouterr().out
    assert "leaky.json" in logs and "s3://" in logs  # the logs were captured
    assert stored_event_ids(aws.ddb, aws.table) == sorted(manifest.expected)
    for secret in manifest.secrets:
        assert secret.value not in stored, secret.path
        assert secret.value not in logs, secret.path
    assert SECRET_MARKER not in stored and SECRET_MARKER not in logs

