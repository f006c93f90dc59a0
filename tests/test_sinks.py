"""Where the events go is the sink the pipeline is given: the table, the caller, nowhere; a key that names
no log file is a Skip whose reason people see unchanged."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.ingest.logfile import FileKind, classify_key
from core.ingest.pipeline import MAX_UNEXPECTED_ATTEMPTS, Pipeline
from core.ingest.selection import Selection
from core.ingest.sinks import CollectingSink, DryRunSink, Sink, TableSink
from core.ingest.sources import LocalSource, S3Source
from core.ingest.store import EventStore
from core.model import ObjectRef, Skip, Status
from core.settings import DEFAULT_EVENT_SOURCES
from faults import bad_files, good_file, scan_all, stored_event_ids

SELECTION = Selection(frozenset(DEFAULT_EVENT_SOURCES))
SKIP_REASONS = {"folder placeholder", "digest file", "Insights file", "CloudTrail write check",
                "not a log file (*.json.gz or *.json)", "empty object"}
"""The texts users and `ingest --json`'s skip_reasons see: a change here is a change they see."""


def pipeline(open_object: Any, sink: Sink) -> Pipeline:
    return Pipeline(open=open_object, selection=SELECTION, sink=sink, max_decompressed_bytes=1 << 20)


def file_items(client: Any, table: str) -> list[dict[str, Any]]:
    return [item for item in scan_all(client, table) if item["sk"] == "FILE"]


def test_collected_events_are_handed_back_and_also_stored_by_the_table_sink_behind(
        moto_bucket: tuple[Any, str], moto_table: tuple[Any, str]) -> None:
    """`ingest --format jsonl` without --dry-run: the events printed are the events stored."""
    s3, bucket = moto_bucket
    ddb, table = moto_table
    data, ids = good_file("both", 150)  # more than one write buffer
    s3.put_object(Bucket=bucket, Key="AWSLogs/both.json.gz", Body=data)
    [ref] = S3Source(s3).list(bucket)

    outcome = pipeline(S3Source(s3).open, CollectingSink(then=TableSink(EventStore(ddb, table)))).ingest(ref)

    assert outcome.status is Status.INGESTED and outcome.written == len(ids)
    assert sorted(str(event["event_id"]) for event in outcome.items) == ids == stored_event_ids(ddb, table)
    [state] = file_items(ddb, table)
    assert state["status"] == "ingested" and state["sha256"] == outcome.sha256 is not None


def test_collected_events_of_a_dry_run_are_handed_back_and_nothing_is_written(
        moto_bucket: tuple[Any, str], moto_table: tuple[Any, str]) -> None:
    s3, bucket = moto_bucket
    data, ids = good_file("dry", 5)
    s3.put_object(Bucket=bucket, Key="AWSLogs/dry.json.gz", Body=data)
    [ref] = S3Source(s3).list(bucket)

    outcome = pipeline(S3Source(s3).open, CollectingSink()).ingest(ref)

    assert (outcome.status, outcome.matched, outcome.written, outcome.sha256) == (Status.INGESTED, 5, 0, None)
    assert sorted(str(event["event_id"]) for event in outcome.items) == ids
    assert scan_all(*moto_table) == []


def test_a_local_file_s_events_are_stored_but_the_table_keeps_no_state_of_the_file(
        tmp_path: Path, moto_table: tuple[Any, str]) -> None:
    """A path names nothing the function, `failures` or a digest can find again: no ledger entry, no
    failure record, nothing hashed."""
    ddb, table = moto_table
    data, ids = good_file("local", 3)
    (tmp_path / "good.json.gz").write_bytes(data)
    (tmp_path / "bad.json.gz").write_bytes(bad_files()["truncated-gzip"][0])
    source = LocalSource()
    store = EventStore(ddb, table)
    run = pipeline(source.open, TableSink(store))

    refs = {Path(ref.key).name: ref for ref in source.list(tmp_path)}
    good, bad = run.ingest(refs["good.json.gz"]), run.ingest(refs["bad.json.gz"])

    assert (bad.status, bad.permanent) == (Status.FAILED, True)
    assert (good.status, good.written, good.sha256) == (Status.INGESTED, 3, None)
    assert stored_event_ids(ddb, table) == ids
    assert file_items(ddb, table) == [] and list(store.failed_files()) == []


def test_an_unexplained_fault_is_retried_forever_where_no_sink_counts_attempts() -> None:
    """Without a table nothing counts the attempts, so nothing turns a fault permanent: the caller (the CLI)
    reports it and the person runs the command again."""
    def broken(ref: ObjectRef) -> Any:
        raise RuntimeError("no one foresaw this")

    run = pipeline(broken, DryRunSink())
    outcomes = [run.ingest(ObjectRef("b", "AWSLogs/f.json.gz", 10, "etag")) for _ in range(MAX_UNEXPECTED_ATTEMPTS + 1)]

    assert all(o.retry and "unexpected RuntimeError" in o.reason for o in outcomes)


