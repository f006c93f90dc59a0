"""`opsworks-trail query` over the sample bucket in moto: each option returns exactly the expected events,
in time order, in every output format."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from cli.main import main
from test_queries import expected_for, filled, in_order, mutating, raw_identities

__all__ = ["filled"]  # the module-scoped table fixture, shared with test_queries


def run_query(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(["query", "--table", "events", *argv])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def json_ids(text: str) -> list[str]:
    return [e["event_id"] for e in json.loads(text)]


def stacks_of(manifest: Any) -> list[str]:
    return sorted({i for e in manifest.expected.values() for t, i in e.resources if t == "stack"})


def test_stack_returns_its_events_and_its_childrens_in_time_order(filled: Any, capsys: Any) -> None:
    _, _, manifest = filled
    for stack in stacks_of(manifest):
        got = json_ids(run_query(capsys, "--stack", stack, "--format", "json"))
        assert got == in_order(manifest, expected_for(manifest, "stack", stack))


def test_stack_since_keeps_only_the_window(filled: Any, capsys: Any) -> None:
    _, _, manifest = filled
    stack = stacks_of(manifest)[0]
    window = {i for i in expected_for(manifest, "stack", stack) if manifest.expected[i].event_time >= "2024-05-12"}
    got = json_ids(run_query(capsys, "--stack", stack, "--since", "2024-05-12", "--format", "json"))
    assert got == in_order(manifest, window)


def test_server_as_json_lines(filled: Any, capsys: Any) -> None:
    _, _, manifest = filled
    servers = sorted({i for e in manifest.expected.values() for t, i in e.resources if t == "server"})
    for server in servers:
        lines = run_query(capsys, "--server", server, "--format", "jsonl").splitlines()
        assert [json.loads(line)["event_id"] for line in lines] == in_order(
            manifest, expected_for(manifest, "server", server))


def test_actor_role_as_csv(filled: Any, capsys: Any) -> None:
    _, root, manifest = filled
    identities = raw_identities(root, manifest)
    role = next(i["sessionContext"]["sessionIssuer"]["arn"] for i in identities.values()
                if i.get("type") == "AssumedRole" and "deploy-automation" in i["arn"])
    rows = list(csv.DictReader(io.StringIO(run_query(capsys, "--actor", role, "--format", "csv"))))
    expected = {e for e, i in identities.items() if i.get("type") == "AssumedRole"
                and i["sessionContext"]["sessionIssuer"]["arn"] == role}
    assert [r["event_id"] for r in rows] == in_order(manifest, expected)
    assert {r["actor_name"] for r in rows} == {"deploy-automation"}


def test_failed_and_writes_across_accounts(filled: Any, capsys: Any) -> None:
    _, _, manifest = filled
    failed = {i for i, e in manifest.expected.items() if e.error_code}
    writes = {i for i, e in manifest.expected.items() if mutating(e)}
    assert json_ids(run_query(capsys, "--failed", "--format", "json")) == in_order(manifest, failed)
    assert json_ids(run_query(capsys, "--writes", "--format", "json")) == in_order(manifest, writes)
    assert json_ids(run_query(capsys, "--failed", "--writes", "--format", "json")) == in_order(
        manifest, failed & writes)


def test_stack_failed_combines(filled: Any, capsys: Any) -> None:
    _, _, manifest = filled
    failed = {i for i, e in manifest.expected.items() if e.error_code}
    for stack in stacks_of(manifest):
        got = json_ids(run_query(capsys, "--stack", stack, "--failed", "--format", "json"))
        assert got == in_order(manifest, expected_for(manifest, "stack", stack) & failed)


def test_json_keeps_numbers_numbers_and_maps_maps(filled: Any, capsys: Any) -> None:
    _, _, manifest = filled
    layer = next(i for i, e in manifest.expected.items() if e.event_name == "CreateLayer" and e.read_only is False)
    [event] = json.loads(run_query(capsys, "--id", layer, "--format", "json"))
    volume = event["request_parameters"]["volumeConfigurations"][0]
    assert volume["size"] == 50 and isinstance(volume["size"], int)
    assert isinstance(event["request_parameters"]["customRecipes"], dict)
    assert event["read_only"] is False


def test_table_shows_the_columns_and_the_limit(filled: Any, capsys: Any) -> None:
    _, _, manifest = filled
    out = run_query(capsys, "--failed", "--limit", "2").splitlines()
    assert out[0].split() == ["time", "event", "id", "account", "region", "action", "resource", "caller", "outcome"]
    first_two = in_order(manifest, {i for i, e in manifest.expected.items() if e.error_code})[:2]
    assert len(out) == 3
    for line, event_id in zip(out[1:], first_two, strict=True):
        expected = manifest.expected[event_id]
        assert line.startswith(expected.event_time) and expected.event_name in line
        assert event_id in line and expected.account_id in line and expected.region in line
        assert f"FAILED {expected.error_code}: " in line


def test_resource_option(filled: Any, capsys: Any) -> None:
    _, _, manifest = filled
    instance = next(i for e in manifest.expected.values() for t, i in e.resources if t == "instance")
    expected = {e.event_id for e in manifest.expected.values() if ("instance", instance) in e.resources}
    got = json_ids(run_query(capsys, "--resource", f"instance/{instance}", "--format", "json"))
    assert got == in_order(manifest, expected)


@pytest.mark.parametrize("argv", [["--since", "yesterday-ish"], ["--resource", "instance"],
                                  ["--since", "2024-06-01", "--until", "2024-05-01"], ["--limit", "0"]])
def test_bad_options_exit_2_with_a_message(filled: Any, capsys: Any, argv: list[str]) -> None:
    assert main(["query", "--table", "events", *argv]) == 2
    assert "opsworks-trail:" in capsys.readouterr().err
