"""The report's charts: a timeline of calls per day (or week) per stack or server, as inline SVG.

Apart from the page (cli.present.report) so that the drawing, its axis and ticks read on their
own. May import the standard library only; the page hands each chart what it draws.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Protocol

WEEKLY_AFTER_DAYS = 120
"""Timelines longer than this count events per week (Monday-based) instead of per day."""


class Timeline(Protocol):
    """What a timeline draws: one stack's or server's calls per day and its failed calls."""

    @property
    def label(self) -> str: ...
    @property
    def slug(self) -> str: ...
    @property
    def eol(self) -> date: ...
    @property
    def eol_note(self) -> str: ...
    @property
    def per_day(self) -> Mapping[str, int]: ...
    @property
    def failed_calls(self) -> Sequence[Mapping[str, Any]]: ...


@dataclass(frozen=True)
class Axis:
    """The common time axis of every timeline: from the first call (or the earliest end of life, if
    sooner) to the last call (or the latest end of life, if later), so each end-of-life line has a place."""

    buckets: list[date]
    weekly: bool


def common_axis(first_call: str, last_call: str, eols: Sequence[date]) -> Axis:
    """The axis shared by every timeline of a page: calls from `first_call` to `last_call` (ISO times;
    empty when there is none), widened to each end of life."""
    if not first_call:
        return Axis([], False)
    first = min(date.fromisoformat(first_call[:10]), *eols)
    last = max(date.fromisoformat(last_call[:10]), *eols)
    weekly = (last - first).days > WEEKLY_AFTER_DAYS
    start, end = _bucket(first, weekly), _bucket(last, weekly)
    step = timedelta(days=7 if weekly else 1)
    days = []
    while start <= end:
        days.append(start)
        start += step
    return Axis(days, weekly)


def timeline_svg(target: Timeline, axis: Axis, width: int = 1000, height: int = 170) -> str:
    """Calls per day (or week) on the common axis, failed calls stacked in their own colour, the time
    after end of life shaded, a labelled end-of-life line, and labelled x and y axes."""
    if not axis.buckets:
        return ""
    buckets, weekly = axis.buckets, axis.weekly
    ok: Counter[date] = Counter()
    bad: Counter[date] = Counter()
    failed_days = Counter(e["event_time"][:10] for e in target.failed_calls)
    for day, n in target.per_day.items():
        bucket = _bucket(date.fromisoformat(day), weekly)
        bad[bucket] += failed_days.get(day, 0)
        ok[bucket] += n - failed_days.get(day, 0)
    top = max([ok[b] + bad[b] for b in buckets] + [1])
    left, right, top_pad, bottom_pad = 46, 12, 22, 40
    plot_w, plot_h = width - left - right, height - top_pad - bottom_pad
    base = top_pad + plot_h
    step = plot_w / len(buckets)
    unit = "week" if weekly else "day"
    eol = _bucket(target.eol, weekly)
    eol_x = left + buckets.index(eol) * step if eol in buckets else left
    near_right = eol_x > left + plot_w - 140
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" data-target="{_e(target.slug)}" '
           f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
           f'aria-label="{_e(target.label)}: calls per {unit}, end of life {_e(target.eol)}">',
           f'<rect class="after-eol" x="{eol_x:.1f}" y="{top_pad}" width="{left + plot_w - eol_x:.1f}" '
           f'height="{plot_h}" fill="#fbe9eb"><title>after end of life</title></rect>']
    for value in sorted({0, top // 2, top}):  # y axis: gridlines and labels
        y = base - plot_h * value / top
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#dde2ea"/>'
                   f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_e(value)}</text>')
    out.append(f'<text x="12" y="{top_pad + plot_h / 2:.1f}" text-anchor="middle" '
               f'transform="rotate(-90 12 {top_pad + plot_h / 2:.1f})">calls/{unit}</text>')
    for i, bucket in enumerate(buckets):
        x = left + i * step + 0.5
        bar_w = max(1.0, step - 1)
        h_ok, h_bad = plot_h * ok[bucket] / top, plot_h * bad[bucket] / top
        when = f"{'week of ' if weekly else ''}{bucket}"
        if ok[bucket]:
            out.append(f'<rect x="{x:.1f}" y="{base - h_ok:.1f}" width="{bar_w:.1f}" height="{max(h_ok, 1):.1f}" '
                       f'fill="#3b6fb6"><title>{_e(when)}: {_e(ok[bucket])} call(s)</title></rect>')
        if bad[bucket]:
            out.append(f'<rect x="{x:.1f}" y="{base - h_ok - h_bad:.1f}" width="{bar_w:.1f}" '
                       f'height="{max(h_bad, 1):.1f}" fill="#d95f02"><title>{_e(when)}: {_e(bad[bucket])} '
                       "failed call(s)</title></rect>")
    out.append(f'<line x1="{left}" y1="{base}" x2="{left + plot_w}" y2="{base}" stroke="#667"/>')
    for i, bucket in _ticks(buckets):  # x axis: dated ticks
        x = left + i * step
        out.append(f'<line x1="{x:.1f}" y1="{base}" x2="{x:.1f}" y2="{base + 4}" stroke="#667"/>'
                   f'<text x="{x:.1f}" y="{base + 16}" text-anchor="middle">{_e(bucket.strftime("%b %d"))}</text>')
    out.append(f'<text x="{left}" y="{height - 4}" class="year">{_e(buckets[0].year)}'
               f'{"" if buckets[0].year == buckets[-1].year else "-" + str(buckets[-1].year)}, per {unit} (UTC)'
               "</text>")
    out.append(f'<g class="eol"><line x1="{eol_x:.1f}" y1="{top_pad - 6}" x2="{eol_x:.1f}" y2="{base}" '
               f'stroke="#a4001d" stroke-width="2" stroke-dasharray="5 3"/>'
               f'<text x="{eol_x + (-4 if near_right else 4):.1f}" y="{top_pad - 8}" fill="#a4001d" '
               f'text-anchor="{"end" if near_right else "start"}">end of life {_e(target.eol)}</text>'
               f"<title>end of life {_e(target.eol_note)}</title></g>")
    legend_x, legend_y = left + plot_w - 250, height - 14
    out.append(f'<g class="legend"><rect x="{legend_x}" y="{legend_y}" width="10" height="10" fill="#3b6fb6"/>'
               f'<text x="{legend_x + 14}" y="{legend_y + 9}">calls</text>'
               f'<rect x="{legend_x + 60}" y="{legend_y}" width="10" height="10" fill="#d95f02"/>'
               f'<text x="{legend_x + 74}" y="{legend_y + 9}">failed</text>'
               f'<rect x="{legend_x + 124}" y="{legend_y}" width="10" height="10" fill="#fbe9eb" stroke="#a4001d"/>'
               f'<text x="{legend_x + 138}" y="{legend_y + 9}">after end of life</text></g>')
    out.append("</svg>")
    return "".join(out)


def _ticks(buckets: list[date], most: int = 10) -> list[tuple[int, date]]:
    """Evenly spaced x-axis labels: every k-th bucket, at most `most` of them, the last one included."""
    every = max(1, -(-len(buckets) // most))
    picked = list(range(0, len(buckets), every))
    if len(buckets) - 1 - picked[-1] >= every / 2:
        picked.append(len(buckets) - 1)
    return [(i, buckets[i]) for i in picked]


def _bucket(day: date, weekly: bool) -> date:
    return day - timedelta(days=day.weekday()) if weekly else day


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)
