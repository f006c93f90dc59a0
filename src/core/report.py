"""The retirement inventory: per stack and per server, who still calls, how, and after end of life.

Built from events the caller read with Queries (by_account over each account): nothing here talks to
DynamoDB. Events are attributed to every stack / server they name, and to the stack / server owning a
layer, instance, app, deployment or backup they name (learnt from the events naming both, the same rule
as the table's relation items). Events naming neither (DescribeStacks with no ids, user profiles) are
kept under their account, so the inventory accounts for every call.

End-of-life dates (AWS documentation): OpsWorks Stacks 2024-05-26; OpsWorks for Chef Automate
2024-05-05; OpsWorks for Puppet Enterprise 2024-03-31. A server whose engine the trail never showed
(no CreateServer in range) gets the earliest OpsWorks CM date, so no late caller goes unnoticed.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from core.store import PARENT_TYPES, actor_partition
from core.verify import StreamReport

Event = dict[str, Any]

STACKS_EOL = date(2024, 5, 26)
CM_EOL = {"ChefAutomate": date(2024, 5, 5), "Puppet": date(2024, 3, 31)}
CM_EOL_UNKNOWN_ENGINE = min(CM_EOL.values())
WEEKLY_AFTER_DAYS = 120
"""Timelines longer than this count events per week (Monday-based) instead of per day."""


@dataclass
class Caller:
    """One principal (a role counts all its sessions) as seen on one stack, server or account."""

    key: str
    name: str
    arns: set[str] = field(default_factory=set)
    events: int = 0
    failed: int = 0
    writes: int = 0
    after_eol: int = 0
    first: str = ""
    last: str = ""
    user_agents: Counter[str] = field(default_factory=Counter)
    source_ips: set[str] = field(default_factory=set)


@dataclass
class Target:
    """A stack, a server, or an account's calls that name neither."""

    kind: str  # stack | server | account
    id: str
    name: str = ""
    engine: str = ""
    accounts: set[str] = field(default_factory=set)
    regions: set[str] = field(default_factory=set)
    events: int = 0
    failed: int = 0
    writes: int = 0
    first: str = ""
    last: str = ""
    callers: dict[str, Caller] = field(default_factory=dict)
    actions: Counter[str] = field(default_factory=Counter)
    per_day: Counter[str] = field(default_factory=Counter)
    failed_calls: list[Event] = field(default_factory=list)

    @property
    def eol(self) -> date:
        if self.kind == "server":
            return CM_EOL.get(self.engine, CM_EOL_UNKNOWN_ENGINE)
        return STACKS_EOL

    @property
    def label(self) -> str:
        named = self.name and self.name != self.id
        return f"{self.kind} {self.name} ({self.id})" if named else f"{self.kind} {self.id}"

    @property
    def eol_note(self) -> str:
        """The end-of-life date and what it rests on."""
        if self.kind != "server":
            return f"{self.eol} (OpsWorks Stacks)"
        return f"{self.eol} ({self.engine})" if self.engine in CM_EOL else f"{self.eol} (engine unknown: earliest)"

    def late_callers(self) -> list[Caller]:
        return sorted((c for c in self.callers.values() if c.after_eol), key=lambda c: (-c.after_eol, c.key))


@dataclass
class Report:
    targets: list[Target]
    events: int
    first: str
    last: str
    generated_at: str

    def late(self) -> list[tuple[Target, Caller]]:
        """(target, caller) pairs with calls on or after the target's end-of-life date."""
        return [(t, c) for t in self.targets for c in t.late_callers()]


def build_report(events: Iterable[Event], now: datetime | None = None) -> Report:
    stored = list(events)
    owner: dict[tuple[str, str], tuple[str, str]] = {}
    names: dict[tuple[str, str], str] = {}
    engines: dict[str, str] = {}
    for event in stored:
        named = _resources(event)
        for parent in (r for r in named if r[0] in PARENT_TYPES):
            for child in (r for r in named if r[0] in PARENT_TYPES[parent[0]]):
                owner[child] = parent
        request = event.get("request_parameters") or {}
        response = event.get("response_elements") or {}
        if event.get("event_name") == "CreateStack" and isinstance(response, dict) and response.get("stackId"):
            names[("stack", str(response["stackId"]))] = str(request.get("name", ""))
        if isinstance(request, dict) and request.get("serverName") and request.get("engine"):
            engines[str(request["serverName"])] = str(request["engine"])
    targets: dict[tuple[str, str], Target] = {}
    for event in stored:
        named = _resources(event)
        keys = {r for r in named if r[0] in PARENT_TYPES} | {owner[r] for r in named if r in owner}
        if not keys:
            keys = {("account", str(event.get("account_id", "unknown")))}
        for key in keys:
            target = targets.get(key)
            if target is None:
                target = targets[key] = Target(key[0], key[1], name=names.get(key, ""),
                                               engine=engines.get(key[1], "") if key[0] == "server" else "")
            _add(target, event)
    order = {"stack": 0, "server": 1, "account": 2}
    times = [e["event_time"] for e in stored]
    return Report(targets=sorted(targets.values(), key=lambda t: (order[t.kind], t.first, t.id)),
                  events=len(stored), first=min(times, default=""), last=max(times, default=""),
                  generated_at=_iso(now or datetime.now(UTC)))


