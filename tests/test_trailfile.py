"""Reading one trail file: key classes, streamed decompression, record iteration (fast and exact paths)."""

from __future__ import annotations

import gzip
import io
import json
import time
import zlib
from collections.abc import Iterator
from typing import Any

import pytest

from core.errors import BadTrailFile, TooLarge
from core.ingest import logfile, trailfile
from core.ingest.logfile import FileKind, classify_key, decompressed_chunks
from core.ingest.selection import Selection
from core.ingest.trailfile import RecordScan
from core.model import Skip

OPSWORKS = frozenset({"opsworks.amazonaws.com", "opsworks-cm.amazonaws.com"})
SELECTION = Selection(OPSWORKS)
NO_CAP = 1 << 40
LOG = ("AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/"
       "111122223333_CloudTrail_us-east-1_20240301T1015Z_abc.json.gz")


def rec(i: int, source: str = "s3.amazonaws.com", **fields: Any) -> dict[str, Any]:
    """A record laid out as CloudTrail writes it: eventVersion first."""
    record: dict[str, Any] = {"eventVersion": "1.09", "eventTime": "2024-03-01T10:15:30Z", "eventSource": source,
                              "eventName": "GetObject", "eventID": f"event-{i:04d}", "awsRegion": "us-east-1"}
    record.update(fields)
    return record


def compact(records: list[Any]) -> bytes:
    return json.dumps({"Records": records}, separators=(",", ":")).encode()


def pretty(records: list[Any]) -> bytes:
    return json.dumps({"Records": records}, indent=2).encode()


def mixed_records() -> list[dict[str, Any]]:
    """Ordinary records, OpsWorks records of both services, and look-alikes naming OpsWorks as the caller."""
    records = [rec(i) for i in range(30)]
    records[3] = rec(3, "opsworks.amazonaws.com", eventName="CreateLayer",
                     requestParameters={"stackId": "s-1", "name": "unicode \u00e9\u4e2d"})
    records[11] = rec(11, "opsworks-cm.amazonaws.com", eventName="DescribeServers")
    records[12] = rec(12, "ec2.amazonaws.com", eventName="RunInstances",  # look-alike: OpsWorks calls EC2
                      userIdentity={"type": "AssumedRole", "invokedBy": "opsworks.amazonaws.com"},
                      sourceIPAddress="opsworks.amazonaws.com", userAgent="opsworks.amazonaws.com")
    records[20] = rec(20, "iam.amazonaws.com", eventName="PassRole",  # look-alike in the parameters
                      requestParameters={"service": "opsworks-cm.amazonaws.com"})
    records[29] = rec(29, "opsworks.amazonaws.com", eventName="DescribeStacks")  # the last record: the tail path
    return records


def scan(data: bytes, sources: frozenset[str] | None = SELECTION.sources,
         split: int | None = None, count_records: bool = True) -> tuple[list[Any], RecordScan]:
    """Run trail_records over data as the pipeline does (reopen = read the bytes again)."""
    def chunks() -> Iterator[bytes]:
        if split is None:
            return decompressed_chunks(io.BytesIO(data), NO_CAP)
        return iter([data[i:i + split] for i in range(0, len(data), split)])

    reader = RecordScan(sources, count_records=count_records)
    return list(reader.trail_records(chunks(), chunks)), reader


def selected(records: list[Any]) -> list[Any]:
    return [r for r in records if SELECTION.matches(r)]


def ids(records: list[Any]) -> list[str]:
    return [r["eventID"] for r in records]


def gunzip_all(data: bytes, cap: int = NO_CAP) -> bytes:
    return b"".join(bytes(chunk) for chunk in decompressed_chunks(io.BytesIO(data), cap))


# -- classify_key ---------------------------------------------------------------------------------


