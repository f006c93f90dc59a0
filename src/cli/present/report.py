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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from cli.present.charts import Axis, common_axis, timeline_svg
from cli.present.safe_text import for_terminal
from cli.present.tables import aligned_columns
from core.event import Event
from core.ingest.items import PARENT_TYPES
from core.read.actors import who
from core.read.event_proof import EventsShown
from core.read.verify import StreamReport

STACKS_EOL = date(2024, 5, 26)
CM_EOL = {"ChefAutomate": date(2024, 5, 5), "Puppet": date(2024, 3, 31)}
CM_EOL_UNKNOWN_ENGINE = min(CM_EOL.values())


@dataclass
class Caller:
    """One caller as core.read.actors keys them (account plus principal; a person behind a role is their own
    caller, an automation role counts all its sessions) as seen on one stack, server or account."""

    key: str
    name: str
    how: str = ""
    account: str = ""
    sessions: Counter[str] = field(default_factory=Counter)
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
    def slug(self) -> str:
        """The target's anchor in the page and its chart's `data-target`."""
        return f"{self.kind}-{self.id}"

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
    person = who(actor)
    caller = target.callers.get(person.key)
    if caller is None:
        caller = target.callers[person.key] = Caller(person.key, person.name, person.how, person.account)
    if person.session and person.session != person.name:
        caller.sessions[person.session] += 1
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
            "callers": [{"key": c.key, "name": c.name, "how": c.how, "account": c.account,
                         "sessions": dict(c.sessions.most_common()), "arns": sorted(c.arns), "events": c.events,
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
        agents = ", ".join(short_agent(a) for a, _ in caller.user_agents.most_common(2))
        lines.append(f"  {target.label}, EOL {target.eol_note}: {caller.name} ({caller.how}, {caller.account}) "
                     f"{caller.after_eol} call(s), last {caller.last}; agents: {agents}")
    return "\n".join(for_terminal(line) for line in lines) + "\n"


# -- HTML -----------------------------------------------------------------------------------------------
#
# One self-contained page (inline CSS and SVG, no script, no external asset, every value escaped), made of
# sections, each a function of the Report: HTML_SECTIONS lists them in order, so a new section (coverage,
# say) is one function added to the list. Laid out to fit 1400 px without horizontal scrolling (tables
# take the width and wrap long values; times never wrap) and to print on A4 landscape.

HtmlSection = Callable[[Report], str]

_CSS = """
:root{--ink:#1d2733;--muted:#5b6675;--line:#ccd3dd;--head:#eef1f6;--ok:#3b6fb6;--bad:#d95f02;--eol:#a4001d;
--late:#fbe9eb}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:var(--ink)}
main{max-width:1320px;margin:0 auto;padding:16px 24px}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin:1.6em 0 .4em;border-bottom:1px solid var(--line)}
h3{font-size:1.05em;margin:1.2em 0 .3em}
p{margin:.3em 0}.muted{color:var(--muted)}.late{color:var(--eol);font-weight:600}
table{border-collapse:collapse;margin:.4em 0 .8em;width:100%}
td,th{border:1px solid var(--line);padding:3px 6px;text-align:left;vertical-align:top;overflow-wrap:break-word}
.any,.how{overflow-wrap:anywhere}.nw,.id{white-space:nowrap}
th{background:var(--head);font-weight:600;white-space:nowrap}
td.n,th.n{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
.t{white-space:nowrap;font-variant-numeric:tabular-nums}
code,.id{font:12px/1.3 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.how{display:block;color:var(--muted);font-size:12px}
.act{border:2px solid var(--eol);border-radius:6px;padding:8px 14px;background:#fff8f8}
.act h2{border:0;margin:.2em 0;color:var(--eol)}.act ol{margin:.3em 0;padding-left:1.4em}.act li{margin:.25em 0}
.calm{border:2px solid var(--ok);border-radius:6px;padding:8px 14px}.calm h2{border:0;margin:.2em 0}
svg.timeline{display:block;width:100%;max-width:1000px;height:auto;margin:.3em 0}
svg text{font:11px system-ui,sans-serif;fill:var(--ink)}
.target{break-inside:auto}
@page{size:A4 landscape;margin:12mm}
@media print{body{font-size:10pt}main{max-width:none;padding:0}h2,h3{break-after:avoid}
tr,svg,.act,.calm{break-inside:avoid}a{color:inherit;text-decoration:none}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
"""


def render_html(report: Report, sections: Sequence[HtmlSection] | None = None) -> str:
    body = "".join(section(report) for section in (HTML_SECTIONS if sections is None else sections))
    return "\n".join(["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
                      '<meta name="viewport" content="width=device-width, initial-scale=1">',
                      "<title>OpsWorks retirement inventory</title>", f"<style>{_CSS}</style></head><body><main>",
                      body, "</main></body></html>"]) + "\n"


def header_section(report: Report) -> str:
    accounts = sorted({a for t in report.targets for a in t.accounts})
    return (f"<h1>OpsWorks retirement inventory</h1><p>{_e(report.events)} events from "
            f'<span class="t">{_e(report.first or "-")}</span> to <span class="t">{_e(report.last or "-")}</span>'
            f" in {_e(len(accounts))} account(s) ({_e(', '.join(accounts))}); generated "
            f'<span class="t">{_e(report.generated_at)}</span>.</p><p class="muted">End of life: OpsWorks Stacks '
            f"{_e(STACKS_EOL)}, OpsWorks for Chef Automate {_e(CM_EOL['ChefAutomate'])}, OpsWorks for Puppet "
            f"Enterprise {_e(CM_EOL['Puppet'])}. A server whose engine the trail never showed is held to the "
            "earliest.</p>")


def headline_section(report: Report) -> str:
    """What to act on, first: every caller still calling a stack or server on or after its end of life."""
    late = sorted(report.late(), key=lambda tc: tc[1].last, reverse=True)
    failed = sum(t.failed for t in report.targets)
    if not late:
        return ('<section class="calm" id="act"><h2>Nothing to act on: no call on or after end of life</h2>'
                f"<p>{_e(failed)} failed call(s) are listed under their stack or server.</p></section>")
    items = []
    for target, caller in late:
        agent = caller.user_agents.most_common(1)[0][0] if caller.user_agents else ""
        items.append(f"<li><b>{_e(caller.name)}</b> <span class=\"muted\">({_e(caller.how)}, "
                     f"{_e(caller.account)})</span> still calls {_anchor(target)}: "
                     f'<span class="late">{_e(caller.after_eol)} call(s) after end of life '
                     f'{_e(target.eol)}</span>, last <span class="t">{_e(caller.last)}</span>'
                     + (f' with <code title="{_e(agent)}">{_e(short_agent(agent))}</code>' if agent else "")
                     + "</li>")
    people = len({c.key for _, c in late})
    return (f'<section class="act" id="act"><h2>Act on these {_e(len(late))} first: {_e(people)} caller(s) still '
            f"active after end of life</h2><ol>{''.join(items)}</ol>"
            f'<p class="muted">Newest last call first. {_e(failed)} failed call(s) are listed under their stack or '
            "server, with their error messages and event ids.</p></section>")


def summary_section(report: Report) -> str:
    rows = [(_anchor(t), _e(", ".join(sorted(t.accounts))), _e(", ".join(sorted(t.regions))), _time(t.first),
             _time(t.last), _n(t.events), _n(t.failed), _n(t.writes), _n(len(t.callers)),
             _n(len(t.late_callers()), late=bool(t.late_callers()))) for t in report.targets]
    return "<h2>Stacks and servers</h2>" + _table(
        ("what", "accounts", "regions", "first call", "last call", "#events", "#failed", "#writes", "#callers",
         "#late callers"), rows)


def late_callers_section(report: Report) -> str:
    late = report.late()
    if not late:
        return "<h2>Callers still active on or after end of life</h2><p>None.</p>"
    rows = [(_e(t.label), _e(t.eol_note), _caller_cell(c), _n(c.after_eol, True), _time(c.last),
             _agents(c, 2)) for t, c in late]
    return "<h2>Callers still active on or after end of life</h2>" + _table(
        ("what", "end of life", "caller", "#after EOL", "last call", "user agents"), rows)


def targets_section(report: Report) -> str:
    axis = common_axis(report.first, report.last, [t.eol for t in report.targets] or [STACKS_EOL])
    return "".join(_target_html(target, axis) for target in report.targets)


HTML_SECTIONS: list[HtmlSection] = [header_section, headline_section, summary_section, late_callers_section,
                                    targets_section]
"""The page, in order; a new section is a function of the Report added here."""


def _target_html(target: Target, axis: Axis) -> str:
    eol = target.eol.isoformat()
    every_late = target.first >= eol
    note = (f' <span class="late">Every call here is after end of life ({_e(target.eol_note)}).</span>'
            if every_late else "")
    parts = [f'<section class="target" id="{_e(_slug(target))}"><h2>{_e(target.label)}</h2>',
             f"<p>End of life {_e(target.eol_note)}; first call {_time(target.first)}, last "
             f"{_time(target.last)}; {_e(target.events)} events, {_e(target.failed)} failed, "
             f"{_e(target.writes)} mutating.{note}</p>",
             timeline_svg(target, axis),
             _table(("caller", "#events", "#failed", "#writes", "#after EOL", "first call", "last call",
                     "user agents", "source IPs"),
                    [(_caller_cell(c), _n(c.events), _n(c.failed), _n(c.writes),
                      _n(c.after_eol, late=c.after_eol > 0), _time(c.first), _time(c.last), _agents(c, 3),
                      _e(", ".join(sorted(c.source_ips)[:3]) + (" ..." if len(c.source_ips) > 3 else "")))
                     for c in sorted(target.callers.values(), key=lambda c: (-c.events, c.key))]),
             '<p class="muted">Actions: ' + _e(", ".join(f"{a} {n}" for a, n in target.actions.most_common()))
             + "</p>"]
    if target.failed_calls:
        parts.append(f"<h3>Failed calls ({_e(len(target.failed_calls))})</h3>" + _table(
            ("time", "event id", "action", "caller", "error"),
            [(_time(e["event_time"]), f'<span class="id">{_e(e["event_id"])}</span>', _e(e.get("event_name", "")),
              _e(who(e.get("actor", {})).name),
              f'<td class="any"><b>{_e(e.get("error_code", ""))}</b> {_e(e.get("error_message", ""))}</td>')
             for e in target.failed_calls]))
    parts.append("</section>")
    return "".join(parts)


def short_agent(agent: str) -> str:
    """The product of a user agent (`aws-cli/2.13.4`, `Boto3/1.34.84`, `Terraform/1.7.5`), for tables; the
    full string goes in the cell's title."""
    words = agent.split()
    if not words:
        return ""
    for word in words:
        if word.lower().startswith(("terraform/", "aws-cli/", "boto3/", "aws-sdk-", "botocore/")):
            return word
    if words[0].startswith("Mozilla/"):
        return "web browser"
    text = words[0] if "/" in words[0] else agent.strip()  # "AWS Internal", "console.amazonaws.com"
    return text if len(text) <= 40 else text[:39] + "..."


def _agents(caller: Caller, most: int) -> str:
    return "<br>".join(f'<code title="{_e(a)}">{_e(short_agent(a))}</code> ({_e(n)})'
                       for a, n in caller.user_agents.most_common(most))


def _caller_cell(caller: Caller) -> str:
    sessions = ""
    if caller.sessions and caller.name not in caller.sessions:
        names = [s for s, _ in caller.sessions.most_common(3)]
        more = f" +{len(caller.sessions) - 3}" if len(caller.sessions) > 3 else ""
        sessions = f"; session {', '.join(names)}{more}"
    return (f'<b>{_e(caller.name)}</b><span class="how">{_e(caller.how)}, {_e(caller.account)}{_e(sessions)}'
            "</span>")


def _table(header: tuple[str, ...], rows: Iterable[tuple[str, ...]]) -> str:
    head = "".join(f'<th class="n">{_e(h[1:])}</th>' if h.startswith("#") else f"<th>{_e(h)}</th>"
                   for h in header)
    body = "".join("<tr>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _time(value: str) -> str:
    return f'<span class="t">{_e(value)}</span>'


def _n(value: int, late: bool = False) -> str:
    return f'<td class="n{" late" if late else ""}">{_e(value)}</td>'


def _anchor(target: Target) -> str:
    return f'<a href="#{_e(_slug(target))}">{_e(target.label)}</a>'


def _slug(target: Target) -> str:
    return target.slug


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


def render_coverage_text(streams: Sequence[StreamReport], proven: Sequence[EventsShown] = ()) -> str:
    """The evidence behind the inventory: per account and Region, the hours CloudTrail's digests prove
    read, and every gap or finding; said plainly when nothing is provable. Then how many of the events
    shown `verify --events` re-derived from verified log files."""
    lines = ["Coverage (CloudTrail digest files: what is proven read and unaltered)"]
    if not streams:
        lines += ["  Not provable: no digest file verified (log file validation off, or the "
                  "function's DIGEST_PUBLIC_KEYS unset). The inventory shows what was found, not "
                  "that nothing was missed."]
    else:
        lines += ["  " + line for line in aligned_columns(_COVERAGE_HEADER, _coverage_rows(streams))]
        lines += [f"  {finding}" for s in streams for finding in s.findings]
    lines += [f"  {line}" for line in _events_lines(proven)]
    return "\n".join(for_terminal(line) for line in lines) + "\n"


def _events_lines(proven: Sequence[EventsShown]) -> list[str]:
    return [f"{p.account} {p.region}: {p.re_derived} of {p.shown} shown events re-derived from verified log files "
            + (f"(verify --events at {p.verified_at}: {p.status})" if p.verified_at else
               "(verify --events has not run over them)") for p in proven]


def coverage_section_html(streams: Sequence[StreamReport], proven: Sequence[EventsShown] = ()) -> str:
    parts = ["<h2>Coverage: what CloudTrail's digest files prove</h2>"]
    if proven:
        parts.append(_table(("account", "region", "events shown", "re-derived from verified log files",
                             "verify --events"),
                            [(_e(p.account), _e(p.region), _n(p.shown), _n(p.re_derived, late=p.re_derived < p.shown),
                              _e(f"{p.verified_at} ({p.status})" if p.verified_at else "not run"))
                             for p in proven]))
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


def add_coverage_html(page: str, streams: Sequence[StreamReport], proven: Sequence[EventsShown] = ()) -> str:
    """The report page with the coverage section added before its end."""
    head, sep, tail = page.rpartition("</body>")
    section = coverage_section_html(streams, proven)
    return f"{head}{section}\n{sep}{tail}" if sep else page + section
