"""Reading one CloudTrail log file: which keys are log files, streamed decompression, record iteration.

Almost every trail file holds no record of the selected sources, so the reader never parses a file it
does not have to. CloudTrail writes compact JSON in which every record starts with `{"eventVersion":`;
that byte sequence cannot occur inside a JSON string (its quotes would be escaped), so it marks record
boundaries (or a nested object's first key: a record is parsed only after `},`, else the exact parser
reads the file). The reader streams the decompressed bytes, looks for the selected sources' names as plain
bytes (one SIMD search for their common prefix, chunk by chunk, without joining chunks), and parses
only the records that name one as their eventSource (`"eventSource":"opsworks.amazonaws.com"`; any
other spelling of the key is read backwards, never missed). Files in any other layout (pretty-printed, keys
in another order) go through an exact streaming parser (ijson). Memory stays bounded by the chunk size
plus the largest single record, whatever the size of the file. Only parsed records are decoded (and so
checked for UTF-8); the rest are passed over as bytes, and counted only when asked.
"""

from __future__ import annotations

import io
import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from enum import Enum
from gzip import BadGzipFile
from typing import Any

from isal import isal_zlib

from core.errors import BadTrailFile, TooLarge
from core.model import BinaryStream


def _count_method(data: bytes | bytearray, needle: bytes, start: int = 0, end: int | None = None) -> int:
    return data.count(needle, start, end)


def _find_method(data: bytes | bytearray, needle: bytes, start: int = 0, end: int | None = None) -> int:
    return data.find(needle, start, end)


WIDE_KERNELS: tuple[str, ...] = ()
"""stringzilla's kernels before the reader kept the 128-bit ones (bench/passes.py compares)."""

try:  # SIMD substring search, several times faster than bytes.find/count on JSON text
    import stringzilla
    from stringzilla import count as _count
    from stringzilla import find as _find
except ImportError:  # pragma: no cover - the same results, slower
    _count, _find = _count_method, _find_method
else:
    WIDE_KERNELS = tuple(stringzilla.__capabilities__)
    if "westmere" in WIDE_KERNELS:
        # On x86, its 128-bit kernels only: after the 256- and 512-bit ones the core runs slower for a
        # while (the AVX frequency licence), and the inflater working between two searches pays for it.
        # Measured: plain code 10% slower right after, the skip path 0.7 ms slower per 64 MB
        # (bench/passes.py, "wide kernels").
        stringzilla.reset_capabilities(("serial", "westmere"))

READ_SIZE = 64 << 10
"""Compressed bytes read at a time (the gzip reader's input buffer). 32 to 256 KiB measure the same;
isal.igzip.IGzipFile's own 512 KiB blocks measured 8% slower."""
CHUNK_SIZE = 512 << 10
"""Decompressed bytes handled at a time; with the carried partial record, the reader's working set.
Half a MiB stays in the CPU cache between inflating it and scanning it (bench/bench.py)."""
MAX_RECORD_BYTES = 8 << 20
"""No CloudTrail record comes near this (events are at most a few hundred KB); a longer one is refused, so
one endless record can neither hold memory up to the file's size cap nor take the parsers quadratic time."""

RECORD_START = b'{"eventVersion":'
RECORD_KEY = RECORD_START[1:]
"""Counted to count records: every CloudTrail record has this key once, first or not (a record written
with other keys first is still counted), and the search runs faster without the brace (bench/passes.py)."""
SOURCE_KEY = b'"eventSource":'
"""How CloudTrail's compact layout puts the key before a source name: a needle found right after it is
the record's own eventSource, not a look-alike naming OpsWorks as a caller or a parameter."""
RECORD_SEPARATOR = b"},"
"""What precedes every record but the first in the compact layout (no whitespace between records)."""
_JSON_SPACE = frozenset(b" \t\r\n")
_HEAD = re.compile(rb'\s*\{\s*"Records"\s*:\s*\[\s*')
_TAIL = re.compile(r"\s*\]\s*\}\s*")
_GZIP_MAGIC = b"\x1f\x8b"
Chunk = bytes | bytearray
"""Decompressed bytes as the reader hands them on: a bytearray is the inflater's reused buffer."""
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


