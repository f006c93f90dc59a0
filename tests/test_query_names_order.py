"""`query` as people ask: stacks and servers by name, a person by name or e-mail, newest first, page by page
with a resume token, and JSON that prints the same every time."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.main import main
from core.ingest.normalize import normalize_actor
from core.read.actors import who
from test_queries import OPSWORKS_SOURCES, expected_for, filled, in_order, raw_identities

__all__ = ["filled"]


def raw_records(root: Path, manifest: Any) -> list[dict[str, Any]]:
    records = []
    for key in manifest.log_keys:
        with gzip.open(root / key, "rt") as handle:
            records += [r for r in json.load(handle)["Records"] if r.get("eventSource") in OPSWORKS_SOURCES]
    return records


def stack_names(root: Path, manifest: Any) -> dict[str, str]:
    """Stack id -> name, from the CreateStack records as logged."""
    return {r["responseElements"]["stackId"]: r["requestParameters"]["name"] for r in raw_records(root, manifest)
            if r["eventName"] == "CreateStack" and r.get("responseElements")}


def query(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["query", "--table", "events", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def ids(text: str) -> list[str]:
    return [e["event_id"] for e in json.loads(text)]


def test_a_stack_is_found_by_its_name_as_by_its_id(filled: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _, root, manifest = filled
    names = stack_names(root, manifest)
    stack_id, name = next((i, n) for i, n in names.items() if list(names.values()).count(n) == 1)

    by_name = query(capsys, "--stack", name, "--format", "json")
    by_id = query(capsys, "--stack", stack_id, "--format", "json")

    assert by_name[0] == by_id[0] == 0
    assert ids(by_name[1]) == ids(by_id[1]) == in_order(manifest, expected_for(manifest, "stack", stack_id))


def test_an_unknown_stack_name_says_so_naming_the_stacks_and_exits_7(
        filled: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _, root, manifest = filled
    code, out, err = query(capsys, "--stack", "no-such-stack")

    assert code == 7
    assert out == ""
    assert "no stack named or with id 'no-such-stack'" in err
    assert next(iter(stack_names(root, manifest).values())) in err


def test_an_unknown_server_says_so_and_exits_7(filled: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = query(capsys, "--server", "no-such-server")

    assert code == 7
    assert "no server named or with id 'no-such-server'" in err


def test_a_person_is_found_by_e_mail(filled: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _, root, manifest = filled
    identities = raw_identities(root, manifest)
    people = {i: who(normalize_actor(identity)).name for i, identity in identities.items()}
    email = next(name for name in people.values() if "@" in name)

    code, out, _ = query(capsys, "--actor", email.upper(), "--format", "json")

    assert code == 0
    assert ids(out) == in_order(manifest, {i for i, name in people.items() if name == email})


def test_order_desc_gives_the_newest_first(filled: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _, _, manifest = filled
    newest = list(reversed(in_order(manifest, set(manifest.expected))))[:5]

    code, out, _ = query(capsys, "--order", "desc", "--limit", "5", "--format", "json")

    assert code == 0
    assert ids(out) == newest


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(limit=st.integers(min_value=15, max_value=60), order=st.sampled_from(["asc", "desc"]),
       scope=st.sampled_from([[], ["--failed"], ["--writes"]]))
def test_pages_with_resume_tokens_give_every_event_once_in_order(
        filled: Any, capsys: pytest.CaptureFixture[str], limit: int, order: str, scope: list[str]) -> None:
    _, _, manifest = filled
    code, whole, _ = query(capsys, *scope, "--order", order, "--format", "json")
    assert code == 0
    pages: list[str] = []
    resume: list[str] = []
    for _ in range(200):
        code, out, err = query(capsys, *scope, "--order", order, "--limit", str(limit), "--format", "json", *resume)
        assert code == 0
        page = ids(out)
        assert len(page) <= limit
        pages += page
        if "--resume" not in err:
            break
        resume = ["--resume", err.split("--resume ")[1].split()[0]]
    assert pages == ids(whole)
    assert len(set(pages)) == len(pages) and set(pages) <= set(manifest.expected)


def test_a_token_of_the_other_order_is_refused(filled: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _, err = query(capsys, "--limit", "1")[1:]
    token = err.split("--resume ")[1].split()[0]

    code, _, err = query(capsys, "--order", "desc", "--resume", token)

    assert code == 2
    assert "same --order" in err


def test_json_keys_come_in_one_fixed_order(filled: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = query(capsys, "--failed", "--limit", "3", "--format", "json")
    events = json.loads(out)

    for event in events:
        keys = list(event)
        assert keys[:2] == ["event_id", "event_time"]
        assert list(event["actor"]) == sorted(event["actor"])
    assert query(capsys, "--failed", "--limit", "3", "--format", "json")[1] == out
