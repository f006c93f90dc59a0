"""The retirement report over the sample bucket: per stack and server, first and last activity, callers,
failed and mutating calls, and who still called after end of life, checked against the manifest."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cli.main import main
from core.report import Report, build_report, render_html, render_text
from test_queries import expected_for, filled, mutating, raw_identities

__all__ = ["filled"]

STACKS_EOL = "2024-05-26"
CM_EOL = {"ChefAutomate": "2024-05-05", "Puppet": "2024-03-31"}


@pytest.fixture(scope="module")
def report(filled: Any) -> Report:
    queries, _, _ = filled
    return build_report(queries.all_events(), now=datetime(2024, 6, 1, tzinfo=UTC))


def test_every_stack_and_server_has_its_activity_counts_and_span(filled: Any, report: Report) -> None:
    _, _, manifest = filled
    targets = {(t.kind, t.id): t for t in report.targets}
    parents = {(t, i) for e in manifest.expected.values() for t, i in e.resources if t in ("stack", "server")}
    assert parents <= set(targets)
    for kind, pid in parents:
        mine = [manifest.expected[i] for i in expected_for(manifest, kind, pid)]
        target = targets[(kind, pid)]
        assert target.events == len(mine)
        assert target.first == min(e.event_time for e in mine)
        assert target.last == max(e.event_time for e in mine)
        assert target.failed == sum(1 for e in mine if e.error_code)
        assert target.writes == sum(1 for e in mine if mutating(e))


def test_every_event_is_in_the_inventory(filled: Any, report: Report) -> None:
    _, _, manifest = filled
    assert report.events == len(manifest.expected)
    accounts = [t for t in report.targets if t.kind == "account"]
    assert sum(t.events for t in report.targets) >= len(manifest.expected)
    assert all(t.id in manifest.accounts for t in accounts)


def test_late_callers_are_those_calling_on_or_after_end_of_life(filled: Any, report: Report) -> None:
    _, root, manifest = filled
    identities = raw_identities(root, manifest)
    for target in (t for t in report.targets if t.kind == "stack"):
        late = [i for i in expected_for(manifest, "stack", target.id)
                if manifest.expected[i].event_time >= STACKS_EOL]
        assert sum(c.after_eol for c in target.callers.values()) == len(late)
        expected_arns = {identities[i].get("arn") for i in late} - {None}
        assert {a for c in target.late_callers() for a in c.arns} == expected_arns
    assert report.late(), "the sample spans the Stacks end of life"


def test_servers_use_their_engines_end_of_life(report: Report) -> None:
    servers = [t for t in report.targets if t.kind == "server"]
    assert {t.engine for t in servers} >= {"ChefAutomate", "Puppet"}
    for server in servers:
        assert server.eol.isoformat() == CM_EOL.get(server.engine, min(CM_EOL.values()))
        late = sum(c.after_eol for c in server.callers.values())
        if server.engine == "Puppet":
            assert late == server.events  # the sample starts after Puppet Enterprise's end of life


def test_callers_carry_their_user_agents(report: Report) -> None:
    stack = next(t for t in report.targets if t.kind == "stack" and t.name)
    agents = {a for c in stack.callers.values() for a in c.user_agents}
    assert agents and any(a.startswith(("aws-cli/", "Boto3/", "APN/", "Mozilla/", "console")) for a in agents)


def test_html_is_self_contained_with_one_timeline_per_target(report: Report) -> None:
    page = render_html(report)
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page and "<link" not in page and "src=" not in page
    assert re.findall(r'(?:href|src)="(?!#)', page) == []
    assert page.count("<svg") == len(report.targets)
    assert "EOL" in page


def test_html_escapes_every_value() -> None:
    evil = '<script>alert("x")</script>'
    event = {"event_id": "e1", "event_time": "2024-05-27T10:00:00Z", "event_name": "CreateStack",
             "service": "opsworks", "outcome": "failure", "error_code": evil, "read_only": False,
             "account_id": "111122223333", "region": "us-east-1", "user_agent": evil, "source_ip": evil,
             "actor": {"type": "IAMUser", "arn": f"arn:aws:iam::111122223333:user/{evil}", "name": evil},
             "resources": [{"type": "stack", "id": f'"><img src=x onerror=alert(1)>{evil}'}],
             "request_parameters": {"name": evil}, "response_elements": {"stackId": f'"><img src=x>{evil}'}}
    page = render_html(build_report([event]))
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;" in page


def test_text_report_lists_targets_and_late_callers(report: Report) -> None:
    text = render_text(report)
    assert all(t.label in text for t in report.targets)
    assert "on or after end of life" in text


def test_report_command_writes_html_and_json(filled: Any, tmp_path: Path, capsys: Any) -> None:
    page = tmp_path / "report.html"
    assert main(["report", "--table", "events", "--html", str(page), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    _, _, manifest = filled
    assert data["events"] == len(manifest.expected)
    assert {t["kind"] for t in data["targets"]} >= {"stack", "server"}
    assert "<svg" in page.read_text()
    assert main(["report", "--table", "events", "--account", manifest.accounts[0]]) == 0
    assert "OpsWorks inventory" in capsys.readouterr().out