@pytest.mark.parametrize("key, reason", [
    ("AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/03/01/"
     "111122223333_CloudTrail-Digest_us-east-1_trail_us-east-1_20240301T101530Z.json.gz", "digest file"),
    ("AWSLogs/o-abc/111122223333/CloudTrail-Insight/us-east-1/2024/03/01/"
     "111122223333_CloudTrail-Insight_us-east-1_20240301T1015Z_abc.json.gz", "Insights file"),
    ("AWSLogs/111122223333/CloudTrail/ConfigWritabilityCheckFile", "CloudTrail write check"),
    ("AWSLogs/111122223333/CloudTrail/", "folder placeholder"),
    ("AWSLogs/", "folder placeholder"),
    ("AWSLogs/111122223333/CloudTrail/us-east-1/notes.txt", "not a log file"),
    ("AWSLogs/111122223333/CloudTrail/us-east-1/trail.json.gz.tmp", "not a log file"),
    ("AWSLogs/111122223333/CloudTrail/us-east-1/export.csv", "not a log file"),
    ("exports/events.log", "not a log file"),  # JSON lines only when allowed
])
def test_keys_that_are_not_trail_logs_are_skipped_with_a_reason(key: str, reason: str) -> None:
    kind = classify_key(key, 100)

    assert isinstance(kind, Skip)
    assert kind.reason.startswith(reason)


def test_a_zero_byte_log_key_is_skipped_as_empty() -> None:
    assert classify_key(LOG, 0) == Skip("empty object")


@pytest.mark.parametrize("key", [LOG, LOG.removesuffix(".gz"), "x/TRAIL.JSON.GZ", "local/file.json"])
def test_json_and_json_gz_keys_are_trail_files(key: str) -> None:
    assert classify_key(key, 10) is FileKind.TRAIL
    assert classify_key(key) is FileKind.TRAIL  # size unknown
    assert classify_key(key, 10, json_lines=True) is FileKind.TRAIL


@pytest.mark.parametrize("key", ["a/test.log", "a/b.jsonl", "a/b.jsonl.gz", "a/b.ndjson", "a/b.log.gz"])
def test_json_lines_keys_are_read_only_when_allowed(key: str) -> None:
    assert classify_key(key, 10, json_lines=True) is FileKind.JSON_LINES
    assert classify_key(key, 10) == Skip("not a log file (*.json.gz or *.json)")


# -- decompressed_chunks --------------------------------------------------------------------------


def test_gzip_is_inflated() -> None:
    body = compact(mixed_records())

    assert gunzip_all(gzip.compress(body)) == body


def test_plain_bytes_pass_through() -> None:
    body = compact(mixed_records())

    assert gunzip_all(body) == body


def test_an_empty_stream_yields_nothing() -> None:
    assert gunzip_all(b"") == b""


def test_multi_member_gzip_is_the_concatenation_of_its_members() -> None:
    data = gzip.compress(b"first member, ") + gzip.compress(b"second member, ") + gzip.compress(b"third")

    assert gunzip_all(data) == b"first member, second member, third"


def test_gzip_chunks_never_exceed_chunk_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logfile, "CHUNK_SIZE", 1000)
    body = bytes(range(256)) * 200

    chunks = [bytes(chunk) for chunk in decompressed_chunks(io.BytesIO(gzip.compress(body)), NO_CAP)]

    assert b"".join(chunks) == body
    assert max(len(c) for c in chunks) <= 1000
    assert len(chunks) >= len(body) // 1000


def test_corrupt_gzip_is_a_bad_trail_file() -> None:
    data = bytearray(gzip.compress(compact(mixed_records())))
    data[20:40] = b"\xff" * 20

    with pytest.raises(BadTrailFile, match="gzip"):
        gunzip_all(bytes(data))


