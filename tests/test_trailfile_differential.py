"""The reader against a plain full parse, on generated trail files (issue 12's differential test).

Every generated file is valid JSON; the reader must yield exactly the records `json.loads` of the whole file
selects, in order, whatever the layout, the chunking, the gzip members, the escapes, the key order and the
nested look-alikes (objects inside a record that look like an OpsWorks record). Damaged copies of the same
files must either give the same answer as `json.loads` or be refused with BadTrailFile, never yield a
record that `json.loads` would not.

`make test` runs 150 examples of each; `make fuzz` many more (READER_FUZZ_EXAMPLES, 3,000 by default).
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import BadTrailFile
from core.ingest import logfile, trailfile
from core.ingest.logfile import decompressed_chunks
from core.ingest.trailfile import RecordScan

pytestmark = pytest.mark.fuzz

SOURCES = frozenset({"opsworks.amazonaws.com", "opsworks-cm.amazonaws.com"})
EXAMPLES = int(os.environ.get("READER_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

source = st.sampled_from([*sorted(SOURCES), "s3.amazonaws.com", "ec2.amazonaws.com", "iam.amazonaws.com"])
text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12) | st.sampled_from(
    ['{"eventVersion":"1.08","eventSource":"opsworks.amazonaws.com"}', '},{"eventVersion":', '"opsworks',
     "\\u006f", "]}", "\\"])
scalar = st.none() | st.booleans() | st.integers(-10**30, 10**30) | text | st.decimals(
    allow_nan=False, allow_infinity=False, places=3)


def lookalike(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A nested object that looks like an OpsWorks record, its keys in any order."""
    return st.fixed_dictionaries(
        {"eventVersion": st.just("1.08"), "eventSource": st.sampled_from(sorted(SOURCES)),
         "eventName": st.just("DeleteStack")},
        optional={"eventID": st.uuids().map(str), "more": inner}).flatmap(_shuffled)


