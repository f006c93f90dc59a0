"""Reading one CloudTrail log file: which keys are log files, streamed decompression, record iteration.

Almost every trail file holds no record of the selected sources, so the reader never parses a file it
does not have to. CloudTrail writes compact JSON in which every record starts with `{"eventVersion":`;
that byte sequence cannot occur inside a JSON string (its quotes would be escaped), so it marks record
boundaries. The reader streams the decompressed bytes, looks for the selected sources' names as plain
bytes, and parses only the records that contain one. Files in any other layout (pretty-printed, keys
in another order) go through an exact streaming parser (ijson). Memory stays bounded by the chunk size
plus the largest single record, whatever the size of the file.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from enum import Enum
from typing import Any

from isal import isal_zlib

from core.errors import BadTrailFile, TooLarge
from core.model import BinaryStream

READ_SIZE = 1 << 20
"""Compressed bytes read at a time."""
CHUNK_SIZE = 4 << 20
"""Decompressed bytes handled at a time; with the carried partial record, the reader's working set."""

RECORD_START = b'{"eventVersion":'
_HEAD = re.compile(rb'\s*\{\s*"Records"\s*:\s*\[\s*')
_TAIL = re.compile(r"\s*\]\s*\}\s*")
_GZIP_MAGIC = b"\x1f\x8b"
_decoder = json.JSONDecoder(parse_float=Decimal)


class FileKind(Enum):
    TRAIL = "trail"
    """A CloudTrail log file: {"Records": [...]}, gzip or plain."""
    JSON_LINES = "json-lines"
    """One record per line (exports, a peer's test files); read only from local files."""


_TRAIL_SUFFIXES = (".json.gz", ".json")
_LINES_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz", ".log", ".log.gz")


def classify_key(key: str, size: int | None = None, *, json_lines: bool = False) -> FileKind | str:
    """The kind of log file a key names, or the reason it is not one (a skip, never a failure)."""
    name = key.rsplit("/", 1)[-1]
    if key.endswith("/"):
        return "folder placeholder"
    if "/CloudTrail-Digest/" in key or "_CloudTrail-Digest_" in name:
        return "digest file"
    if "/CloudTrail-Insight/" in key or "_CloudTrail-Insight_" in name:
        return "Insights file"
    if name == "ConfigWritabilityCheckFile":
        return "CloudTrail write check"
    lowered = name.lower()
    if lowered.endswith(_TRAIL_SUFFIXES):
        kind = FileKind.TRAIL
    elif json_lines and lowered.endswith(_LINES_SUFFIXES):
        kind = FileKind.JSON_LINES
    else:
        return "not a log file (*.json.gz or *.json)"
    if size == 0:
        return "empty object"
    return kind


def decompressed_chunks(stream: BinaryStream, max_bytes: int) -> Iterator[bytes]:
    """The object's bytes, gunzipped when they start with the gzip magic, in chunks of CHUNK_SIZE at most.

    Raises TooLarge as soon as the output passes max_bytes (a gzip bomb never fills memory), and
    BadTrailFile for a corrupt or truncated gzip stream.
    """
    first = stream.read(READ_SIZE)
    if not first.startswith(_GZIP_MAGIC):
        yield from _capped(_plain_blocks(first, stream), max_bytes)
        return
    yield from _capped(_gunzip(first, stream), max_bytes)


def _plain_blocks(first: bytes, stream: BinaryStream) -> Iterator[bytes]:
    block = first
    while block:
        yield block
        block = stream.read(CHUNK_SIZE)


def _gunzip(first: bytes, stream: BinaryStream) -> Iterator[bytes]:
    inflater = isal_zlib.decompressobj(wbits=31)
    block = first
    try:
        while block:
            out = inflater.decompress(block, CHUNK_SIZE)
            if out:
                yield out
            while inflater.unconsumed_tail:
                out = inflater.decompress(inflater.unconsumed_tail, CHUNK_SIZE)
                if out:
                    yield out
            if inflater.eof and inflater.unused_data:
                # A second gzip member follows (concatenated gzip is still gzip).
                rest = inflater.unused_data
                inflater = isal_zlib.decompressobj(wbits=31)
                block = rest
                continue
            block = stream.read(READ_SIZE)
    except isal_zlib.error as exc:  # type: ignore[misc]
        raise BadTrailFile(f"corrupt gzip data: {exc}") from exc
    if not inflater.eof:
        raise BadTrailFile("truncated gzip data: the stream ends before the gzip trailer")