def test_truncated_gzip_is_a_bad_trail_file() -> None:
    data = gzip.compress(compact(mixed_records()))

    with pytest.raises(BadTrailFile, match="truncated"):
        gunzip_all(data[: len(data) // 2])


def test_output_exactly_at_the_cap_is_accepted_and_one_byte_over_is_too_large() -> None:
    body = b"x" * 5000

    assert gunzip_all(gzip.compress(body), cap=5000) == body
    with pytest.raises(TooLarge, match="MAX_DECOMPRESSED_BYTES"):
        gunzip_all(gzip.compress(body), cap=4999)
    with pytest.raises(TooLarge):
        gunzip_all(body, cap=4999)


def test_a_gzip_bomb_is_refused_quickly_without_inflating_everything() -> None:
    """Given 200 MB of zeros gzipped (~200 KB), when read with a 1 MB cap, then TooLarge comes at once."""
    packer = zlib.compressobj(1, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    bomb = b"".join(packer.compress(block) for _ in range(200)) + packer.flush()
    assert len(bomb) < 2_000_000
    inflated = 0

    started = time.perf_counter()
    with pytest.raises(TooLarge):
        for chunk in decompressed_chunks(io.BytesIO(bomb), 1 << 20):
            inflated += len(chunk)
    elapsed = time.perf_counter() - started

    assert inflated <= 1 << 20
    assert elapsed < 1.0, f"took {elapsed:.2f}s: the reader inflated more than it needed"


# -- trail_records: the compact fast path ---------------------------------------------------------


def test_compact_and_pretty_files_yield_exactly_the_selected_records_not_lookalikes() -> None:
    """Look-alikes (OpsWorks as invokedBy, sourceIPAddress, userAgent, a parameter) are not yielded: the
    reader selects by each record's own eventSource, whatever the layout."""
    records = mixed_records()

    candidates, reader = scan(gzip.compress(compact(records)))
    exact, _ = scan(pretty(records))

    assert ids(candidates) == ["event-0003", "event-0011", "event-0029"]
    assert candidates == exact == [records[3], records[11], records[29]]
    assert reader.records == 30


def test_lookalikes_are_never_selected_whichever_path_reads_them() -> None:
    records = mixed_records()

    for data in (compact(records), pretty(records), gzip.compress(compact(records))):
        candidates, _ = scan(data)
        assert not {"event-0012", "event-0020"} & set(ids(selected(candidates)))


@pytest.mark.parametrize("spacing", [b'"eventSource": "', b'"eventSource" :"', b'"eventSource" : \r\n\t"'])
@pytest.mark.parametrize("split", [None, 1, 13])
def test_a_selected_record_with_whitespace_around_the_colon_in_a_compact_file_is_found(spacing: bytes,
                                                                                       split: int | None) -> None:
    records = mixed_records()
    data = compact(records)
    for event_id in (b"event-0003", b"event-0011"):
        at = data.index(b'"eventSource":"', data.index(b'"eventVersion"', data.index(event_id) - 200))
        data = data[:at] + spacing + data[at + len(b'"eventSource":"'):]
    assert data.startswith(b'{"Records":[{"eventVersion":')  # still takes the fast path

    candidates, reader = scan(data, split=split)

    assert selected(candidates) == [records[3], records[11], records[29]]
    assert reader.records == 30


@pytest.mark.parametrize("key", [b'"event\\u0053ource":', b'"\\u0065ventSource":',
                                 b'"' + b"".join(b"\\u%04x" % ord(c) for c in "eventSource") + b'":'])  # the longest
def test_a_selected_record_with_an_escaped_event_source_key_is_found(key: bytes) -> None:
    records = mixed_records()
    data = compact(records)
    at = data.index(b'"eventSource":"opsworks-cm')
    data = data[:at] + key + data[at + len(b'"eventSource":'):]

    candidates, _ = scan(data)

    assert selected(candidates) == [records[3], records[11], records[29]]


def test_a_needle_after_another_key_or_in_a_list_is_not_a_candidate() -> None:
    policy = json.dumps({"Principal": {"Service": "opsworks.amazonaws.com"}})  # a JSON string: escaped quotes
    records = [rec(0, "ec2.amazonaws.com", requestParameters={"services": ["opsworks.amazonaws.com"],
                                                              "eventSource": "x", "source": "opsworks.amazonaws.com",
                                                              "policy": policy, "path": "C:\\"}),
               rec(1)]

    candidates, reader = scan(compact(records))

    assert candidates == []
    assert reader.records == 2


def test_compact_file_without_a_needle_yields_nothing_but_counts_every_record() -> None:
    candidates, reader = scan(compact([rec(i) for i in range(50)]))

    assert candidates == []
    assert reader.records == 50


@pytest.mark.parametrize("layout", ["compact", "gzip", "pretty", "fallback"])
@pytest.mark.parametrize("split", [None, 7])
def test_by_default_records_are_not_counted_and_the_bytes_read_are_the_inflated_size(layout: str,
                                                                                      split: int | None) -> None:
    records = mixed_records()
    if layout == "fallback":  # a compact head, then a record the fast path cannot split: read again, exactly
        records[3] = {"eventSource": "opsworks.amazonaws.com", **records[3]}
    text = pretty(records) if layout == "pretty" else compact(records)
    data = gzip.compress(text) if layout == "gzip" else text
    reader = RecordScan(SELECTION.sources)

    def chunks() -> Iterator[bytes]:
        if split is None:
            return decompressed_chunks(io.BytesIO(data), NO_CAP)
        return iter([text[i:i + split] for i in range(0, len(text), split)])  # already inflated

    candidates = list(reader.trail_records(chunks(), chunks))

    assert selected(candidates) == selected(records)
    assert reader.records is None
    assert reader.bytes_read == len(text)


def test_no_needles_yields_every_record() -> None:
    records = mixed_records()

    candidates, reader = scan(compact(records), sources=None)

    assert candidates == records
    assert reader.records == 30


def test_a_single_record_file_is_read() -> None:
    only = rec(0, "opsworks.amazonaws.com")

    candidates, reader = scan(compact([only]))

    assert candidates == [only]
    assert reader.records == 1


def test_numbers_are_parsed_as_decimal_on_both_paths() -> None:
    records = [rec(0, "opsworks.amazonaws.com", requestParameters={"volumeSize": 1.5, "count": 3}), rec(1)]

    fast, _ = scan(compact(records))
    exact, _ = scan(pretty(records))

    from decimal import Decimal
    assert fast[0]["requestParameters"]["volumeSize"] == Decimal("1.5")
    assert isinstance(fast[0]["requestParameters"]["volumeSize"], Decimal)
    assert isinstance(exact[0]["requestParameters"]["volumeSize"], Decimal)
    assert fast[0] == exact[0]


@pytest.mark.parametrize("split", [1, 7, 16, 17, 64, 100, 333, 4096])
def test_records_spanning_chunk_boundaries_are_read_whole(split: int) -> None:
    records = mixed_records()

    candidates, reader = scan(compact(records), split=split)

    assert selected(candidates) == [records[3], records[11], records[29]]
    assert reader.records == 30


def test_small_chunk_size_through_gzip_reads_the_same_records(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logfile, "CHUNK_SIZE", 50)
    records = mixed_records()

    candidates, reader = scan(gzip.compress(compact(records)))

    assert selected(candidates) == [records[3], records[11], records[29]]
    assert reader.records == 30


# -- trail_records: the exact path ----------------------------------------------------------------


def test_pretty_printed_file_takes_the_exact_path_and_yields_the_same_records() -> None:
    records = mixed_records()

    fast, fast_reader = scan(compact(records))
    exact, exact_reader = scan(pretty(records))

    assert selected(exact) == selected(fast) == [records[3], records[11], records[29]]
    assert exact_reader.records == fast_reader.records == 30


def test_reordered_keys_take_the_exact_path_and_yield_the_same_records() -> None:
    records = mixed_records()
    reordered = [dict(sorted(r.items())) for r in records]  # awsRegion first, as the OpsWorks docs print them

    exact, reader = scan(compact(reordered))

    assert selected(exact) == [reordered[3], reordered[11], reordered[29]]
    assert reader.records == 30


def test_fast_and_exact_paths_agree_record_for_record_without_a_filter() -> None:
    records = mixed_records()

    fast, fast_reader = scan(compact(records), sources=None)
    exact, exact_reader = scan(pretty(records), sources=None)

    assert fast == exact == records
    assert fast_reader.records == exact_reader.records == len(records)


def test_a_compact_file_with_one_reordered_selected_record_falls_back_and_yields_each_once() -> None:
    records = mixed_records()
    records[11] = dict(sorted(records[11].items()))  # no longer starts with {"eventVersion":

    candidates, reader = scan(compact(records))

    # The fast path may have yielded records before falling back; the pipeline drops repeated ids.
    assert list(dict.fromkeys(ids(selected(candidates)))) == ["event-0003", "event-0011", "event-0029"]
    assert reader.records == 30


def test_empty_records_list_yields_nothing() -> None:
    for data in (b'{"Records":[]}', b'{ "Records" : [ ] }\n', gzip.compress(b'{"Records":[]}')):
        candidates, reader = scan(data)
        assert candidates == []
        assert reader.records == 0


@pytest.mark.parametrize("data, reason", [
    (b'{"Records":null}', "no Records list: Records is null"),
    (b'{"Records":{"eventVersion":"1.0"}}', "no Records list: Records is an object"),
    (b'{"Records":"none"}', "no Records list: Records is a string"),
    (b'{"records":[]}', "no Records key"),
    (b'{}', "no Records key"),
    (b'{"Records":[1,2]}', "record 1 is a number, not an object"),
    (b'{"Records":[{"eventVersion":"1.0"},"x"]}', "record 2 is a string, not an object"),
    (b'{"Records":[[{}]]}', "record 1 is a list, not an object"),
    (b'[{"eventVersion":"1.0"}]', "top-level JSON list"),
    (b'  [ ]', "top-level JSON list"),
    (b'hello world', "not JSON"),
    (b'', "not JSON"),
    (b'"Records"', "not JSON"),
])
def test_files_that_are_not_cloudtrail_logs_are_bad_trail_files_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(BadTrailFile) as caught:
        scan(data)

    assert reason in caught.value.reason


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.9, -1])
def test_truncated_json_is_a_bad_trail_file(cut: float) -> None:
    data = compact(mixed_records())
    end = len(data) - 1 if cut == -1 else int(len(data) * cut)

    with pytest.raises(BadTrailFile, match="invalid JSON"):
        scan(data[:end])


def test_trailing_garbage_is_a_bad_trail_file() -> None:
    with pytest.raises(BadTrailFile, match="invalid JSON"):
        scan(compact(mixed_records()) + b"garbage")


def _bad_utf8_at(position_of: bytes) -> tuple[bytes, int]:
    data = compact(mixed_records())
    position = data.index(position_of)
    return data[:position] + b"\xff" + data[position + 1:], position


@pytest.mark.parametrize("where", [b"event-0003", b"event-0029"])  # a selected middle record; the last record
@pytest.mark.parametrize("split", [None, 7, 4096])
def test_invalid_utf8_in_a_record_the_fast_path_parses_is_a_bad_trail_file_naming_the_offset(
        where: bytes, split: int | None) -> None:
    data, position = _bad_utf8_at(where)

    with pytest.raises(BadTrailFile) as caught:
        scan(data, split=split)

    assert caught.value.reason == f"invalid UTF-8 at byte {position:,}"


@pytest.mark.parametrize("split", [None, 7, 4096])
def test_invalid_utf8_in_an_unselected_record_of_a_file_with_candidates_is_reported(split: int | None) -> None:
    """A file that may hold a selected record is parsed whole: a bad byte anywhere in it is named."""
    data, position = _bad_utf8_at(b"event-0005")

    with pytest.raises(BadTrailFile) as caught:
        scan(data, split=split)

    assert caught.value.reason == f"invalid UTF-8 at byte {position:,}"


def test_invalid_utf8_in_a_pretty_file_is_a_bad_trail_file() -> None:
    data = pretty(mixed_records()).replace(b"event-0005", b"event-\xff005")

    with pytest.raises(BadTrailFile) as caught:
        scan(data)

    assert "UTF8" in caught.value.reason or "UTF-8" in caught.value.reason


NESTED_OPSWORKS = {"eventVersion": "2", "eventSource": "opsworks.amazonaws.com"}


@pytest.mark.parametrize("inner", [
    {"a": [NESTED_OPSWORKS, {"eventVersion": "3"}]},  # the first item of a list: after `[`
    {"a": NESTED_OPSWORKS},  # an object's value: after `:`
    {"a": [{"x": 1}, NESTED_OPSWORKS]},  # the last item of a list: its piece does not parse alone
    {"a": [{"eventVersion": "1"}, NESTED_OPSWORKS]},
], ids=["first-in-list", "value", "after-other-object", "last-of-records-like"])
def test_nested_objects_starting_with_event_version_do_not_become_records(inner: dict[str, Any]) -> None:
    """A candidate is parsed only after `},` (or first in the file), as a whole object: else the exact path."""
    records = [rec(0), rec(1, requestParameters=inner), rec(2)]

    for split in (None, 9):
        candidates, reader = scan(compact(records), split=split)

        assert selected(candidates) == []
        assert reader.records == 3


def test_a_nested_object_between_two_record_like_objects_does_not_become_a_record() -> None:
    inner = {"a": [{"x": 1}, NESTED_OPSWORKS, {"eventVersion": "3"}]}

    candidates, reader = scan(compact([rec(0), rec(1, requestParameters=inner), rec(2)]))

    assert selected(candidates) == []
    assert reader.records == 3


def test_nested_objects_with_an_event_version_key_are_not_counted_in_a_file_without_candidates() -> None:
    inner = {"a": [{"eventVersion": "1"}, {"eventVersion": "3"}]}

    _, reader = scan(compact([rec(0), rec(1, requestParameters=inner), rec(2)]))

    assert reader.records == 3


def test_records_count_includes_records_that_do_not_start_with_event_version() -> None:
    odd = {"eventSource": "s3.amazonaws.com", "eventVersion": "1.09", "eventID": "odd"}

    _, reader = scan(compact([rec(0), odd, rec(2)]))

    assert reader.records == 3


def test_a_selected_record_that_does_not_start_with_event_version_is_found_and_counted() -> None:
    odd = {"eventSource": "opsworks.amazonaws.com", "eventVersion": "1.09", "eventID": "odd"}
    records = [rec(0), odd, rec(2)]

    candidates, reader = scan(compact(records))

    assert selected(candidates) == [odd]
    assert reader.records == 3


def test_two_json_documents_are_refused_when_a_candidate_sits_at_the_join() -> None:
    data = compact(mixed_records()) + compact([rec(100, "opsworks.amazonaws.com"), rec(101)])

    with pytest.raises(BadTrailFile, match="invalid JSON"):
        scan(data)


def test_two_json_documents_in_one_compact_file_are_refused_as_trailing_data() -> None:
    data = compact([rec(100), rec(101)]) + compact(mixed_records())

    with pytest.raises(BadTrailFile, match="invalid JSON"):
        scan(data)


# -- json_lines -----------------------------------------------------------------------------------


def lines_scan(data: bytes, sources: frozenset[str] | None = SELECTION.sources,
               split: int = 1 << 20) -> tuple[list[Any], RecordScan]:
    reader = RecordScan(sources, count_records=True)
    chunks = [data[i:i + split] for i in range(0, len(data), split)]
    return list(reader.json_lines(chunks)), reader


@pytest.mark.parametrize("split", [1, 5, 64, 1 << 20])
def test_json_lines_yield_candidate_records_and_count_every_non_blank_line(split: int) -> None:
    records = mixed_records()
    data = b"\n".join(json.dumps(r).encode() for r in records) + b"\n\n   \n"

    candidates, reader = lines_scan(data, split=split)

    assert candidates == [records[3], records[11], records[29]]  # no look-alike (event-0012, event-0020)
    assert reader.records == 30


def test_json_lines_without_needles_yield_every_record_including_a_last_line_without_newline() -> None:
    records = [rec(0), rec(1), rec(2)]
    data = b"\n".join(json.dumps(r).encode() for r in records)

    candidates, reader = lines_scan(data, sources=None)

    assert candidates == records
    assert reader.records == 3


def test_json_lines_report_their_size_and_count_only_when_asked() -> None:
    data = b"".join(json.dumps(r).encode() + b"\n" for r in mixed_records())
    reader = RecordScan(SELECTION.sources)

    assert len(selected(list(reader.json_lines([data[:100], data[100:]])))) == 3
    assert (reader.records, reader.bytes_read) == (None, len(data))


def test_json_lines_handle_windows_line_endings() -> None:
    records = [rec(0, "opsworks.amazonaws.com"), rec(1)]
    data = b"\r\n".join(json.dumps(r).encode() for r in records) + b"\r\n"

    candidates, reader = lines_scan(data, sources=None)

    assert candidates == records
    assert reader.records == 2


@pytest.mark.parametrize("line, reason", [
    (b'{"eventSource":"opsworks.amazonaws.com",', "line 2: invalid JSON"),
    (b'["opsworks.amazonaws.com"]', "line 2: a record must be a JSON object"),
])
def test_a_bad_selected_line_is_a_bad_trail_file_naming_the_line(line: bytes, reason: str) -> None:
    data = json.dumps(rec(0)).encode() + b"\n" + line + b"\n"

    with pytest.raises(BadTrailFile) as caught:
        lines_scan(data)

    assert caught.value.reason.startswith(reason)


# -- exactness: what is parsed, and how ---------------------------------------------------------------


def test_a_file_without_a_candidate_is_never_parsed() -> None:
    """No selected source name (quoted, or escaped) in the bytes: the file is passed over, so even broken
    JSON in it is not an error (the common case costs a byte search, not a parse)."""
    data = compact([rec(0), rec(1, requestParameters={"q": "a=b"})]).replace(b"a=b", b"a\\u003db")
    data = data.replace(b'"eventName":', b'"eventName";', 1)

    found, reader = scan(data, count_records=False)

    assert found == []
    assert reader.bytes_read == len(data)


@pytest.mark.parametrize("escaped", [b'"\\u006fpsworks.amazonaws.com"', b'"opsworks\\u002Eamazonaws.com"',
                                     b'"\\u006F\\u0070sworks-cm.amazonaws.com"'])
def test_a_source_name_spelled_with_escapes_is_selected(escaped: bytes) -> None:
    plain = escaped.decode("unicode_escape").encode()
    records = [rec(0), rec(1, plain.strip(b'"').decode()), rec(2)]
    data = compact(records).replace(plain, escaped)

    found, _ = scan(data, count_records=False)

    assert found == [records[1]]


def test_a_lone_surrogate_escape_reads_as_json_loads_reads_it() -> None:
    """msgspec refuses `\\ud800`; the standard parser accepts it, and its answer is the reader's."""
    records = [rec(0, requestParameters={"name": "\ud800"}), rec(1, "opsworks.amazonaws.com",
                                                                  requestParameters={"name": "x\udfff"})]
    data = compact(records)

    found, reader = scan(data)

    assert found == [records[1]] == selected(json.loads(data)["Records"])
    assert reader.records == 2


@pytest.mark.parametrize("selected_record", [True, False])
def test_a_record_nested_deeper_than_the_parser_allows_is_a_bad_trail_file(selected_record: bool) -> None:
    deep = {"eventVersion": "1.09", "eventSource": "opsworks.amazonaws.com" if selected_record else "s3",
            "eventID": "deep", "requestParameters": "DEEP"}
    data = compact([rec(0, "opsworks.amazonaws.com"), deep]).replace(b'"DEEP"', b"[" * 100_000 + b"]" * 100_000)

    with pytest.raises(BadTrailFile, match="nested deeper"):
        scan(data)


@pytest.mark.parametrize("at, reads", [(0, 1), (50, 2)])
def test_a_candidate_after_the_kept_start_reads_the_file_again_from_its_start(
        monkeypatch: pytest.MonkeyPatch, at: int, reads: int) -> None:
    monkeypatch.setattr(trailfile, "KEEP_BYTES", 1024)
    records = [rec(i) for i in range(60)]
    records[at] = rec(at, "opsworks.amazonaws.com")
    data = compact(records)
    opened = []

    def chunks() -> Iterator[bytes]:
        opened.append(1)
        return iter([data[i:i + 500] for i in range(0, len(data), 500)])

    reader = RecordScan(SELECTION.sources)
    found = list(reader.trail_records(chunks(), chunks))

    assert found == [records[at]]
    assert len(opened) == reads
    assert reader.bytes_read == len(data)


@pytest.mark.parametrize("layout", ["compact", "pretty"])
def test_the_records_before_one_nested_too_deep_are_handed_on_before_the_error(layout: str) -> None:
    """Nothing read is lost: the selected records before the record the parser cannot nest into are
    yielded, then the file fails naming the cause."""
    first = rec(0, "opsworks.amazonaws.com")
    deep = rec(1, "s3.amazonaws.com", requestParameters="DEEP")
    data = (compact if layout == "compact" else pretty)([first, deep, rec(2, "opsworks.amazonaws.com")])
    data = data.replace(b'"DEEP"', b"[" * 100_000 + b"]" * 100_000)
    reader = RecordScan(SELECTION.sources)
    found: list[Any] = []

    with pytest.raises(BadTrailFile, match="nested deeper"):
        for record in reader.trail_records(iter([data]), lambda: iter([data])):
            found.append(record)

    assert found == [first]
