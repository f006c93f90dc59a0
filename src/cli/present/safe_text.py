"""Text a caller chose, made safe for the people who read it: no formula a spreadsheet runs, no control
character a terminal obeys.

Whoever makes an API call chooses its user agent, many request parameters and some error text, and
those reach people through `query`, `report`, `failures` and `verify`. The HTML report escapes markup
already (html.escape); these two cover the other ways out. JSON and JSON lines stay exact: they are for
programs, which read the escapes themselves.
"""

from __future__ import annotations

import re

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""OWASP, CSV Injection: a cell beginning with one of these may be run as a formula by a spreadsheet."""

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""C0 (newline and tab included: a cell is one line), DEL, C1 (0x9b is CSI, a one-byte ESC [), and the
bidirectional controls that reorder what a terminal shows (Trojan Source, CVE-2021-42574)."""
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\x1b"}


def for_terminal(text: str) -> str:
    """The text with every control character shown as an escape (`\\x1b`, `\\r`, `\\u009b`), so printing
    it moves no cursor, sets no colour, rewrites no line and hides nothing. Idempotent."""
    return _CONTROL.sub(_escape, text)


def for_terminal_lines(text: str) -> str:
    """A text of several lines, each shown as for_terminal shows it; its line breaks kept."""
    return "\n".join(for_terminal(line) for line in text.split("\n"))


def csv_cell(text: str) -> str:
    """A CSV cell no spreadsheet runs: a leading `=`, `+`, `-`, `@`, tab or carriage return gets a single
    quote before it (OWASP's advice; the csv module quotes the cell where needed), and control characters
    are shown escaped as in a terminal."""
    if text.startswith(FORMULA_STARTS):
        text = "'" + text
    return for_terminal(text)


def _escape(found: re.Match[str]) -> str:
    char = found.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}"