def decompressed_chunks(stream: BinaryStream, max_bytes: int) -> Iterator[Chunk]:
    """The object's bytes, gunzipped when they start with the gzip magic, in chunks of CHUNK_SIZE at most.

    A chunk is valid until the next one is asked for: gzip is inflated into one reused buffer (a
    bytearray), so copy what must outlive it (`bytes(chunk)`). Raises TooLarge as soon as the output
    passes max_bytes (a gzip bomb never fills memory), and BadTrailFile for a corrupt or truncated
    gzip stream.
    """
    first = stream.read(READ_SIZE)
    if not first.startswith(_GZIP_MAGIC):
        yield from _capped(_plain_blocks(first, stream), max_bytes)
        return
    yield from _capped(_gunzip(first, stream), max_bytes)


def _plain_blocks(first: bytes, stream: BinaryStream) -> Iterator[Chunk]:
    block = first
    while block:
        yield block
        block = stream.read(CHUNK_SIZE)


def _gunzip(first: bytes, stream: BinaryStream) -> Iterator[Chunk]:
    """Inflates into one reused buffer: a fresh half-MiB bytes object per chunk costs page faults
    (measured: 2 ms per 64 MB in the main thread, 6 ms in a worker thread, where the CLI reads).

    isal's gzip reader (what isal.igzip.IGzipFile reads through, here without its 512 KiB input
    blocks) checks every member's CRC and length, and reads concatenated members as one stream.
    """
    reader = isal_zlib._GzipReader(_Rejoined(first, stream), READ_SIZE)  # type: ignore[arg-type]
    buffer = bytearray(CHUNK_SIZE)
    try:
        while size := reader.readinto(buffer):
            yield buffer if size == len(buffer) else buffer[:size]
    except EOFError as exc:
        raise BadTrailFile("truncated gzip data: the stream ends before the gzip trailer") from exc
    except (isal_zlib.error, BadGzipFile) as exc:  # type: ignore[misc]
        raise BadTrailFile(f"corrupt gzip data: {exc}") from exc


class _Rejoined(io.RawIOBase):
    """The stream with its first block (read to look for the gzip magic) put back in front, as the
    readinto() isal's gzip reader reads from."""

    def __init__(self, first: bytes, stream: BinaryStream) -> None:
        self._first = first
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._first:
            return self._stream.readinto(buffer)
        size = min(len(self._first), len(buffer))
        buffer[:size] = self._first[:size]
        self._first = self._first[size:]
        return size


def _capped(chunks: Iterable[Chunk], max_bytes: int) -> Iterator[Chunk]:
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > max_bytes:
            raise TooLarge(f"inflates past the cap of {max_bytes:,} bytes (MAX_DECOMPRESSED_BYTES)")
        yield chunk


