"""The retirement report over the sample bucket: per stack and server, first and last activity, callers,
failed and mutating calls, and who still called after end of life, checked against the manifest."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cli.main import main
from cli.present.report import Report, build_report, render_html, render_text
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


# -- the page designed for the decision ---------------------------------------------------------------------

def _event(event_id: str, when: str, *, resources: list[dict[str, str]], account: str = "111122223333",
           actor: dict[str, Any] | None = None, error: tuple[str, str] | None = None,
           agent: str = "aws-cli/2.15.30 Python/3.11.8") -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": event_id, "event_time": when, "event_name": "DescribeServers", "service": "opsworks-cm",
        "outcome": "failure" if error else "success", "read_only": True, "account_id": account,
        "region": "us-east-1", "user_agent": agent, "resources": resources,
        "actor": actor or {"type": "IAMUser", "arn": f"arn:aws:iam::{account}:user/alice", "name": "alice",
                           "account_id": account}}
    if error:
        event["error_code"], event["error_message"] = error
    return event


def _eol_marks(page: str) -> list[str]:
    return re.findall(r'<g class="eol"><line x1="([0-9.]+)"', page)


def test_a_server_called_only_after_end_of_life_still_shows_the_line_and_says_every_call_is_late() -> None:
    server = [{"type": "server", "id": "late-server"}]
    page = render_html(build_report([_event("e1", "2024-06-10T00:00:00Z", resources=server),
                                     _event("e2", "2024-06-12T00:00:00Z", resources=server)]))

    assert len(_eol_marks(page)) == page.count('class="timeline"') == 1
    assert "Every call here is after end of life" in page
    assert float(_eol_marks(page)[0]) >= 46  # inside the plot, at the axis's start or later


def test_the_headline_names_what_to_act_on_with_last_call_and_user_agent() -> None:
    stack = [{"type": "stack", "id": "s-1"}]
    page = render_html(build_report([_event("e1", "2024-05-01T00:00:00Z", resources=stack),
                                     _event("e2", "2024-06-02T08:00:00Z", resources=stack)]))
    headline = page[page.index('id="act"'):page.index("</section>")]

    assert "Act on these 1 first" in headline
    assert "alice" in headline and "2024-06-02T08:00:00Z" in headline and "aws-cli/2.15.30" in headline


def test_nothing_to_act_on_is_said_plainly() -> None:
    page = render_html(build_report([_event("e1", "2024-01-01T00:00:00Z", resources=[{"type": "stack", "id": "s"}])]))

    assert "Nothing to act on" in page


def test_failed_calls_show_their_error_message_and_event_id() -> None:
    page = render_html(build_report([_event("0f1e2d3c-aaaa-bbbb-cccc-111122223333", "2024-05-01T00:00:00Z",
                                            resources=[{"type": "server", "id": "srv"}],
                                            error=("AccessDenied", "User is not authorized to perform it"))]))

    assert "0f1e2d3c-aaaa-bbbb-cccc-111122223333" in page
    assert "AccessDenied" in page and "User is not authorized to perform it" in page


def test_same_named_users_of_two_accounts_are_two_callers() -> None:
    stack = [{"type": "stack", "id": "s-1"}]
    report = build_report([_event("e1", "2024-05-01T00:00:00Z", resources=stack, account="111122223333"),
                           _event("e2", "2024-05-02T00:00:00Z", resources=stack, account="444455556666")])

    callers = report.targets[0].callers.values()
    assert len(callers) == 2
    assert {c.account for c in callers} == {"111122223333", "444455556666"}


def test_an_identity_center_user_is_the_caller_not_their_role() -> None:
    role = "AWSReservedSSO_ReadOnly_0123456789abcdef"
    actor = {"type": "AssumedRole", "arn": f"arn:aws:sts::111122223333:assumed-role/{role}/dana@example.com",
             "session_issuer_arn": f"arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/{role}",
             "name": role, "account_id": "111122223333"}
    report = build_report([_event("e1", "2024-05-01T00:00:00Z", resources=[{"type": "stack", "id": "s"}],
                                  actor=actor)])

    caller = next(iter(report.targets[0].callers.values()))
    assert caller.name == "dana@example.com"
    assert "Identity Center, permission set ReadOnly" in caller.how


days = st.dates(min_value=date(2023, 6, 1), max_value=date(2025, 6, 1))


@settings(max_examples=40, deadline=None)
@given(spans=st.lists(st.tuples(st.sampled_from(["stack", "server"]), st.integers(0, 3), days), min_size=1,
                      max_size=12))
def test_every_timeline_has_its_end_of_life_line_inside_its_plot(spans: list[tuple[str, int, date]]) -> None:
    events = [_event(f"e{i}", f"{day.isoformat()}T12:00:00Z", resources=[{"type": kind, "id": f"{kind}-{n}"}])
              for i, (kind, n, day) in enumerate(spans)]
    page = render_html(build_report(events))

    timelines = re.findall(r'<svg [^>]*class="timeline".*?</svg>', page)
    assert len(timelines) == len({(k, n) for k, n, _ in spans})
    for svg in timelines:
        x = float(re.findall(r'<g class="eol"><line x1="([0-9.]+)"', svg)[0])
        assert 46 <= x <= 1000 - 12


def test_the_demo_counts_same_named_users_of_two_accounts_as_two_callers(capsys: pytest.CaptureFixture[str]) -> None:
    from workshop.demo import print_callers_and_failures

    stack = [{"type": "stack", "id": "s-1"}]
    events = [_event("e1", "2024-05-01T00:00:00Z", resources=stack, account="111122223333"),
              _event("e2", "2024-05-02T00:00:00Z", resources=stack, account="444455556666"),
              _event("e3", "2024-05-03T00:00:00Z", resources=stack, account="444455556666")]

    print_callers_and_failures(events, [])
    out = capsys.readouterr().out

    assert "alice (IAM user, 111122223333)" in out and "alice (IAM user, 444455556666)" in out
    assert "1 calls" in out and "2 calls" in out
