"""The reader's performance paths (issue 7) give the same records as the exact parser, whatever the chunking.

The fast path scans each chunk in place and copies only the record across a seam; these tests pin the
seams: records and record starts split across chunks, records longer than a chunk, multi-member gzip,
the per-needle search when the needles share no prefix, the bytes fallback of the SIMD search, and
agreement with the exact parser on generated files.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from workshop.synthetic import write_large_trail_file

from core.errors import BadTrailFile
from core.ingest import logfile, sourcesearch, trailfile
from core.ingest.logfile import Chunk, decompressed_chunks
from core.ingest.selection import Selection
from core.ingest.trailfile import RecordScan

RECORD_START = b'{"eventVersion":'

OPSWORKS = Selection(frozenset({"opsworks.amazonaws.com", "opsworks-cm.amazonaws.com"}))
NO_CAP = 1 << 40


def rec(i: int, source: str = "s3.amazonaws.com", **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"eventVersion": "1.09", "eventSource": source, "eventName": "Call",
                              "eventID": f"event-{i:05d}"}
    record.update(fields)
    return record


def sample(n: int = 40) -> list[dict[str, Any]]:
    records = [rec(i) for i in range(n)]
    for i in range(3, n, 7):
        records[i] = rec(i, "opsworks.amazonaws.com", requestParameters={"size": 1.5})
    records[5] = rec(5, "ec2.amazonaws.com", userIdentity={"invokedBy": "opsworks.amazonaws.com"})
    records[-1] = rec(n - 1, "opsworks-cm.amazonaws.com")
    return records


def compact(records: list[Any]) -> bytes:
    return json.dumps({"Records": records}, separators=(",", ":")).encode()


def read(data: bytes, sources: frozenset[str] | None = OPSWORKS.sources,
         split: int | None = None) -> tuple[list[Any], int]:
    """trail_records as the pipeline runs it; `split` feeds fixed-size chunks instead of inflating."""
    def chunks() -> Iterator[bytes]:
        if split is None:
            return decompressed_chunks(io.BytesIO(data), NO_CAP)
        return iter([data[i:i + split] for i in range(0, len(data), split)])

    scan = RecordScan(sources, count_records=True)
    return list(scan.trail_records(chunks(), chunks)), scan.records


def selected(records: list[Any]) -> list[Any]:
    unique = {r["eventID"]: r for r in records if OPSWORKS.matches(r)}
    return list(unique.values())


def test_every_split_of_a_compact_file_gives_the_unsplit_result() -> None:
    data = compact(sample())
    whole, count = read(data)

    for split in range(1, 120):
        assert read(data, split=split) == (whole, count), split


@pytest.mark.parametrize("chunk, read_size", [(64, 16), (1000, 64), (4096, 1 << 10)])
def test_small_inflate_chunks_read_the_same_records(monkeypatch: pytest.MonkeyPatch, chunk: int,
                                                    read_size: int) -> None:
    data = compact(sample(300))
    expected = read(data)
    monkeypatch.setattr(logfile, "CHUNK_SIZE", chunk)
    monkeypatch.setattr(logfile, "READ_SIZE", read_size)

    assert read(gzip.compress(data)) == expected


def test_a_record_longer_than_many_chunks_is_read_whole() -> None:
    huge = rec(1, "opsworks.amazonaws.com", requestParameters={"blob": "x" * 50_000})
    records = [rec(0), huge, rec(2), rec(3, "opsworks.amazonaws.com")]

    for split in (100, 4096, 7777):
        found, count = read(compact(records), split=split)
        assert selected(found) == [huge, records[3]]
        assert count == 4


def test_a_record_start_across_the_last_seam_splits_the_carry() -> None:
    records = [rec(0, "opsworks.amazonaws.com"), rec(1), rec(2, "opsworks.amazonaws.com")]
    data = compact(records)
    seam = data.rindex(RECORD_START) + 5  # the last start is cut in two and no later start exists
    chunks = [data[:seam], data[seam:]]

    scan = RecordScan(OPSWORKS.sources, count_records=True)
    found = list(scan.trail_records(iter(chunks), lambda: iter(chunks)))

    assert selected(found) == [records[0], records[2]]
    assert scan.records == 3


def test_multi_member_gzip_reads_like_one_member() -> None:
    data = compact(sample(200))
    third = len(data) // 3
    members = b"".join(gzip.compress(data[i:i + third]) for i in range(0, len(data), third))

    assert read(members) == read(data)


@pytest.mark.parametrize("layout", ["pretty", "crlf", "spaced"])
def test_other_layouts_fall_back_to_the_exact_parser_and_agree(layout: str) -> None:
    records = sample()
    text = {"pretty": json.dumps({"Records": records}, indent=2),
            "crlf": json.dumps({"Records": records}, indent=1).replace("\n", "\r\n"),
            "spaced": json.dumps({"Records": records})}[layout]

    found, count = read(text.encode())

    assert selected(found) == selected(read(compact(records))[0])
    assert count == len(records)


def test_needles_without_a_common_prefix_are_searched_one_by_one() -> None:
    other = Selection(frozenset({"ec2.amazonaws.com", "s3.amazonaws.com"}))
    records = sample()

    found, count = read(compact(records), sources=other.sources, split=333)

    assert [r["eventID"] for r in found if other.matches(r)] == [
        r["eventID"] for r in records if r["eventSource"] in other.sources]  # type: ignore[operator]
    assert count == len(records)


def test_the_bytes_fallback_of_the_simd_search_gives_the_same_results(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without stringzilla the reader searches with the methods of its chunks: bytes, or the inflater's
    reused bytearray (small chunks here, so that most are)."""
    monkeypatch.setattr(logfile, "CHUNK_SIZE", 4096)
    data = gzip.compress(compact(sample(500)))
    expected = read(data)
    def bytes_find(data: Chunk | memoryview, needle: bytes, start: int = 0, end: int | None = None) -> int:
        return bytes(data).find(needle, start, end)

    monkeypatch.setattr(trailfile, "_find", bytes_find)
    monkeypatch.setattr(sourcesearch, "find", bytes_find)

    assert read(data) == expected


def test_an_invalid_utf8_offset_does_not_depend_on_the_chunking() -> None:
    data = compact(sample(100))
    at = data.index(b"event-00052")  # a selected record: the fast path parses it
    bad = data[:at] + b"\xff" + data[at + 1:]
    reasons = set()
    for split in (None, 50, 999, 4096):
        with pytest.raises(BadTrailFile) as caught:
            read(bad, split=split)
        reasons.add(caught.value.reason)

    assert len(reasons) == 1 and reasons.pop().startswith("invalid UTF-8 at byte ")


@pytest.mark.parametrize("fraction", [0.0, 0.02])
def test_fast_and_exact_paths_agree_record_for_record_on_a_generated_file(tmp_path: Path, fraction: float) -> None:
    path = tmp_path / "trail.json.gz"
    stats = write_large_trail_file(path, uncompressed_bytes=400_000, opsworks_fraction=fraction, seed=5)
    data = path.read_bytes()
    body = gzip.decompress(data)
    pretty = json.dumps(json.loads(body), indent=1).encode()

    fast_all, fast_count = read(data, sources=None)
    exact_all, exact_count = read(pretty, sources=None)
    fast, _ = read(data)

    assert fast_all == exact_all
    assert fast_count == exact_count == stats.records
    assert len(selected(fast)) == stats.opsworks_records
    assert selected(fast) == selected(exact_all)
