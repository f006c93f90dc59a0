"""`opsworks-trail backfill`: which files are sent, in which shape, and how a run resumes."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import boto3
import pytest
from workshop.synthetic import SampleManifest, upload_to_s3

from cli.backfill import (
    ListingCounts,
    Sent,
    delivery_day,
    enqueue,
    message_body,
    select,
)
from cli.main import main
from core.ingest.digests import is_digest_key
from core.ingest.triggers import refs_from_message
from core.model import ObjectRef

KEY = ("AWSLogs/o-abc123/111122223333/CloudTrail/us-west-2/2024/05/02/"
       "111122223333_CloudTrail_us-west-2_20240502T1215Z_Y.json.gz")


@pytest.fixture
def queue(moto_aws: None) -> tuple[Any, str]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    return sqs, sqs.create_queue(QueueName="ingest")["QueueUrl"]


@pytest.fixture
def uploaded(moto_bucket: tuple[Any, str], sample_bucket: tuple[Path, SampleManifest]) -> SampleManifest:
    root, manifest = sample_bucket
    upload_to_s3(root, *moto_bucket)
    return manifest


def drain(sqs: Any, url: str) -> list[ObjectRef]:
    refs = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return refs
        for message in messages:
            refs += refs_from_message(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def test_delivery_day_is_read_from_the_cloudtrail_file_name() -> None:
    assert delivery_day(KEY) == date(2024, 5, 2)
    assert delivery_day("my trail+logs/AWSLogs/1/CloudTrail/x/notes.json.gz") is None
    assert delivery_day("a/1_CloudTrail_r_20241399T0000Z_x.json.gz") is None  # no 99th day


def test_selection_keeps_log_files_of_the_days_asked_for_without_reading_them() -> None:
    refs = [ObjectRef("b", k, 10) for k in (
        KEY,
        KEY.replace("20240502T1215Z", "20240430T2355Z"),
        KEY.replace("20240502T1215Z", "20240504T0005Z"),
        "AWSLogs/111122223333/CloudTrail-Digest/us-west-2/2024/05/02/x_CloudTrail-Digest_20240502T1215Z.json.gz",
        "AWSLogs/111122223333/CloudTrail/us-west-2/2024/05/02/renamed.json.gz",
    )]
    counts = ListingCounts()
    kept = list(select(refs, date(2024, 5, 1), date(2024, 5, 3), counts))
    assert [r.key for r in kept] == [KEY]
    assert (counts.listed, counts.not_log_files, counts.outside_dates, counts.undated) == (5, 1, 2, 1)


def test_message_is_an_eventbridge_event_the_handler_reads_back_as_the_same_file() -> None:
    ref = ObjectRef("trail-bucket", "my trail+logs/" + KEY, 123, "e1")
    body = json.loads(message_body(ref))
    assert (body["source"], body["detail-type"], body["account"], body["region"]) == (
        "aws.s3", "Object Created", "111122223333", "us-west-2")
    assert body["detail"]["object"]["key"].startswith("my+trail%2Blogs/")
    assert refs_from_message(json.dumps(body)) == [ref]


def test_enqueue_sends_every_file_once_in_batches_of_ten(queue: tuple[Any, str]) -> None:
    sqs, url = queue
    refs = [ObjectRef("trail-bucket", f"AWSLogs/1/CloudTrail/r/2024/05/01/f {i:02d}+x.json.gz", 1)
            for i in range(23)]
    calls: list[int] = []
    real = sqs.send_message_batch

    def counting(**kwargs: Any) -> Any:
        calls.append(len(kwargs["Entries"]))
        return real(**kwargs)

    sqs.send_message_batch = counting
    sent = enqueue(sqs, url, iter(refs), Sent())
    assert calls == [10, 10, 3]
    assert (sent.files, sent.last_key) == (23, refs[-1].key)
    assert sorted(r.key for r in drain(sqs, url)) == sorted(r.key for r in refs)


def digest_keys(within: str = "") -> list[str]:
    """The digest files of the uploaded bucket (a backfill hands them over, so the function verifies them)."""
    s3 = boto3.client("s3", region_name="us-east-1")
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket="trail-bucket", Prefix=within)
            for o in page.get("Contents", [])]
    return sorted(k for k in keys if is_digest_key(k))


def test_backfill_to_queue_enqueues_each_log_file_and_digest_and_a_resumed_run_nothing_more(
        uploaded: SampleManifest, queue: tuple[Any, str], capsys: pytest.CaptureFixture[str]) -> None:
    sqs, url = queue
    assert main(["backfill", "s3://trail-bucket/", "--queue-url", url]) == 0
    last_key = capsys.readouterr().out.strip().removeprefix("last key: ")
    digests = digest_keys()
    assert digests
    assert sorted(r.key for r in drain(sqs, url)) == sorted(uploaded.log_keys + digests)
    assert last_key == max(uploaded.log_keys + digests)
    assert main(["backfill", "s3://trail-bucket/", "--queue-url", url, "--start-after", last_key]) == 0
    assert drain(sqs, url) == []


def test_backfill_date_bounds_and_prefix_limit_what_is_sent(
        uploaded: SampleManifest, queue: tuple[Any, str]) -> None:
    sqs, url = queue
    prefix = f"AWSLogs/{uploaded.accounts[0]}/"
    assert main(["backfill", f"s3://trail-bucket/{prefix}", "--since", "2024-05-03", "--until", "2024-05-05",
                 "--queue-url", url]) == 0
    expected = sorted(k for k in uploaded.log_keys if k.startswith(prefix)
                      and date(2024, 5, 3) <= (delivery_day(k) or date.min) <= date(2024, 5, 5))
    expected += [k for k in digest_keys(prefix)  # the digest of the last day's last hour comes the day after
                 if date(2024, 5, 3) <= (delivery_day(k) or date.min) <= date(2024, 5, 6)]
    assert expected and any(is_digest_key(k) for k in expected)
    expected.sort()
    assert sorted(r.key for r in drain(sqs, url)) == expected


def test_dry_run_sends_nothing(uploaded: SampleManifest, queue: tuple[Any, str],
                               capsys: pytest.CaptureFixture[str]) -> None:
    sqs, url = queue
    assert main(["backfill", "s3://trail-bucket/", "--queue-url", url, "--dry-run"]) == 0
    digests = len(digest_keys())
    assert (f"{len(uploaded.log_keys) + digests} files would be sent (dry run) ({len(uploaded.log_keys)} log files, "
            f"{digests} digests)") in capsys.readouterr().err
    assert drain(sqs, url) == []


def test_batch_operations_without_its_arguments_is_refused_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backfill", "s3://trail-bucket/", "--batch-operations", "--account-id", "111122223333"]) == 2
    assert "--role-arn, --function-arn, --report-bucket" in capsys.readouterr().err