class RecordScan:
    """Iterates the records of one file that may match, and measures the file.

    `needles` are byte strings of which a matching record must contain one (the quoted eventSource
    values); None yields every record. On the compact fast path a needle counts only as the value of
    an eventSource key, so look-alikes are not parsed; the exact path and JSON lines yield every
    record that contains a needle. The caller still applies the exact eventSource test: the needles
    are only a pre-filter.

    `bytes_read` is the decompressed size read. `records` counts every record only with
    `count_records` (else None): on the fast path that is one more pass over every byte, about a tenth
    of the time of a file without OpsWorks records (bench/passes.py).
    """

    def __init__(self, needles: tuple[bytes, ...] | None, *, count_records: bool = False) -> None:
        self.needles = needles
        self.records: int | None = 0 if count_records else None
        self.bytes_read = 0
        prefix = _common_prefix(needles or ())
        # One search for the common prefix (b'"opsworks') instead of one per needle, when it is selective.
        self._probes: tuple[bytes, ...] = (prefix,) if len(prefix) >= 4 else tuple(needles or ())

    # -- CloudTrail log files -------------------------------------------------------------------------

    def trail_records(self, chunks: Iterable[Chunk], reopen: Callable[[], Iterable[Chunk]]) -> Iterator[Any]:
        """Records of a {"Records": [...]} file. `reopen` restarts the chunk stream for the exact path."""
        iterator = self._measured(chunks)
        head = b""
        for chunk in iterator:
            head += chunk  # a copy: the chunk's buffer is reused
            if len(head) >= 64:
                break
        match = _HEAD.match(head)
        if match is None or not head.startswith(RECORD_START, match.end()):
            self._reject_start(head.lstrip())
            yield from self._exact(self._measured(reopen()))
            return
        try:
            yield from self._compact(head[match.end():], iterator, match.end())
        except _NeedsExactParse:
            # Records already yielded come again: the pipeline drops repeated event ids within a file.
            if self.records is not None:
                self.records = 0
            yield from self._exact(self._measured(reopen()))

    def _measured(self, chunks: Iterable[Chunk]) -> Iterator[Chunk]:
        """The chunks, adding up bytes_read from zero (a second reading of the file starts again)."""
        self.bytes_read = 0
        for chunk in chunks:
            self.bytes_read += len(chunk)
            yield chunk

    def _counted(self, records: int) -> None:
        if self.records is not None:
            self.records += records

    def _reject_start(self, stripped: bytes) -> None:
        if stripped.startswith(b"["):
            raise BadTrailFile('a top-level JSON list, not a CloudTrail log file ({"Records": [...]})')
        if not stripped.startswith(b"{"):
            raise BadTrailFile("not JSON: the file does not start with '{'")

    def _compact(self, first: Chunk, rest: Iterator[Chunk], base: int) -> Iterator[Any]:
        """Records split at every RECORD_START, chunk by chunk, each chunk scanned in place.

        Only the record across a chunk seam is copied (the carried tail plus the chunk's head); a chunk
        is never concatenated with what came before, and a record longer than a chunk is joined once.
        `base` is the length of the file's head, so error offsets are file offsets. Each region is
        passed the two bytes before it (b"" at the first record) to check where a candidate starts.
        """
        parts: list[Chunk] = []  # the incomplete record(s) since the last RECORD_START
        offset = base  # decompressed bytes before parts[0], for error messages
        at = base  # the same before the current chunk
        tail: Chunk = b""  # the last two bytes before the current chunk (b"": the first record comes next)
        carried: Chunk = b""  # the two bytes before parts[0]
        for chunk in itertools.chain((first,), rest):
            cut = _find(chunk, RECORD_START)
            if cut < 0:  # no record starts wholly inside: one long record, or a start across the seam
                parts.append(bytes(chunk))  # the chunk's buffer is reused
                if at + len(chunk) - offset > MAX_RECORD_BYTES:
                    raise _record_too_long(offset)
                at += len(chunk)
                tail = _last_two(tail, chunk, len(chunk))
                continue
            last = chunk.rfind(RECORD_START)
            if parts:  # the record(s) across the seam, joined
                joint = b"".join(parts) + chunk[:cut]
                starts = self._starts(joint, 0, len(joint))
                if starts:
                    yield from self._records(joint, starts, len(joint), carried, offset)
            starts = self._starts(chunk, cut, last)
            if starts:
                yield from self._records(chunk, starts, last, tail, at)
            parts = [chunk[last:]]
            carried = _last_two(tail, chunk, last)
            offset = at + last
            at += len(chunk)
            tail = _last_two(tail, chunk, len(chunk))
        data = b"".join(parts)
        last = data.rfind(RECORD_START)
        if last > 0:  # a start across the last seam left two records in the carry
            starts = self._starts(data, 0, last)
            if starts:
                yield from self._records(data, starts, last, carried, offset)
            carried = _last_two(carried, data, last)
            data, offset = data[last:], offset + last
        yield from self._final(data, offset, carried)

    def _starts(self, data: Chunk, lo: int, hi: int) -> list[int]:
        """Counts the complete records in data[lo:hi] (each starts with RECORD_START and ends with a
        comma) and returns where the candidates among them start (all of them without needles)."""
        if lo >= hi:
            return []
        if self.records is not None:
            self.records += _count(data, RECORD_KEY, lo, hi)
        if self.needles is None:
            return list(_positions(data, RECORD_START, lo, hi))
        return self._candidates(data, lo, hi)

    def _records(self, data: Chunk, starts: list[int], hi: int, before: Chunk, base: int) -> Iterator[Any]:
        """The records starting at `starts` in data[:hi], parsed.

        `before` holds the bytes just before data[0], `base` is data[0]'s file offset. A candidate is
        parsed only where a record can start: after `},`, or at the first record. Anywhere else (a
        nested object whose first key is eventVersion, a second JSON document) the exact parser decides.
        """
        for start in starts:
            if not _after_separator(data, start, before):
                raise _NeedsExactParse
            stop = _find(data, RECORD_START, start + 1, hi)
            piece = data[start:hi if stop < 0 else stop].rstrip()
            if not piece.endswith(b","):
                raise _NeedsExactParse
            yield _parse_record(piece[:-1], base + start)

    def _candidates(self, data: Chunk, lo: int, hi: int) -> list[int]:
        """Starts of the records in data[lo:hi] that name a needle as their eventSource, each once, in order.

        One pass looks for the needles' common prefix (b'"opsworks'); a hit counts when the needle is
        the value of an eventSource key (_may_be_source_value), so look-alikes naming OpsWorks as a caller
        or a parameter are not parsed. After a counted hit the search goes on at the next record.
        """
        needles = self.needles
        assert needles is not None
        starts: list[int] = []
        for probe in self._probes:
            pos = _find(data, probe, lo, hi)
            while pos >= 0:
                if not (data.startswith(needles, pos) and _may_be_source_value(data, pos, lo)):
                    pos = _find(data, probe, pos + 1, hi)
                    continue
                starts.append(data.rfind(RECORD_START, lo, pos + 1))
                stop = _find(data, RECORD_START, pos, hi)
                pos = -1 if stop < 0 else _find(data, probe, stop, hi)
        if len(self._probes) > 1:
            return sorted(set(starts))
        return starts

    def _final(self, carry: bytes, offset: int, before: Chunk) -> Iterator[Any]:
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
        self._counted(1)
        if self.needles is None or self._candidates(carry, 0, len(carry)):
            if not _after_separator(carry, 0, before):
                raise _NeedsExactParse
            yield record

    def _exact(self, chunks: Iterable[Chunk]) -> Iterator[Any]:
        """Every record (no pre-filter), through a streaming parser: any valid layout, exact errors."""
        import ijson  # loaded only for files not in CloudTrail's own compact layout

        reader = _ChunkReader(chunks)
        events = ijson.parse(reader, use_float=False)
        try:
            _, event, _ = next(events)
            if event == "start_array":
                raise BadTrailFile('a top-level JSON list, not a CloudTrail log file ({"Records": [...]})')
            if event != "start_map":
                raise BadTrailFile("not a CloudTrail log file: the top level is not a JSON object")
            seen_records = False
            index = 0  # records so far, to name one in an error
            for prefix, event, _ in events:
                if prefix == "Records" and event != "start_array" and not seen_records:
                    raise BadTrailFile(f"no Records list: Records is {_json_kind(event)}")
                if prefix == "Records" and event == "start_array":
                    seen_records = True
                elif prefix == "Records.item":
                    if event != "start_map":
                        raise BadTrailFile(f"record {index + 1} is {_json_kind(event)}, not an object")
                    index += 1
                    self._counted(1)
                    record = _build(events)
                    reader.record_done()
                    yield record
            if not seen_records:
                raise BadTrailFile("no Records list: the JSON object has no Records key")
        except ijson.JSONError as exc:
            raise BadTrailFile("invalid JSON: " + _parser_message(exc)) from exc
        except UnicodeDecodeError as exc:
            raise BadTrailFile(f"invalid UTF-8: {exc.reason}") from exc

    # -- JSON Lines -----------------------------------------------------------------------------------

    def json_lines(self, chunks: Iterable[Chunk]) -> Iterator[Any]:
        """One record per line; blank lines are ignored."""
        carry = b""
        line_no = 0
        for chunk in self._measured(chunks):
            lines = (carry + chunk).split(b"\n")
            carry = lines.pop()
            if len(carry) > MAX_RECORD_BYTES:
                raise _record_too_long(None)
            for line in lines:
                line_no += 1
                yield from self._line(line, line_no)
        if carry.strip():
            yield from self._line(carry, line_no + 1)

    def _line(self, line: bytes, line_no: int) -> Iterator[Any]:
        if not line.strip():
            return
        self._counted(1)
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
    """A read()-able view of a chunk iterator, for ijson, that refuses an overlong record."""

    def __init__(self, chunks: Iterable[Chunk]) -> None:
        self._chunks = iter(chunks)
        self._since_record = 0  # bytes handed to the parser since the last complete record

    def read(self, size: int = -1) -> bytes:
        if size == 0:  # ijson probes with read(0) for bytes versus str
            return b""
        chunk = next(self._chunks, b"")
        self._since_record += len(chunk)
        if self._since_record > MAX_RECORD_BYTES + CHUNK_SIZE:  # one chunk of read-ahead allowed
            raise _record_too_long(None)
        return bytes(chunk)  # the parser may hold on to it; the chunk's buffer is reused

    def record_done(self) -> None:
        self._since_record = 0