def _resources(event: Event) -> set[tuple[str, str]]:
    return {(str(r["type"]), str(r["id"])) for r in event.get("resources", [])}


def _add(target: Target, event: Event) -> None:
    when = str(event["event_time"])
    failed = event.get("outcome") == "failure"
    write = event.get("read_only") is False
    late = when >= target.eol.isoformat()
    target.events += 1
    target.failed += failed
    target.writes += write
    target.first = min(target.first or when, when)
    target.last = max(target.last, when)
    target.actions[str(event.get("event_name", ""))] += 1
    target.per_day[when[:10]] += 1
    if event.get("account_id"):
        target.accounts.add(str(event["account_id"]))
    if event.get("region"):
        target.regions.add(str(event["region"]))
    if failed:
        target.failed_calls.append(event)
    actor = event.get("actor", {})
    key = actor_partition(actor) or "unknown"
    caller = target.callers.get(key)
    if caller is None:
        caller = target.callers[key] = Caller(key, str(actor.get("name") or key))
    caller.events += 1
    caller.failed += failed
    caller.writes += write
    caller.after_eol += late
    caller.first = min(caller.first or when, when)
    caller.last = max(caller.last, when)
    if actor.get("arn"):
        caller.arns.add(str(actor["arn"]))
    if event.get("user_agent"):
        caller.user_agents[str(event["user_agent"])] += 1
    if event.get("source_ip"):
        caller.source_ips.add(str(event["source_ip"]))


def as_dict(report: Report) -> dict[str, Any]:
    """The report as plain JSON-ready data (for --format json)."""
    return {
        "generated_at": report.generated_at, "events": report.events, "first": report.first, "last": report.last,
        "targets": [{
            "kind": t.kind, "id": t.id, "name": t.name, "engine": t.engine, "end_of_life": t.eol.isoformat(),
            "accounts": sorted(t.accounts), "regions": sorted(t.regions), "events": t.events, "failed": t.failed,
            "writes": t.writes, "first": t.first, "last": t.last, "actions": dict(t.actions.most_common()),
            "callers": [{"key": c.key, "name": c.name, "arns": sorted(c.arns), "events": c.events,
                         "failed": c.failed, "writes": c.writes, "after_end_of_life": c.after_eol,
                         "first": c.first, "last": c.last, "user_agents": dict(c.user_agents.most_common()),
                         "source_ips": sorted(c.source_ips)}
                        for c in sorted(t.callers.values(), key=lambda c: (-c.events, c.key))],
        } for t in report.targets],
    }


# -- terminal -------------------------------------------------------------------------------------------

def render_text(report: Report) -> str:
    lines = [f"OpsWorks inventory: {report.events} events, {report.first or '-'} .. {report.last or '-'}", ""]
    header = ("what", "accounts", "first", "last", "events", "failed", "writes", "callers", "late callers")
    rows: list[tuple[str, ...]] = [
        (t.label, ",".join(sorted(t.accounts)), t.first, t.last, str(t.events), str(t.failed), str(t.writes),
         str(len(t.callers)), str(len(t.late_callers()))) for t in report.targets]
    lines += aligned_columns(header, rows)
    late = report.late()
    lines += ["", f"Callers still active on or after end of life ({len(late)}):" if late
              else "No caller was active on or after end of life."]
    for target, caller in late:
        agents = ", ".join(a for a, _ in caller.user_agents.most_common(2))
        lines.append(f"  {target.label}, EOL {target.eol_note}: {caller.name} [{caller.key}] "
                     f"{caller.after_eol} call(s), last {caller.last}; agents: {agents}")
    return "\n".join(lines) + "\n"


