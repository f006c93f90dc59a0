"""The records of one CloudTrail log file, exactly (ingest.logfile classifies keys and inflates the bytes).

Almost every trail file holds no record of the selected sources, so a file is parsed only when the byte
search (ingest.sourcesearch) finds that it may hold one; a file it passes over is never parsed.

A file that may hold one is parsed whole, from its first byte, at its true record boundaries: the bytes are
cut into segments where a record seems to start (the first record's opening, e.g. `{"eventVersion":`), and
each segment is validated as a whole by a JSON parser (msgspec) as `{"Records":[...]}`, its records kept as
bytes; only those that name a source are parsed, and then selected exactly. A cut inside a nested object
leaves brackets open, so that segment does not validate and the previous cut is tried: a nested object can
never become a record, every record is seen once, and malformed JSON anywhere in the file is reported.
Where no cut validates within MAX_RECORD_BYTES, the standard library's parser walks the records one by
one; it also settles every error, so the answer is always `json.loads`'s. Memory stays bounded by the
chunk plus the largest record, whatever the file's size.
"""

from __future__ import annotations

import bisect
import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import Any

import msgspec

from core.errors import BadTrailFile
from core.ingest.logfile import CHUNK_SIZE, Chunk
from core.ingest.sourcesearch import ESCAPE as _ESCAPE
from core.ingest.sourcesearch import REACH as _REACH
from core.ingest.sourcesearch import SPACE as _SPACE
from core.ingest.sourcesearch import SourceSearch
from core.ingest.sourcesearch import find as _find

MAX_RECORD_BYTES = 8 << 20
"""No CloudTrail record comes near this (events are at most a few hundred KB); a longer one is refused, so
one endless record can neither hold memory up to the file's size cap nor take the parsers quadratic time."""
KEEP_BYTES = 1 << 20
"""How much of a file the search keeps, so that a candidate found early is parsed without reading the file
again. A file whose first candidate comes later is read again from its start (nothing was yielded yet)."""

_OPENED = b'{"Records":['
"""Put before a segment that starts at a record, so that each segment is validated as a whole file."""
_CLOSED = b"]}"
_FIRST_RECORD = re.compile(rb'\s*\{\s*"Records"\s*:\s*\[\s*(\{\s*"(?:[^"\\]|\\.)*"\s*:)')
"""The first record's opening up to its first key's colon: where the other records' cuts are looked for."""
_TRAIL_HEAD = re.compile(rb'\s*\{\s*"Records"\s*:\s*\[')
_TRAIL_START = re.compile(rb'\s*\{\s*"Records"\s*:\s*\[\s*[{\]]')
_TRAIL_TAIL = re.compile(rb'\]\s*\}\s*\Z')
"""The two ends of a log file, checked on a file that is not parsed: a truncated or foreign file is parsed
after all, and so reported."""


# -- records --------------------------------------------------------------------------------------------


class _Segment(msgspec.Struct):
    """A file (or a segment of one, put in a file's shape) as the validator sees it: the whole text is
    checked, and each record is kept as its bytes."""

    Records: list[msgspec.Raw]


_VALIDATE = msgspec.json.Decoder(_Segment)
_decoder = json.JSONDecoder(parse_float=Decimal)


