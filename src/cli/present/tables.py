"""Terminal tables: the one column layout every command prints (query, failures, verify, report)."""

from __future__ import annotations

from collections.abc import Sequence

from cli.present.safe_text import for_terminal


def aligned_columns(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Plain aligned columns, two spaces apart; the last is not padded (it is the long one). Every cell is
    shown with its control characters escaped (cli.present.safe_text): a cell can hold what a caller chose."""
    header = [for_terminal(cell) for cell in header]
    rows = [[for_terminal(cell) for cell in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
    return ["  ".join([*(c.ljust(w) for c, w in zip(row[:-1], widths[:-1], strict=True)), row[-1]]).rstrip()
            for row in [header, *rows]]