def _capped(chunks: Iterable[bytes], max_bytes: int) -> Iterator[bytes]:
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > max_bytes:
            raise TooLarge(f"inflates past the cap of {max_bytes:,} bytes (MAX_DECOMPRESSED_BYTES)")
        yield chunk


class RecordScan:
    """Iterates the records of one file that may match; counts every record it passes over.

    `needles` are byte strings of which a matching record must contain one (the quoted eventSource
    values); None yields every record. The caller still applies the exact eventSource test: the
    needles are only a pre-filter.
    """

    def __init__(self, needles: tuple[bytes, ...] | None) -> None:
        self.needles = needles
        self.records = 0

    # -- CloudTrail log files -------------------------------------------------------------------------

    def trail_records(self, chunks: Iterable[bytes], reopen: Callable[[], Iterable[bytes]]) -> Iterator[Any]:
        """Records of a {"Records": [...]} file. `reopen` restarts the chunk stream for the exact path."""
        iterator = iter(chunks)
        head = b""
        for chunk in iterator:
            head += chunk
            if len(head) >= 64:
                break
        match = _HEAD.match(head)
        if match is None or not head.startswith(RECORD_START, match.end()):
            self._reject_start(head.lstrip())
            yield from self._exact(reopen())
            return
        try:
            yield from self._compact(head[match.end():], iterator)
        except _NeedsExactParse:
            # Records already yielded come again: the pipeline drops repeated event ids within a file.
            self.records = 0
            yield from self._exact(reopen())

    def _reject_start(self, stripped: bytes) -> None:
        if stripped.startswith(b"["):
            raise BadTrailFile('a top-level JSON list, not a CloudTrail log file ({"Records": [...]})')
        if not stripped.startswith(b"{"):
            raise BadTrailFile("not JSON: the file does not start with '{'")

    def _compact(self, first: bytes, rest: Iterator[bytes]) -> Iterator[Any]:
        carry = b""
        offset = 0  # decompressed bytes before `carry`, for error messages
        for chunk in itertools.chain((first,), rest):
            data = carry + chunk
            last = data.rfind(RECORD_START, max(1, len(carry) - len(RECORD_START) + 1))
            if last <= 0:
                carry = data
                continue
            yield from self._region(data, last, offset)
            carry = data[last:]
            offset += last
        yield from self._final(carry, offset)

    def _region(self, data: bytes, end: int, offset: int) -> Iterator[Any]:
        """Complete records in data[:end]; each starts with RECORD_START and ends with a comma."""
        if not data.isascii():
            _check_utf8(data[:end], offset)
        self.records += data.count(RECORD_START, 0, end)
        if self.needles is None:
            starts = list(_positions(data, RECORD_START, 0, end))
        else:
            starts = sorted({data.rfind(RECORD_START, 0, pos + 1)
                             for needle in self.needles for pos in _positions(data, needle, 0, end)})
        for start in starts:
            stop = data.find(RECORD_START, start + 1, end)
            piece = data[start:end if stop < 0 else stop].rstrip()
            if not piece.endswith(b","):
                raise _NeedsExactParse
            yield _parse_record(piece[:-1])

    def _final(self, carry: bytes, offset: int) -> Iterator[Any]:
        """The last record and the closing `]}`: parsed always, so a truncated file is caught."""
        try:
            text = carry.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadTrailFile(f"invalid UTF-8 at byte {offset + exc.start:,}") from exc
        try:
            record, end = _decoder.raw_decode(text)
        except json.JSONDecodeError as exc:
            raise _NeedsExactParse from exc
        if _TAIL.fullmatch(text, end) is None:
            raise _NeedsExactParse
        self.records += 1
        if self.needles is None or any(n in carry for n in self.needles):
            yield record

    def _exact(self, chunks: Iterable[bytes]) -> Iterator[Any]:
        """Every record (no pre-filter), through a streaming parser: any valid layout, exact errors."""
        import ijson  # loaded only for files not in CloudTrail's own compact layout

        events = ijson.parse(_ChunkReader(chunks), use_float=False)
        try:
            _, event, _ = next(events)
            if event == "start_array":
                raise BadTrailFile('a top-level JSON list, not a CloudTrail log file ({"Records": [...]})')
            if event != "start_map":
                raise BadTrailFile("not a CloudTrail log file: the top level is not a JSON object")
            seen_records = False
            for prefix, event, _ in events:
                if prefix == "Records" and event != "start_array" and not seen_records:
                    raise BadTrailFile(f"no Records list: Records is {_json_kind(event)}")
                if prefix == "Records" and event == "start_array":
                    seen_records = True
                elif prefix == "Records.item":
                    if event != "start_map":
                        raise BadTrailFile(f"record {self.records + 1} is {_json_kind(event)}, not an object")
                    self.records += 1
                    yield _build(events)
            if not seen_records:
                raise BadTrailFile("no Records list: the JSON object has no Records key")
        except ijson.JSONError as exc:
            raise BadTrailFile("invalid JSON: " + " ".join(str(exc).split())) from exc
        except UnicodeDecodeError as exc:
            raise BadTrailFile(f"invalid UTF-8: {exc.reason}") from exc

    # -- JSON Lines -----------------------------------------------------------------------------------

    def json_lines(self, chunks: Iterable[bytes]) -> Iterator[Any]:
        """One record per line; blank lines are ignored."""
        carry = b""
        line_no = 0
        for chunk in chunks:
            lines = (carry + chunk).split(b"\n")
            carry = lines.pop()
            for line in lines:
                line_no += 1
                yield from self._line(line, line_no)
        if carry.strip():
            yield from self._line(carry, line_no + 1)

    def _line(self, line: bytes, line_no: int) -> Iterator[Any]:
        if not line.strip():
            return
        self.records += 1
        if self.needles is not None and not any(n in line for n in self.needles):
            return
        try:
            record = json.loads(line, parse_float=Decimal)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BadTrailFile(f"line {line_no}: invalid JSON: {exc}") from exc
        if not isinstance(record, dict):
            raise BadTrailFile(f"line {line_no}: a record must be a JSON object")
        yield record