def aligned_columns(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Plain aligned columns, two spaces apart; the last is not padded (it is the long one)."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
    return ["  ".join([*(c.ljust(w) for c, w in zip(row[:-1], widths[:-1], strict=True)), row[-1]]).rstrip()
            for row in [header, *rows]]


# -- HTML -----------------------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,sans-serif;margin:2em;color:#1d2733}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccd}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccd;padding:.25em .5em;text-align:left;
vertical-align:top}th{background:#eef1f6}td.n{text-align:right}.late{color:#a4001d;font-weight:600}
code{font-size:.9em}svg{display:block;margin:.5em 0}.muted{color:#667}
"""


def render_html(report: Report) -> str:
    """One self-contained page: inline CSS and SVG, no scripts, no external assets; every value escaped."""
    buckets = _buckets(report)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>OpsWorks retirement inventory</title>", f"<style>{_CSS}</style></head><body>",
             "<h1>OpsWorks retirement inventory</h1>",
             f"<p>{_e(report.events)} events from {_e(report.first or '-')} to {_e(report.last or '-')}; "
             f"generated {_e(report.generated_at)}. End of life: OpsWorks Stacks {_e(STACKS_EOL)}, "
             f"Chef Automate {_e(CM_EOL['ChefAutomate'])}, Puppet Enterprise {_e(CM_EOL['Puppet'])}.</p>",
             "<h2>Summary</h2>", _table(
                 ("what", "accounts", "regions", "first", "last", "events", "failed", "writes", "callers",
                  "late callers"),
                 [(_anchor(t), _e(", ".join(sorted(t.accounts))), _e(", ".join(sorted(t.regions))), _e(t.first),
                   _e(t.last), _n(t.events), _n(t.failed), _n(t.writes), _n(len(t.callers)),
                   _n(len(t.late_callers()), late=bool(t.late_callers()))) for t in report.targets])]
    late = report.late()
    parts.append("<h2>Callers still active on or after end of life</h2>")
    if late:
        parts.append(_table(("what", "end of life", "caller", "principal", "calls after", "last call", "user agents"),
                            [(_e(t.label), _e(t.eol_note), _e(c.name), f"<code>{_e(c.key)}</code>",
                              _n(c.after_eol, True), _e(c.last),
                              _e("; ".join(a for a, _ in c.user_agents.most_common(3))))
                             for t, c in late]))
    else:
        parts.append("<p>None.</p>")
    for target in report.targets:
        parts += [f'<h2 id="{_e(_slug(target))}">{_e(target.label)}</h2>',
                  f"<p>End of life {_e(target.eol_note)}; "
                  f"first {_e(target.first)}, last {_e(target.last)}; {_e(target.events)} events, "
                  f"{_e(target.failed)} failed, {_e(target.writes)} mutating.</p>",
                  timeline_svg(target, buckets),
                  _table(("caller", "principal", "events", "failed", "writes", "after EOL", "first", "last",
                          "user agents", "source IPs"),
                         [(_e(c.name), f"<code>{_e(c.key)}</code>", _n(c.events), _n(c.failed), _n(c.writes),
                           _n(c.after_eol, late=c.after_eol > 0), _e(c.first), _e(c.last),
                           "<br>".join(f"{_e(a)} ({_e(n)})" for a, n in c.user_agents.most_common()),
                           _e(", ".join(sorted(c.source_ips))))
                          for c in sorted(target.callers.values(), key=lambda c: (-c.events, c.key))]),
                  "<p class=\"muted\">Actions: " + _e(", ".join(f"{a} {n}" for a, n in target.actions.most_common()))
                  + "</p>"]
        if target.failed_calls:
            parts.append(_table(("time", "action", "error", "caller"),
                                [(_e(e["event_time"]), _e(e.get("event_name", "")), _e(e.get("error_code", "")),
                                  _e(e.get("actor", {}).get("name", ""))) for e in target.failed_calls]))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def timeline_svg(target: Target, buckets: list[date], width: int = 720, height: int = 110) -> str:
    """Bars of events per day (or week) on the report's common time axis, with the end-of-life line."""
    if not buckets:
        return ""
    weekly = len(buckets) > 1 and (buckets[1] - buckets[0]).days == 7
    counts = Counter(_bucket(date.fromisoformat(day), weekly) for day in target.per_day.elements())
    top = max(counts.values(), default=1)
    left, bottom, plot_h = 36, height - 22, height - 36
    step = (width - left - 8) / len(buckets)
    unit = "week of" if weekly else "day"
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
           f'aria-label="{_e(target.label)}: events per {"week" if weekly else "day"}">',
           f'<line x1="{left}" y1="{bottom}" x2="{width - 8}" y2="{bottom}" stroke="#99a"/>',
           f'<text x="{left - 4}" y="{bottom - plot_h + 10}" font-size="10" text-anchor="end">{_e(top)}</text>',
           f'<text x="{left - 4}" y="{bottom}" font-size="10" text-anchor="end">0</text>']
    for i, bucket in enumerate(buckets):
        n = counts.get(bucket, 0)
        if n:
            h = max(1.0, plot_h * n / top)
            out.append(f'<rect x="{left + i * step + 0.5:.1f}" y="{bottom - h:.1f}" width="{max(1.0, step - 1):.1f}" '
                       f'height="{h:.1f}" fill="#3b6fb6"><title>{_e(unit)} {_e(bucket)}: {_e(n)} events</title></rect>')
    eol = _bucket(target.eol, weekly)
    if buckets[0] <= eol <= buckets[-1]:
        x = left + buckets.index(eol) * step if eol in buckets else left
        out.append(f'<line x1="{x:.1f}" y1="{bottom - plot_h}" x2="{x:.1f}" y2="{bottom}" stroke="#a4001d" '
                   f'stroke-dasharray="4 3"><title>end of life {_e(target.eol)}</title></line>')
        out.append(f'<text x="{x + 3:.1f}" y="{bottom - plot_h + 10}" font-size="10" fill="#a4001d">EOL</text>')
    out.append(f'<text x="{left}" y="{height - 6}" font-size="10">{_e(buckets[0])}</text>')
    out.append(f'<text x="{width - 8}" y="{height - 6}" font-size="10" text-anchor="end">{_e(buckets[-1])}</text>')
    out.append("</svg>")
    return "".join(out)


def _buckets(report: Report) -> list[date]:
    """The common axis: every day (or week) from the first event to the last."""
    if not report.first:
        return []
    first, last = date.fromisoformat(report.first[:10]), date.fromisoformat(report.last[:10])
    weekly = (last - first).days > WEEKLY_AFTER_DAYS
    start, end = _bucket(first, weekly), _bucket(last, weekly)
    step = timedelta(days=7 if weekly else 1)
    days = []
    while start <= end:
        days.append(start)
        start += step
    return days


def _bucket(day: date, weekly: bool) -> date:
    return day - timedelta(days=day.weekday()) if weekly else day


def _table(header: tuple[str, ...], rows: Iterable[tuple[str, ...]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _n(value: int, late: bool = False) -> str:
    return f'<td class="n{" late" if late else ""}">{_e(value)}</td>'


def _anchor(target: Target) -> str:
    return f'<a href="#{_e(_slug(target))}">{_e(target.label)}</a>'


def _slug(target: Target) -> str:
    return f"{target.kind}-{target.id}"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- coverage: how much of the trail is proven read (digest files; issue 14) ---------------------------

_COVERAGE_HEADER = ("account", "region", "status", "hours proven", "from", "to", "digests verified/failed",
                    "log files listed/ingested/missing/altered", "findings")


def _coverage_rows(streams: Sequence[StreamReport]) -> list[tuple[str, ...]]:
    return [(s.account, s.region, s.status, f"{s.hours_verified:,.0f}", s.first or "-", s.last or "-",
             f"{s.verified}/{s.failed}", f"{s.listed}/{s.ingested}/{s.missing}/{s.altered}"
             + (f" (+{s.pending} pending)" if s.pending else ""), str(len(s.findings))) for s in streams]


def render_coverage_text(streams: Sequence[StreamReport]) -> str:
    """The evidence behind the inventory: per account and Region, the hours CloudTrail's digests prove
    read, and every gap or finding; said plainly when nothing is provable."""
    lines = ["Coverage (CloudTrail digest files: what is proven read and unaltered)"]
    if not streams:
        return "\n".join([*lines, "  Not provable: no digest file verified (log file validation off, or the "
                          "function's DIGEST_PUBLIC_KEYS unset). The inventory shows what was found, not "
                          "that nothing was missed.", ""])
    lines += ["  " + line for line in aligned_columns(_COVERAGE_HEADER, _coverage_rows(streams))]
    lines += [f"  {finding}" for s in streams for finding in s.findings]
    return "\n".join(lines) + "\n"


def coverage_section_html(streams: Sequence[StreamReport]) -> str:
    parts = ["<h2>Coverage: what CloudTrail's digest files prove</h2>"]
    if not streams:
        parts.append("<p class=\"late\">Not provable: no digest file verified (log file validation off, or the "
                     "function's DIGEST_PUBLIC_KEYS unset). The inventory shows what was found, not that "
                     "nothing was missed.</p>")
        return "\n".join(parts)
    parts.append(_table(_COVERAGE_HEADER, [(*(_e(c) for c in row[:-1]), _n(int(row[-1]), late=row[-1] != "0"))
                                           for row in _coverage_rows(streams)]))
    findings = [f for s in streams for f in s.findings]
    if findings:
        parts.append(_table(("kind", "object", "detail"),
                            [(_e(f.kind), f"<code>{_e(f.uri)}</code>", _e(f.detail)) for f in findings]))
    return "\n".join(parts)


def add_coverage_html(page: str, streams: Sequence[StreamReport]) -> str:
    """The report page with the coverage section added before its end."""
    head, sep, tail = page.rpartition("</body>")
    return f"{head}{coverage_section_html(streams)}\n{sep}{tail}" if sep else page + coverage_section_html(streams)
