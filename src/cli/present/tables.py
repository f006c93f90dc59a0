"""Terminal tables: the one column layout every command prints (query, failures, verify, report)."""

from __future__ import annotations

from collections.abc import Sequence


def aligned_columns(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Plain aligned columns, two spaces apart; the last is not padded (it is the long one)."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
    return ["  ".join([*(c.ljust(w) for c, w in zip(row[:-1], widths[:-1], strict=True)), row[-1]]).rstrip()
            for row in [header, *rows]]
