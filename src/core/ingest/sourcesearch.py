"""The byte search that spares almost every log file its parse: may these bytes hold a selected eventSource?

A selected eventSource value is a JSON string, so a file holding one must contain it quoted
(`"opsworks`...), or spelled with a `\\u00XX` escape of one of its characters. The search finds either in
the inflated bytes, and judges each quoted hit by the bytes before it: a hit counts unless it certainly is
not a record's eventSource (never a false no). ingest.trailfile parses a file only when this says yes, and
then parses only the records it points at.
"""

from __future__ import annotations

from core.ingest.logfile import Chunk

__all__ = ["ESCAPE", "REACH", "SPACE", "SourceSearch", "find"]

try:  # SIMD substring search, several times faster than bytes.find on JSON text
    from stringzilla import find
except ImportError:  # pragma: no cover - the same results, slower
    def find(data: bytes | bytearray | memoryview, needle: bytes, start: int = 0, end: int | None = None) -> int:
        return (data.tobytes() if isinstance(data, memoryview) else data).find(needle, start, end)

ESCAPE = b"\\u"
SPACE = b" \t\r\n"


class SourceSearch:
    """The search for the quoted names of `sources`: `probes` are the needles searched for."""

    def __init__(self, sources: frozenset[str]) -> None:
        quoted = sorted(f'"{source}"'.encode() for source in sources)
        prefix = _common_prefix(quoted)
        # One search for the common prefix (b'"opsworks') instead of one per source, when it is selective.
        self.probes: tuple[bytes, ...] = (prefix,) if len(prefix) >= 4 else tuple(quoted)
        self._quoted = tuple(quoted)
        self._longest = max(map(len, quoted), default=0)
        self._escapable = frozenset(b for name in quoted for b in name[1:-1])

    def may_hold_source(self, chunk: Chunk, tail: bytes) -> bool:
        """Whether a selected eventSource value can be in chunk (tail: the REACH bytes before it).

        A hit counts unless it certainly is not a record's eventSource: the value of another key
        (`"invokedBy":"opsworks.amazonaws.com"`: OpsWorks calling EC2 is common), or inside a string.
        """
        joint = tail + bytes(chunk[:REACH + self._longest])  # hits near the seam, with what precedes them
        for data, start in ((joint, 0), (chunk, REACH)):
            for probe in self.probes:
                pos = find(data, probe, start)
                while pos >= 0:
                    if data.startswith(self._quoted, pos) and _may_be_source_value(data, pos):
                        return True
                    pos = find(data, probe, pos + 1)
        return self._escapes_a_source_character(chunk) or self._escapes_a_source_character(joint)

    def _escapes_a_source_character(self, data: Chunk) -> bool:
        """A `\\u00XX` escape of a character of a source name (`\\u003d` for `=` is common, and harmless)."""
        pos = find(data, ESCAPE)
        while pos >= 0:
            digits = bytes(data[pos + 2:pos + 6])
            if len(digits) == 4 and digits[:2] == b"00" and _hex(digits) in self._escapable:
                return True
            pos = find(data, ESCAPE, pos + 1)
        return False


def _hex(digits: bytes) -> int:
    try:
        return int(digits, 16)
    except ValueError:
        return -1


_KEY_REACH = 2 + 6 * len("eventSource") + 2
"""How far before a value an eventSource key can start: `"`, 11 characters of up to 6 bytes (`\\u0065`), `":`."""
REACH = 128
"""Bytes of the chunk before kept to judge a hit near the seam (more than _KEY_REACH)."""
_SOURCE_KEY = b'"eventSource":'


def _may_be_source_value(data: bytes | bytearray, pos: int) -> bool:
    """Whether the JSON string at data[pos] may be the value of an eventSource key (never a false no).

    After `":` the key ends right before the colon: it is eventSource written plainly, or written with
    an escape (a backslash within _KEY_REACH bytes), or another key. After a single backslash the quote
    is escaped, so the hit is inside a string. Anything else is read backwards.
    """
    if pos >= _KEY_REACH:
        if data.startswith(b'":', pos - 2):
            return data.startswith(_SOURCE_KEY, pos - len(_SOURCE_KEY)) or data.find(b"\\", pos - _KEY_REACH,
                                                                                     pos - 2) >= 0
        if data[pos - 1] == 0x5C and data[pos - 2] != 0x5C:  # '\"': an escaped quote, inside a string
            return False
    return _read_back_is_source_key(data, pos)


def _read_back_is_source_key(data: bytes | bytearray, pos: int) -> bool:
    """_may_be_source_value for the rare hit the byte tests leave open (whitespace around the colon, the
    start of the data). A string not after a colon is an array element or a key; after a colon the key
    decides; a key with an escape in it, or anything unexpected, counts as a yes."""
    i = pos - 1
    while i >= 0 and data[i] in SPACE:
        i -= 1
    if i < 0:
        return True
    if data[i] != 0x3A:  # ':'
        return False
    i -= 1
    while i >= 0 and data[i] in SPACE:
        i -= 1
    if i < 0 or data[i] != 0x22:  # '"'
        return True
    opening = data.rfind(b'"', 0, i)
    if opening <= 0:
        return True
    key = data[opening + 1:i]
    return key == b"eventSource" or b"\\" in key or data[opening - 1] == 0x5C  # '\\'


def _common_prefix(names: list[bytes]) -> bytes:
    if not names:
        return b""
    first, last = min(names), max(names)
    size = 0
    while size < len(first) and first[size] == last[size]:
        size += 1
    return first[:size]
