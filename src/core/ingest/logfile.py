"""One object as a log file: whether its key names a CloudTrail log file, and its bytes, inflated.

The first two steps of reading an object (core.ingest.trailfile reads the records): a key is classified (log
file, JSON lines, or a reason to skip it), and the object's stream is inflated in bounded chunks into one
reused buffer, with a cap on the inflated size.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from enum import Enum
from gzip import BadGzipFile
from typing import Any

from isal import igzip, isal_zlib

from core.errors import BadTrailFile, TooLarge
from core.model import BinaryStream, Skip

READ_SIZE = 64 << 10
"""Compressed bytes read at a time. 32 to 256 KiB measure the same."""
CHUNK_SIZE = 512 << 10
"""Decompressed bytes handled at a time. Half a MiB stays in the CPU cache between inflating it and
searching it (bench/bench.py)."""
Chunk = bytes | bytearray
"""Decompressed bytes as the reader hands them on: a bytearray is the inflater's reused buffer."""
_GZIP_MAGIC = b"\x1f\x8b"


class FileKind(Enum):
    TRAIL = "trail"
    """A CloudTrail log file: {"Records": [...]}, gzip or plain."""
    JSON_LINES = "json-lines"
    """One record per line (exports, a peer's test files); read only from local files."""


_TRAIL_SUFFIXES = (".json.gz", ".json")
_LINES_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz", ".log", ".log.gz")


def classify_key(key: str, size: int | None = None, *, json_lines: bool = False) -> FileKind | Skip:
    """The kind of log file a key names, or why it is not one (a skip, never a failure)."""
    name = key.rsplit("/", 1)[-1]
    if key.endswith("/"):
        return Skip("folder placeholder")
    if "/CloudTrail-Digest/" in key or "_CloudTrail-Digest_" in name:
        return Skip("digest file")
    if "/CloudTrail-Insight/" in key or "_CloudTrail-Insight_" in name:
        return Skip("Insights file")
    if name == "ConfigWritabilityCheckFile":
        return Skip("CloudTrail write check")
    lowered = name.lower()
    if lowered.endswith(_TRAIL_SUFFIXES):
        kind = FileKind.TRAIL
    elif json_lines and lowered.endswith(_LINES_SUFFIXES):
        kind = FileKind.JSON_LINES
    else:
        return Skip("not a log file (*.json.gz or *.json)")
    if size == 0:
        return Skip("empty object")
    return kind


# -- decompression ------------------------------------------------------------------------------------


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
    isal's IGzipFile checks every member's CRC and length, and reads concatenated members as one stream."""
    reader = igzip.IGzipFile(fileobj=io.BufferedReader(_Rejoined(first, stream), READ_SIZE))  # type: ignore[no-untyped-call]
    buffer = bytearray(CHUNK_SIZE)
    try:
        while size := reader.readinto(buffer):
            yield buffer if size == len(buffer) else buffer[:size]
    except EOFError as exc:
        raise BadTrailFile("truncated gzip data: the stream ends before the gzip trailer") from exc
    except (isal_zlib.error, BadGzipFile) as exc:  # type: ignore[misc]
        raise BadTrailFile(f"corrupt gzip data: {exc}") from exc


class _Rejoined(io.RawIOBase):
    """The stream with its first block (read to look for the gzip magic) put back in front."""

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
