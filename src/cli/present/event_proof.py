"""What `verify --events` prints: per account and Region the events re-derived from verified log files, then
every finding naming its event id and file."""

from __future__ import annotations

from cli.present.tables import aligned_columns
from core.read.event_proof import EventProofReport

_HEADER = ("account", "region", "status", "digests", "log files listed/read/without events",
           "events derived/stored/proven/outside")


def render_event_proof(report: EventProofReport) -> str:
    span = f" from {report.since or 'the start'} to {report.until or report.run_at}"
    lines = [f"Stored events re-derived from verified log files of {report.location}{span}", ""]
    streams = report.sorted()
    if not streams:
        lines.append("Not provable: no verified digest in the range, so no stored event can be re-derived "
                     "(log file validation off, or the digests deleted).")
    rows = [(s.account, s.region, s.status, str(s.digests),
             f"{s.files_listed}/{s.files_read}/{s.files_without_events}",
             f"{s.events_derived}/{s.events_stored}/{s.events_proven}/{s.events_outside}") for s in streams]
    if rows:
        lines += aligned_columns(_HEADER, rows)
    for s in streams:
        if s.events_outside:
            lines.append(f"{s.account} {s.region}: {s.events_outside} stored event(s) from log files outside the "
                         f"verified period {s.first} .. {s.last}: not proven by this run")
    if report.recorded:
        lines.append(report.recorded)
    findings = report.findings
    lines += ["", f"Event findings ({len(findings)}):" if findings else "No event findings."]
    lines += [f"  {f}" for f in findings]
    return "\n".join(lines) + "\n"
