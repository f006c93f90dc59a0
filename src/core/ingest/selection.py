"""Which records the pipeline keeps: an exact eventSource match (ingest.trailfile searches files for the same names)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Selection:
    """Records whose eventSource is one of `sources`; None keeps every record."""

    sources: frozenset[str] | None

    def matches(self, record: Any) -> bool:
        """The decision; the byte pre-filter only narrows what reaches it."""
        if not isinstance(record, dict):
            return False
        source = record.get("eventSource")
        return self.sources is None or (isinstance(source, str) and source in self.sources)
