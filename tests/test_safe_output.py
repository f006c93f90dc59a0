"""What a caller chose reaches people harmless: CSV cells no spreadsheet runs as formulas, terminal text
with no live control character, JSON exact. Every caller-chosen field is tried with generated hostile text."""

from __future__ import annotations

import copy
import csv
import io
import json
import re
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.main import main
from cli.present.report import build_report, render_text
from cli.present.safe_text import FORMULA_STARTS, csv_cell, for_terminal
from cli.query import write
from core.event import Event
from core.ingest.catalog import load_catalog
from core.ingest.items import event_items
from core.ingest.normalize import normalize
from core.ingest.store import EventStore
from core.keys import account_head_key, account_registry_key
from core.model import ObjectRef

CATALOG = load_catalog()
SOURCE = ObjectRef("trail-bucket", "AWSLogs/111122223333/CloudTrail/us-east-1/2024/06/01/f.json.gz")
LIVE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
"""What must never reach a terminal raw (a line break only between lines, never inside a cell's text)."""
HOSTILE_PIECES = ["=HYPERLINK(\"http://x\")", "@SUM(A1)", "+cmd|' /C calc'!A0", "-2+3", "\t=1", "\r=1",
                  "\x1b[2J", "\x1b]0;pwned\x07", "\r", "\n", "\x9b31m", "\u202e", "\x00", "\x7f", ",", "\""]
hostile_text = st.lists(st.one_of(st.sampled_from(HOSTILE_PIECES), st.text(max_size=8)), min_size=1,
                        max_size=5).map("".join).filter(bool)

IAM_USER = {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": "arn:aws:iam::111122223333:user/alice",
            "accountId": "111122223333", "accessKeyId": "AKIAEXAMPLE", "userName": "alice"}


def hostile_record(text: str) -> dict[str, Any]:
    """A failed CreateLayer whose every caller-chosen field holds `text`."""
    identity = copy.deepcopy(IAM_USER)
    identity["userName"] = text
    identity["arn"] = f"arn:aws:iam::111122223333:user/{text}"
    return {
        "eventVersion": "1.09", "userIdentity": identity, "eventTime": "2024-06-01T10:15:30Z",
        "eventSource": "opsworks.amazonaws.com", "eventName": "CreateLayer", "awsRegion": "us-east-1",
        "sourceIPAddress": text, "userAgent": text, "errorCode": text, "errorMessage": text,
        "requestParameters": {"stackId": text, "name": text, "type": "custom"},
        "requestID": "req-1", "eventID": "evt-1", "readOnly": False, "eventType": "AwsApiCall",
        "recipientAccountId": "111122223333",
    }


def hostile_event(text: str) -> Event:
    return normalize(hostile_record(text), SOURCE, CATALOG, "2024-06-02T00:00:00Z")


def rendered(events: list[Event], form: str) -> str:
    out = io.StringIO()
    write(events, form, out)
    return out.getvalue()


def assert_no_formula(text: str) -> None:
    for row in csv.reader(io.StringIO(text)):
        for cell in row:
            assert not cell.startswith(FORMULA_STARTS), f"a spreadsheet would run {cell!r}"


def assert_no_live_control(text: str) -> None:
    found = LIVE.search(text)
    assert found is None, f"raw control character {found.group()!r} in terminal output"


# -- the two neutralizers -------------------------------------------------------------------------------

@given(st.text())
def test_terminal_text_has_no_control_character_and_escaping_is_idempotent(text: str) -> None:
    shown = for_terminal(text)

    assert_no_live_control(shown)
    assert "\n" not in shown
    assert for_terminal(shown) == shown


@given(st.text())
def test_a_csv_cell_never_begins_a_formula_and_keeps_plain_text_as_it_is(text: str) -> None:
    cell = csv_cell(text)

    assert not cell.startswith(FORMULA_STARTS)
    if not text.startswith(FORMULA_STARTS) and for_terminal(text) == text:
        assert cell == text


@pytest.mark.parametrize(("text", "shown"), [
    ("\x1b[31mred", "\\x1b[31mred"), ("a\rb", "a\\rb"), ("\x9b2J", "\\u009b2J"), ("x\u202ey", "x\\u202ey"),
    ("tab\there", "tab\\there"), ("plain ünïcode", "plain ünïcode"),
])
def test_control_characters_are_shown_as_escapes(text: str, shown: str) -> None:
    assert for_terminal(text) == shown


@pytest.mark.parametrize("text", ["=HYPERLINK(\"http://evil\",\"x\")", "@SUM(1+1)", "+cmd|' /C calc'!A0", "-1+1",
                                  "\t=1", "\r=1"])
def test_owasp_formula_starts_get_a_leading_quote(text: str) -> None:
    assert csv_cell(text).startswith("'")


# -- every caller-chosen field, through query and report ---------------------------------------------------

@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_text)
def test_query_csv_runs_no_formula_whatever_the_caller_chose(text: str) -> None:
    assert_no_formula(rendered([hostile_event(text)], "csv"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_text)
def test_query_table_and_report_text_carry_no_live_control_character(text: str) -> None:
    event = hostile_event(text)

    table = rendered([event], "table")
    report = render_text(build_report([event]))

    for shown in (table, report):
        for line in shown.splitlines():
            assert_no_live_control(line)
    assert len(table.splitlines()) == 2  # the header and one row: no cell broke its line


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_text)
def test_json_and_json_lines_stay_exact(text: str) -> None:
    event = hostile_event(text)

    as_json = json.loads(rendered([event], "json"))[0]
    as_line = json.loads(rendered([event], "jsonl"))

    for got in (as_json, as_line):
        assert got["user_agent"] == text
        assert got["error_message"] == text
        assert got["source_ip"] == text


def test_the_installed_command_neutralizes_a_stored_hostile_event(moto_table: tuple[Any, str],
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    client, table = moto_table
    text = "=HYPERLINK(\"http://evil\")\x1b[2J\r\x9b"
    store = EventStore(client, table)
    store.put_items(event_items(hostile_event(text)))
    store.register_once(account_head_key("111122223333"), account_registry_key("111122223333"))
    boto3.setup_default_session()

    outputs = {}
    for form in ("csv", "table", "json"):
        assert main(["query", "--table", table, "--account", "111122223333", "--format", form]) == 0
        outputs[form] = capsys.readouterr().out
    assert main(["report", "--table", table]) == 0
    report = capsys.readouterr().out

    assert_no_formula(outputs["csv"])
    assert "'=HYPERLINK" in outputs["csv"]
    for shown in (outputs["table"], report):
        assert_no_live_control(shown)
        assert "\\x1b[2J" in shown
    assert json.loads(outputs["json"])[0]["user_agent"] == text