class RecordScan:
    """Yields the records of one file whose eventSource is one of `sources` (every record if None), and
    measures the file: `bytes_read` is its decompressed size; `records` counts its records only with
    `count_records` (else None), which parses every file."""

    def __init__(self, sources: frozenset[str] | None, *, count_records: bool = False) -> None:
        self.sources = sources
        self.records: int | None = 0 if count_records else None
        self.bytes_read = 0
        self._numbered = 0  # records validated so far, to name one in an error
        self._parse_every_file = sources is None or count_records
        self._search = SourceSearch(sources or frozenset())

    # -- CloudTrail log files -------------------------------------------------------------------------

    def trail_records(self, chunks: Iterable[Chunk], reopen: Callable[[], Iterable[Chunk]]) -> Iterator[Any]:
        """Records of a {"Records": [...]} file. `reopen` reads the file again from its start, for the
        file whose first candidate comes after the part the search keeps."""
        measured = self._measured(chunks)
        if self._parse_every_file:
            yield from self._parse(measured)
            return
        kept: list[bytes] | None = []
        kept_bytes = 0
        head = tail = b""
        for chunk in measured:
            if len(head) < 64:
                head += bytes(chunk[:64])
            if self._search.may_hold_source(chunk, tail) or (len(head) >= 64 and not _TRAIL_START.match(head)):
                yield from self._parse(itertools.chain(kept, (chunk,), measured) if kept is not None
                                       else self._measured(reopen()))
                return
            tail = (tail + bytes(chunk[-_REACH:]))[-_REACH:]
            kept_bytes += len(chunk)
            if kept is not None and kept_bytes <= KEEP_BYTES:
                kept.append(bytes(chunk))
            else:
                kept = None
        if not (_TRAIL_START.match(head) and _TRAIL_TAIL.search(tail)):
            # Not shaped like a log file at its ends: parsed after all, to say why (or to read it, if it is
            # valid JSON in an unusual shape).
            yield from self._parse(kept if kept is not None else self._measured(reopen()))

    def _parse(self, chunks: Iterable[Chunk]) -> Iterator[Any]:
        """Every selected record of the file, at its true boundaries (see the module docstring).

        `pending` holds the file from the last boundary on; once a boundary was found, behind the bytes
        `{"Records":[`, so that it always reads as the start of a whole file and is validated in place.
        """
        pending = bytearray()
        shift = 0  # pending[i] is the file's byte shift + i
        opened = False  # a boundary was found: pending starts with the `{"Records":[` put there
        marker: bytes | None = None
        for chunk in chunks:
            if len(pending) < 64 and not opened:
                _check_start(pending + chunk[:64], whole=False)
            pending += chunk
            if marker is None:
                marker = _record_marker(pending)
            cut = self._last_boundary(pending, marker or b"", shift)
            if cut is None and len(pending) > MAX_RECORD_BYTES + CHUNK_SIZE:
                start, walked = self._walked_boundary(pending, shift)
                cut = start, (walked, None)
            if cut is not None:
                start, (records, error) = cut
                yield from records  # what was read before an error is handed on, then the error raised
                if error is not None:
                    raise error
                pending[:start] = _OPENED
                shift += start - len(_OPENED)
                opened = True
        yield from self._rest(pending, shift, opened)

    def _last_boundary(self, pending: bytearray, marker: bytes,
                       shift: int) -> tuple[int, tuple[list[Any], BadTrailFile | None]] | None:
        """The last cut before which the bytes validate as whole records, with their selected records.

        A few of the last cuts are tried (a nested look-alike can sit at the last one); when none holds,
        the next chunk brings more cuts, and past MAX_RECORD_BYTES the standard parser walks the records.
        """
        start, looked, tries = len(pending), 0, 2
        while marker and tries and looked < 8:
            start = pending.rfind(marker, 0, start)
            if start <= len(_OPENED):
                return None
            looked += 1
            comma = start - 1
            while pending[comma] in _SPACE:
                comma -= 1
            if pending[comma] != 0x2C:  # ',': not after another record, so not a record
                continue
            tries -= 1
            saved = bytes(pending[comma:comma + 2])
            pending[comma:comma + 2] = _CLOSED  # the segment ends as a whole file, for a moment
            try:
                validated = self._validated(pending, comma + 2, shift)
            finally:
                pending[comma:comma + 2] = saved
            if validated is not None:
                return start, validated
        return None

    def _validated(self, pending: bytearray, end: int, shift: int) -> tuple[list[Any], BadTrailFile | None] | None:
        """The selected records of pending[:end] when it validates as a whole file, else None (a nested
        object cut off, or an error that a later try or the end of the file will name)."""
        if not pending.isascii():  # nearly never: then checked for UTF-8 the slow way
            try:
                pending[:end].decode()
            except UnicodeDecodeError as exc:
                raise BadTrailFile(f"invalid UTF-8 at byte {shift + exc.start:,}") from exc
        with memoryview(pending) as whole, whole[:end] as view:
            try:
                raw = _VALIDATE.decode(view).Records
            except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
                return None  # the standard parser will settle it, and hand on the records before a fault
            found, error = self._chosen(raw, view, shift)
            del raw  # the records' bytes point into pending: released before it changes size
            return found, error

    def _chosen(self, raw: list[msgspec.Raw], view: memoryview, shift: int) -> tuple[list[Any], BadTrailFile | None]:
        """The selected records among a validated segment's: only those whose bytes may name a source
        (quoted, or with a `\\u` escape) are parsed, and then selected exactly. An error is returned, not
        raised, so that no view of pending outlives the call."""
        self._counted(len(raw))
        indices = self._candidates(raw, view)
        if indices is None:
            return self._chosen_one_by_one(raw, shift)
        found: list[Any] = []
        for i in indices:
            try:
                parsed = _decoder.decode(bytes(raw[i]).decode())
            except RecursionError:
                return found, _too_deep(shift)
            if self._selects(parsed.get("eventSource")):
                found.append(parsed)
        return found, None

    def _candidates(self, raw: list[msgspec.Raw], view: memoryview) -> Iterable[int] | None:
        """Which records may name a source, found by searching the segment once: in CloudTrail's compact
        layout (each record an object, one comma between two) a hit's record follows from the records'
        lengths. None in any other layout: then each record is looked at."""
        head = _TRAIL_HEAD.match(bytes(view[:64]))
        if head is None:
            return None
        starts = list(itertools.accumulate((len(piece) + 1 for piece in raw), initial=head.end()))
        if not (all(view[at] == 0x7B for at in starts[:-1]) and all(view[at - 1] == 0x2C for at in starts[1:-1])):
            return None
        if self.sources is None:
            return range(len(raw))
        chosen: set[int] = set()
        for needle in (*self._search.probes, _ESCAPE):
            pos = _find(view, needle, starts[0])
            while pos >= 0:
                index = bisect.bisect_right(starts, pos) - 1
                if index >= len(raw):
                    break  # past the last record
                chosen.add(index)
                pos = _find(view, needle, starts[index + 1])
        return sorted(chosen)

    def _chosen_one_by_one(self, raw: list[msgspec.Raw], shift: int) -> tuple[list[Any], BadTrailFile | None]:
        """_chosen for records in another layout than CloudTrail's (rare): each one parsed."""
        found: list[Any] = []
        for number, piece in enumerate(raw, self._numbered - len(raw) + 1):
            try:
                parsed = _decoder.decode(bytes(piece).decode())
            except RecursionError:
                return found, _too_deep(shift)
            if not isinstance(parsed, dict):  # returned, not raised: a traceback would hold the view
                return found, BadTrailFile(f"record {number} is {_json_kind(parsed)}, not an object")
            if self._selects(parsed.get("eventSource")):
                found.append(parsed)
        return found, None

    def _selects(self, source: Any) -> bool:
        return self.sources is None or (isinstance(source, str) and source in self.sources)

    def _walked_boundary(self, pending: bytearray, shift: int) -> tuple[int, list[Any]]:
        """The records in pending, one by one with the standard parser: for a file where no cut validated
        within MAX_RECORD_BYTES (records in no common layout, or nested look-alikes at every cut)."""
        text = _decoded(pending, shift)
        records, end, error = self._walk(text, _head_end(text))
        if not records:
            if isinstance(error, BadTrailFile):
                raise error
            if error is not None and error.pos < len(text) - 16 and not error.msg.startswith("Unterminated"):
                raise _invalid_json(text, error, shift) from error
            raise BadTrailFile(f"no record ends within the cap of {MAX_RECORD_BYTES:,} bytes after byte "
                               f"{max(shift, 0):,} (MAX_RECORD_BYTES): not a CloudTrail log file")
        self._counted(len(records))
        return end if text.isascii() else len(text[:end].encode()), \
            [r for r in records if self._selects(r.get("eventSource"))]

    def _walk(self, text: str, at: int, *, final: bool = False
              ) -> tuple[list[dict[str, Any]], int, json.JSONDecodeError | BadTrailFile | None]:
        """The records from text[at] on that a comma follows (or the list's end, when `final`): (records,
        the index after the last comma, the error that stopped the walk, if one did)."""
        records: list[dict[str, Any]] = []
        end = at
        while True:
            try:
                record, after = _decoder.raw_decode(text, _skip_space(text, at))
            except json.JSONDecodeError as exc:
                return records, end, exc
            except RecursionError:
                return records, end, _too_deep(len(text[:at].encode()))
            comma = _skip_space(text, after)
            if final and comma < len(text) and text[comma] == "]":
                records.append(_record(record, self._numbered + len(records) + 1))
            if comma >= len(text) or text[comma] != ",":
                return records, end, None
            records.append(_record(record, self._numbered + len(records) + 1))
            at = end = comma + 1

    def _rest(self, pending: bytearray, shift: int, opened: bool) -> Iterator[Any]:
        """The file's last segment, up to its end: validated whole, else settled by the standard parser,
        which accepts what msgspec does not (a lone surrogate escape) and names any error."""
        if not opened:
            _check_start(pending, whole=True)
        validated = self._validated(pending, len(pending), shift)
        if validated is not None:
            records, error = validated
            yield from records
            if error is not None:
                raise error
            return
        text = pending.decode()  # _validated checked it
        try:
            document = _decoder.decode(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            # What was read before the error is still handed on: the records before the one at fault.
            head = _TRAIL_HEAD.match(pending[:64])
            walked, _, stopped = self._walk(text, head.end(), final=True) if head else ([], 0, None)
            yield from (r for r in walked if self._selects(r.get("eventSource")))
            if isinstance(exc, json.JSONDecodeError):
                raise _invalid_json(text, exc, shift) from exc
            raise stopped if isinstance(stopped, BadTrailFile) else _too_deep(shift) from exc
        found = [_record(r, self._numbered + i) for i, r in enumerate(_records_of(document), 1)]
        self._counted(len(found))
        yield from (r for r in found if self._selects(r.get("eventSource")))

    def _measured(self, chunks: Iterable[Chunk]) -> Iterator[Chunk]:
        """The chunks, adding up bytes_read from zero (a second reading of the file starts again)."""
        self.bytes_read = 0
        for chunk in chunks:
            self.bytes_read += len(chunk)
            yield chunk

    def _counted(self, records: int) -> None:
        self._numbered += records
        if self.records is not None:
            self.records += records

    # -- JSON Lines -----------------------------------------------------------------------------------

    def json_lines(self, chunks: Iterable[Chunk]) -> Iterator[Any]:
        """One record per line; blank lines are ignored."""
        carry = b""
        line_no = 0
        for chunk in self._measured(chunks):
            lines = (carry + chunk).split(b"\n")
            carry = lines.pop()
            if len(carry) > MAX_RECORD_BYTES:
                raise BadTrailFile(f"line {line_no + 1}: longer than the cap of {MAX_RECORD_BYTES:,} bytes "
                                   "(MAX_RECORD_BYTES)")
            for line in lines:
                line_no += 1
                yield from self._line(line, line_no)
        if carry.strip():
            yield from self._line(carry, line_no + 1)

    def _line(self, line: bytes, line_no: int) -> Iterator[Any]:
        if not line.strip():
            return
        self._counted(1)
        if not (self._parse_every_file or self._search.may_hold_source(line, b"")):
            return
        try:
            record = json.loads(line, parse_float=Decimal)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BadTrailFile(f"line {line_no}: invalid JSON: {exc}") from exc
        except RecursionError as exc:
            raise BadTrailFile(f"line {line_no}: nested deeper than the parser's limit") from exc
        if not isinstance(record, dict):
            raise BadTrailFile(f"line {line_no}: a record must be a JSON object")
        if self.sources is None or record.get("eventSource") in self.sources:
            yield record


def _decoded(pending: bytearray, shift: int) -> str:
    """pending as text, without a last character that the end of pending cuts in two."""
    try:
        return pending.decode()
    except UnicodeDecodeError as exc:
        if exc.end == len(pending) and exc.reason == "unexpected end of data":
            return pending[:exc.start].decode()
        raise BadTrailFile(f"invalid UTF-8 at byte {shift + exc.start:,}") from exc


def _record_marker(pending: bytearray) -> bytes | None:
    """The first record's opening (b'{"eventVersion":' in CloudTrail's layout); b"" where there is no
    usable one; None until enough of the file is there to tell."""
    match = _FIRST_RECORD.match(pending)
    if match is not None:
        return bytes(match.group(1))
    return b"" if len(pending) >= 4096 else None


def _head_end(text: str) -> int:
    match = _TRAIL_HEAD.match(text[:64].encode())  # the head is ASCII: its length is the same in characters
    if match is None:
        raise BadTrailFile(f"a log file over {MAX_RECORD_BYTES:,} bytes (MAX_RECORD_BYTES) must start with "
                           '{"Records":[ as CloudTrail writes it')
    return match.end()


def _check_start(data: Chunk, *, whole: bool) -> None:
    """Refuses a file that cannot be a log file by its first bytes (a bomb of zeros is stopped there)."""
    stripped = data.lstrip(_SPACE)
    if not (stripped or whole):
        return
    if stripped.startswith(b"["):
        raise BadTrailFile('a top-level JSON list, not a CloudTrail log file ({"Records": [...]})')
    if not stripped.startswith(b"{"):
        raise BadTrailFile("not JSON: the file does not start with '{'")
    head = _TRAIL_HEAD.match(stripped)
    if head is not None:
        first = stripped[head.end():].lstrip(_SPACE)[:1]
        if first and first[0] not in _VALUE_STARTS:
            at = len(data) - len(stripped[head.end():].lstrip(_SPACE))
            raise BadTrailFile(f"invalid JSON: no JSON value at byte {at:,}, where the first record should be")


_VALUE_STARTS = b'{[]"-0123456789tfn'


def _records_of(document: Any) -> list[Any]:
    if not isinstance(document, dict):
        raise BadTrailFile("not a CloudTrail log file: the top level is not a JSON object")
    if "Records" not in document:
        raise BadTrailFile("no Records list: the JSON object has no Records key")
    records = document["Records"]
    if not isinstance(records, list):
        raise BadTrailFile(f"no Records list: Records is {_json_kind(records)}")
    return records


def _record(record: Any, number: int) -> Any:
    if not isinstance(record, dict):
        raise BadTrailFile(f"record {number} is {_json_kind(record)}, not an object")
    return record


def _invalid_json(text: str, error: json.JSONDecodeError, shift: int) -> BadTrailFile:
    """The parser's reason and the file offset, never the file's text around it (it may hold a secret)."""
    at = shift + len(text[:error.pos].encode())
    return BadTrailFile(f"invalid JSON: {error.msg} at byte {at:,}")


def _too_deep(shift: int) -> BadTrailFile:
    return BadTrailFile(f"a record after byte {max(shift, 0):,} is nested deeper than the JSON parser allows")


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at] in " \t\r\n":
        at += 1
    return at


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float | Decimal):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "an object"
    return "a list"