def _record_too_long(offset: int | None) -> BadTrailFile:
    where = f" at byte {offset:,}" if offset is not None else ""
    return BadTrailFile(f"no record ends within the cap of {MAX_RECORD_BYTES:,} bytes{where} (MAX_RECORD_BYTES): "
                        "not a CloudTrail log file")


def search_functions() -> tuple[Callable[..., int], Callable[..., int]]:
    """The count and find the reader uses (stringzilla's, or the bytes methods without it), for bench/."""
    return _count, _find


def _positions(data: Chunk, needle: bytes, start: int, end: int) -> Iterator[int]:
    pos = _find(data, needle, start, end)
    while pos >= 0:
        yield pos
        pos = _find(data, needle, pos + len(needle), end)


def _may_be_source_value(data: Chunk, pos: int, lo: int) -> bool:
    """Whether the JSON string at data[pos] may be the value of an eventSource key (never a false no).

    Two byte tests settle nearly every hit. After `":` the key ends right before the colon: it is
    eventSource written plainly (`"eventSource":` precedes), or written with an escape (a backslash
    within the KEY_REACH bytes before the colon), or another key: a look-alike. After a single
    backslash the quote is escaped, so the hit is inside a string. Anything else is read backwards
    (_read_back_is_source_key).
    """
    if pos >= _KEY_REACH:
        if data.startswith(b'":', pos - 2):
            plain = data.startswith(SOURCE_KEY, pos - len(SOURCE_KEY))
            return plain or data.find(b"\\", pos - _KEY_REACH, pos - 2) >= 0
        if data[pos - 1] == 0x5C and data[pos - 2] != 0x5C:  # '\"': an escaped quote, inside a string
            return False
    return _read_back_is_source_key(data, pos, lo)