def test_an_unexplained_fault_turns_permanent_after_the_table_sink_counts_its_attempts(
        moto_table: tuple[Any, str]) -> None:
    def broken(ref: ObjectRef) -> Any:
        raise RuntimeError("no one foresaw this")

    store = EventStore(*moto_table)
    run = pipeline(broken, TableSink(store))
    outcomes = [run.ingest(ObjectRef("b", "AWSLogs/f.json.gz", 10, "etag")) for _ in range(MAX_UNEXPECTED_ATTEMPTS)]

    assert [o.retry for o in outcomes] == [True] * (MAX_UNEXPECTED_ATTEMPTS - 1) + [False]
    assert [f["key"] for f in store.failed_files()] == ["AWSLogs/f.json.gz"]


def test_a_dry_run_sink_asked_to_keep_a_ledger_hashes_what_the_table_sink_would() -> None:
    data, _ = good_file("hash", 2)
    ref = ObjectRef("b", "AWSLogs/hash.json.gz", len(data))

    hashed = pipeline(lambda _: io.BytesIO(data), DryRunSink(keeps_ledger=True)).ingest(ref)
    plain = pipeline(lambda _: io.BytesIO(data), DryRunSink()).ingest(ref)

    assert hashed.sha256 is not None and len(hashed.sha256) == 64
    assert plain.sha256 is None


# -- skips ------------------------------------------------------------------------------------------------

_PARTS = st.sampled_from(["AWSLogs", "111122223333", "CloudTrail", "CloudTrail-Digest", "CloudTrail-Insight",
                          "us-east-1", "2024", "", "exports"])
_NAMES = st.sampled_from(["", "ConfigWritabilityCheckFile", "111122223333_CloudTrail_us-east-1_x",
                          "111122223333_CloudTrail-Digest_us-east-1_x", "a_CloudTrail-Insight_b", "notes", "x"])
_SUFFIXES = st.sampled_from(["", ".json.gz", ".json", ".JSON.GZ", ".jsonl", ".log.gz", ".ndjson", ".txt", ".gz",
                             ".json.gz.tmp", "/"])


@st.composite
def keys(draw: st.DrawFn) -> str:
    return "/".join([*draw(st.lists(_PARTS, max_size=5)), draw(_NAMES) + draw(_SUFFIXES)])


@given(key=keys(), size=st.one_of(st.none(), st.integers(0, 3)), json_lines=st.booleans())
def test_every_key_is_a_kind_of_log_file_or_a_skip_with_a_known_reason(key: str, size: int | None,
                                                                       json_lines: bool) -> None:
    kind = classify_key(key, size, json_lines=json_lines)

    assert isinstance(kind, FileKind) or (isinstance(kind, Skip) and kind.reason in SKIP_REASONS)
    if size == 0:
        assert not isinstance(kind, FileKind)


@given(key=keys())
def test_a_skipped_key_is_never_opened_and_its_outcome_says_the_skip_s_reason(key: str) -> None:
    skip = classify_key(key, 100)
    if not isinstance(skip, Skip):
        return

    def never(ref: ObjectRef) -> Any:
        raise AssertionError("a skipped key must not be opened")

    outcome = pipeline(never, DryRunSink()).ingest(ObjectRef("b", key, 100))

    assert (outcome.status, outcome.reason) == (Status.SKIPPED, skip.reason)


@pytest.mark.parametrize("key, reason", [
    ("AWSLogs/1/CloudTrail/", "folder placeholder"),
    ("AWSLogs/1/CloudTrail-Digest/us-east-1/2024/01/01/1_CloudTrail-Digest_us-east-1_t_20240101T0000Z.json.gz",
     "digest file"),
    ("AWSLogs/1/CloudTrail-Insight/us-east-1/2024/01/01/1_CloudTrail-Insight_us-east-1_x.json.gz", "Insights file"),
    ("AWSLogs/1/CloudTrail/ConfigWritabilityCheckFile", "CloudTrail write check"),
    ("AWSLogs/1/CloudTrail/notes.txt", "not a log file (*.json.gz or *.json)"),
])
def test_skip_reasons_keep_their_texts(key: str, reason: str) -> None:
    assert classify_key(key, 10) == Skip(reason)


# -- the command line -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dry_run", [True, False])
def test_ingest_format_jsonl_prints_each_file_s_events_in_listing_order_and_stores_them_unless_dry(
        tmp_path: Path, moto_table: tuple[Any, str], capsys: pytest.CaptureFixture[str], dry_run: bool) -> None:
    from cli.main import main

    ddb, table = moto_table
    expected: list[str] = []
    for name in ("a", "b", "c"):
        data, ids = good_file(name, 120)
        (tmp_path / f"{name}.json.gz").write_bytes(data)
        expected += ids

    code = main(["ingest", "--format", "jsonl", "--no-progress", "--table", table, *(["--dry-run"] if dry_run else []),
                 str(tmp_path)])

    printed = [json.loads(line)["event_id"] for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    assert printed == expected  # a file's events together, the files in the order listed
    assert stored_event_ids(ddb, table) == ([] if dry_run else expected)