class _NeedsExactParse(Exception):
    """The compact fast path met something it cannot split safely; the exact parser takes over."""


class _ChunkReader:
    """A read()-able view of a chunk iterator, for ijson."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)

    def read(self, size: int = -1) -> bytes:
        if size == 0:  # ijson probes with read(0) for bytes versus str
            return b""
        return next(self._chunks, b"")


def _positions(data: bytes, needle: bytes, start: int, end: int) -> Iterator[int]:
    pos = data.find(needle, start, end)
    while pos >= 0:
        yield pos
        pos = data.find(needle, pos + len(needle), end)


def _parse_record(piece: bytes) -> Any:
    try:
        record = json.loads(piece, parse_float=Decimal)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _NeedsExactParse from exc
    if not isinstance(record, dict):
        raise _NeedsExactParse
    return record


def _check_utf8(data: bytes, offset: int) -> None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadTrailFile(f"invalid UTF-8 at byte {offset + exc.start:,}") from exc


def _build(events: Iterator[tuple[str, str, Any]]) -> Any:
    """Assemble one JSON object from ijson events, the start_map already consumed."""
    from ijson.common import ObjectBuilder

    builder = ObjectBuilder()
    builder.event("start_map", None)
    depth = 1
    for _, event, value in events:
        builder.event(event, value)
        if event in ("start_map", "start_array"):
            depth += 1
        elif event in ("end_map", "end_array"):
            depth -= 1
            if depth == 0:
                return builder.value
    raise BadTrailFile("invalid JSON: the file ends inside a record")


def _json_kind(event: str) -> str:
    return {"null": "null", "boolean": "a boolean", "number": "a number", "string": "a string",
            "start_map": "an object", "start_array": "a list"}.get(event, event)