_KEY_REACH = 2 + 6 * len("eventSource") + 2
"""How far before a needle an eventSource key can start: `"`, 11 characters of up to 6 bytes
(`\\u0065`), `":`."""


def _read_back_is_source_key(data: Chunk, pos: int, lo: int) -> bool:
    """_may_be_source_value for the rare hit the byte tests leave open, reading back to data[lo] at most.

    A string that is not after a colon is an array element or a key; after a colon, the key decides, and
    a key with an escape in it, or anything unexpected, counts as a yes (the record is parsed and the
    caller's exact test decides), so no whitespace or escaping can hide one.
    """
    key_at = pos - len(SOURCE_KEY)
    if key_at >= lo and data.startswith(SOURCE_KEY, key_at):
        return True
    i = pos - 1
    while i >= lo and data[i] in _JSON_SPACE:
        i -= 1
    if i < lo:
        return True
    if data[i] != 0x3A:  # ':'
        return False
    i -= 1
    while i >= lo and data[i] in _JSON_SPACE:
        i -= 1
    if i < lo or data[i] != 0x22:  # '"'
        return True
    opening = data.rfind(b'"', lo, i)
    if opening <= lo:
        return True
    key = data[opening + 1:i]
    return key == b"eventSource" or b"\\" in key or data[opening - 1] == 0x5C  # '\\'


def _last_two(before: Chunk, data: Chunk, end: int) -> Chunk:
    """The two bytes before data[end], reaching into `before` (the bytes before data) without copying data."""
    return data[end - 2:end] if end >= 2 else (before + data[:end])[-2:]


def _after_separator(data: Chunk, start: int, before: Chunk) -> bool:
    """Whether the record at data[start] follows `},` (or is the file's first record: before == b"")."""
    preceding = data[start - 2:start] if start >= 2 else (before + data[:start])[-2:]
    return preceding == RECORD_SEPARATOR or preceding == b""


def _common_prefix(needles: tuple[bytes, ...]) -> bytes:
    if not needles:
        return b""
    first, last = min(needles), max(needles)
    size = 0
    while size < len(first) and first[size] == last[size]:
        size += 1
    return first[:size]


def _parse_record(piece: Chunk, offset: int) -> Any:
    """The record in piece (at file offset `offset`). Invalid UTF-8 is an error wherever the record
    came from; a JSON error may be the fast path's split, so the exact parser decides."""
    try:
        record = json.loads(piece, parse_float=Decimal)
    except UnicodeDecodeError as exc:
        raise BadTrailFile(f"invalid UTF-8 at byte {offset + exc.start:,}") from exc
    except json.JSONDecodeError as exc:
        raise _NeedsExactParse from exc
    if not isinstance(record, dict):
        raise _NeedsExactParse
    return record


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


def _parser_message(exc: Exception) -> str:
    """The parser's own words without the quoted file text around the error: a reason is stored and
    logged, and the text it quotes could hold a secret (a password in requestParameters, say)."""
    message = exc.args[0] if exc.args else ""
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    return " ".join(str(message).strip().split("\n", 1)[0].split()) or type(exc).__name__


def _json_kind(event: str) -> str:
    return {"null": "null", "boolean": "a boolean", "number": "a number", "string": "a string",
            "start_map": "an object", "start_array": "a list"}.get(event, event)