def _shuffled(record: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.permutations(list(record.items())).map(dict)


nested = st.recursive(
    scalar,
    lambda inner: st.lists(inner | lookalike(inner), max_size=4)
    | st.dictionaries(text, inner | lookalike(inner), max_size=4),
    max_leaves=12)


@st.composite
def record(draw: st.DrawFn, index: int) -> Any:
    fields: dict[str, Any] = {"eventVersion": "1.09", "eventSource": draw(source), "eventName": "Call",
                              "eventID": f"event-{index:05d}"}
    if draw(st.booleans()):
        fields["requestParameters"] = draw(nested)
    if draw(st.booleans()):
        fields["userIdentity"] = {"invokedBy": draw(source), "items": draw(st.lists(lookalike(nested), max_size=3))}
    if draw(st.integers(0, 9)) == 0:  # keys in another order
        return draw(_shuffled(fields))
    return fields


@st.composite
def trail_file(draw: st.DrawFn) -> tuple[bytes, list[Any]]:
    """(the file's bytes, its records), in one of the layouts a trail file can have."""
    count = draw(st.integers(0, 12))
    records = [draw(record(i)) for i in range(count)]
    layout = draw(st.sampled_from(["compact", "spaced", "indent1", "indent2", "tab", "crlf"]))
    ascii_only = draw(st.booleans())
    document = {"Records": records}
    if layout == "compact":
        body = json.dumps(document, separators=(",", ":"), ensure_ascii=ascii_only, default=str)
    elif layout == "spaced":
        body = json.dumps(document, ensure_ascii=ascii_only, default=str)
    elif layout == "crlf":
        body = json.dumps(document, indent=1, ensure_ascii=ascii_only, default=str).replace("\n", "\r\n")
    else:
        indent = {"indent1": 1, "indent2": 2, "tab": "\t"}[layout]
        body = json.dumps(document, indent=indent, ensure_ascii=ascii_only, default=str)
    data = body.encode()
    if draw(st.integers(0, 5)) == 0:  # a source name spelled with an escape
        data = data.replace(b'"opsworks', b'"\\u006Fpsworks')
    data = draw(st.sampled_from([b"", b" ", b"\n"])) + data + draw(st.sampled_from([b"", b"\n", b"  \r\n"]))
    return data, json.loads(data)["Records"]


def expected(records: list[Any]) -> list[Any]:
    return [r for r in records if isinstance(r, dict) and r.get("eventSource") in SOURCES]


def delivered(data: bytes, how: str, split: int) -> bytes:
    if how == "gzip":
        return gzip.compress(data)
    if how == "members":
        return b"".join(gzip.compress(data[i:i + split]) for i in range(0, len(data), split)) or gzip.compress(b"")
    return data


def read(data: bytes, split: int | None, count_records: bool, small: bool,
         records: list[Any]) -> tuple[list[Any], RecordScan]:
    """The reader as the pipeline runs it; `small` shrinks the chunk and the record cap so the segment
    cuts, the kept prefix, the second reading and the record walk are all reached on small files."""
    def chunks() -> Iterator[bytes]:
        if split is None or data.startswith(b"\x1f\x8b"):
            return (bytes(c) for c in decompressed_chunks(_Stream(data), 1 << 40))
        return iter([data[i:i + split] for i in range(0, len(data), split)])

    with ExitStack() as stack:
        if small:
            stack.enter_context(mock.patch.object(trailfile, "CHUNK_SIZE", 64))  # the walk comes sooner
            stack.enter_context(mock.patch.object(logfile, "CHUNK_SIZE", 64))  # and gzip inflates in small chunks
            stack.enter_context(mock.patch.object(trailfile, "KEEP_BYTES", 128))
            stack.enter_context(mock.patch.object(trailfile, "MAX_RECORD_BYTES", _record_cap(records)))
        scan = RecordScan(SOURCES, count_records=count_records)
        return list(scan.trail_records(chunks(), chunks)), scan


def _record_cap(records: list[Any]) -> int:
    """A record cap above the largest record in any layout, well below most files: so the record walk
    (no cut validated within the cap) is reached."""
    return 3 * max((len(json.dumps(r, indent=2, default=str)) for r in records), default=0) + 256


class _Stream:
    def __init__(self, data: bytes) -> None:
        import io
        self._data = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._data.read(size)

    def readinto(self, buffer: Any) -> int:
        return self._data.readinto(buffer)

    def close(self) -> None:
        pass


@FUZZ
@given(trail_file(), st.sampled_from(["plain", "gzip", "members"]), st.integers(1, 300), st.booleans(),
       st.booleans())
def test_the_reader_selects_exactly_what_a_full_parse_selects(file: tuple[bytes, list[Any]], how: str,
                                                              split: int, count_records: bool,
                                                              small: bool) -> None:
    data, records = file

    found, scan = read(delivered(data, how, split), split, count_records, small, records)

    assert found == expected(records)
    assert scan.bytes_read == len(data)
    if count_records:
        assert scan.records == len(records)


@FUZZ
@given(trail_file(), st.data())
def test_a_damaged_file_is_refused_or_read_as_a_full_parse_reads_it(file: tuple[bytes, list[Any]],
                                                                     data: st.DataObject) -> None:
    original, records = file
    at = data.draw(st.integers(0, max(0, len(original) - 1)))
    damage = data.draw(st.sampled_from(["truncate", "insert", "replace", "append"]))
    junk = data.draw(st.sampled_from([b"}", b"]", b",", b'"', b"{", b"\xff", b"\\", b"x", b"]}", b'{"Records":[]}']))
    damaged = {"truncate": original[:at], "insert": original[:at] + junk + original[at:],
               "replace": original[:at] + junk + original[at + 1:], "append": original + junk}[damage]
    try:
        oracle: list[Any] | None = expected(json.loads(damaged)["Records"])
    except (ValueError, KeyError, TypeError):
        oracle = None

    for count_records in (False, True):
        try:
            found, _ = read(damaged, data.draw(st.integers(1, 200)), count_records, data.draw(st.booleans()),
                            records)
        except BadTrailFile:
            assert oracle is None or _not_a_trail_file(damaged)
            continue
        if oracle is not None:
            assert found == oracle
        else:  # the reader passed over a file it never had to parse: it yields nothing from it
            assert found == [] and not count_records


def _not_a_trail_file(data: bytes) -> bool:
    """Valid JSON the reader still refuses: records that are not objects."""
    try:
        return not all(isinstance(r, dict) for r in json.loads(data)["Records"])
    except (ValueError, KeyError, TypeError):
        return True


def test_every_seam_of_a_file_with_a_forged_record_gives_the_same_answer() -> None:
    """A nested look-alike after `},` and before another record-like object, the chunk seam at every byte."""
    forged = {"eventVersion": "1.08", "eventSource": "opsworks.amazonaws.com", "eventName": "DeleteStack"}
    records = [
        {"eventVersion": "1.09", "eventSource": "s3.amazonaws.com", "eventID": "a"},
        {"eventVersion": "1.09", "eventSource": "ec2.amazonaws.com", "eventID": "b",
         "requestParameters": {"items": [{"x": 1}, forged, {"eventVersion": "3"}]}},
        {"eventVersion": "1.09", "eventSource": "opsworks.amazonaws.com", "eventID": "c"},
    ]
    data = json.dumps({"Records": records}, separators=(",", ":")).encode()

    for seam in range(1, len(data)):
        for small in (False, True):
            scan = RecordScan(SOURCES)
            with ExitStack() as stack:
                if small:
                    stack.enter_context(mock.patch.object(trailfile, "KEEP_BYTES", 16))
                halves = [data[:seam], data[seam:]]
                found = list(scan.trail_records(iter(halves), lambda halves=halves: iter(halves)))
            assert found == [records[2]], seam
