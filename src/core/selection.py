"""Which records the pipeline keeps: an exact eventSource match, and the bytes that pre-filter files."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Selection:
    """Records whose eventSource is one of `sources`; None keeps every record."""

    sources: frozenset[str] | None

    @property
    def needles(self) -> tuple[bytes, ...] | None:
        """Byte strings one of which any selected record contains: the quoted source names."""
        if self.sources is None:
            return None
        return tuple(sorted(f'"{source}"'.encode() for source in self.sources))

    def matches(self, record: Any) -> bool:
        """The decision; the byte pre-filter only narrows what reaches it."""
        if not isinstance(record, dict):
            return False
        source = record.get("eventSource")
        return self.sources is None or (isinstance(source, str) and source in self.sources)
