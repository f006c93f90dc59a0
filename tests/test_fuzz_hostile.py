"""Fuzz tier: generated hostile records (any depth, any key, any number, lone surrogates, huge values,
thousands of resources, a truncated tail, planted secrets) beside good records, through the handler onto
DynamoDB Local. Invariants: nothing is sent back for retry; the file is ingested with every selected
record readable, or listed as a permanent failure with every good record read before the fault stored;
no planted secret anywhere in the table or the logs.

`make test` runs a few examples; `make fuzz` runs FUZZ_EXAMPLES of them (the variable both fuzz tiers read).
"""

from __future__ import annotations

import json
import os
import string
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.ingest.items import MAX_LINKS
from hostile_kit import Trail, good, gz, trail, trail_text, with_params

pytestmark = [pytest.mark.dynamodb_local, pytest.mark.fuzz]
__all__ = ["trail"]  # the fixture, used by name

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "6"))
RAW_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e-400", "9" * 60, "-0", "0." + "1234567890" * 5, "1.5"]
KEYS = st.one_of(st.text(st.characters(exclude_categories=()), max_size=12), st.sampled_from(["", "k" * 70_000]))
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**60), max_value=10**60),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(st.characters(exclude_categories=()), max_size=30),
    st.sampled_from(RAW_NUMBERS).map(lambda n: f"@@RAW:{n}@@"),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(KEYS, inner, max_size=4)), max_leaves=25)


def _json(value: Any) -> str:
    """JSON text of a generated value; a raw-number marker becomes that number's text, unquoted."""
    text = json.dumps(value, separators=(",", ":"))
    for number in RAW_NUMBERS:
        text = text.replace(f'"@@RAW:{number}@@"', number)
    return text


@st.composite
def hostile_files(draw: st.DrawFn) -> dict[str, Any]:
    token = uuid.uuid4().hex[:10]
    alphabet = string.ascii_letters + string.digits
    secrets = {
        "password": "pw" + token + draw(st.text(alphabet, min_size=8, max_size=8)),
        "aws": ("AKz9" + token + "Q" * 26)[:40],
        "pem_line": "MIIEow" + token + "x" * 40,
    }
    pem = f"-----BEGIN PRIVATE KEY-----\n{secrets['pem_line']}\n-----END PRIVATE KEY-----"
    params: dict[str, Any] = {"stackId": f"stack-{token}", "odd": draw(VALUES)}
    if draw(st.booleans()):
        params["customJson"] = json.dumps({"db": {"password": secrets["password"], "extra": draw(VALUES)},
                                           "aws_secret_access_key": secrets["aws"]})
    if draw(st.booleans()):
        params["note"] = f"{draw(st.text(max_size=10))} {pem} {secrets['aws']}"
    resources = draw(st.sampled_from([0, 3, MAX_LINKS + 5]))
    if resources:
        params["instanceIds"] = [f"i-{token}-{n}" for n in range(resources)]
    params_text = _json(params)
    depth = draw(st.sampled_from([0, 0, 40, 3000]))
    if depth:
        params_text = params_text[:-1] + ',"deep":' + '{"a":' * depth + "1" + "}" * depth + "}"
    if draw(st.booleans()):
        params_text = params_text[:-1] + ',"huge":"' + os.urandom(300_000).hex() + '"}'
    ids = [f"{token}-{n}" for n in range(4)]
    position = draw(st.integers(0, 3))
    hostile_id = draw(st.sampled_from([f"{token}-hostile", f"{token}-" + "e" * 3000, f"{token}-\\ud800"]))
    hostile = with_params("@@ID@@", params_text, name="DescribeInstances").replace('"@@ID@@"', f'"{hostile_id}"')
    records: list[Any] = [good(i) for i in ids[:position]] + [hostile] + [good(i) for i in ids[position:]]
    text = trail_text(records)
    if draw(st.booleans()):
        text = text[: len(text) - draw(st.integers(1, 200))]  # a truncated tail
    return {"name": f"{token}.json.gz", "data": gz(text), "good_before": ids[:position], "good": ids,
            "hostile_id": json.loads(f'"{hostile_id}"'), "secrets": secrets, "truncated": not text.endswith("]}")}


@settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(case=hostile_files())
def test_generated_hostile_records_end_stored_or_listed_never_retried_and_leak_no_secret(
        trail: Trail, case: dict[str, Any]) -> None:
    name = case["name"]
    trail.use_new_table()  # the invariants are about this file alone

    replies = [trail.deliver({name: case["data"]}) for _ in range(2)]  # and a redelivery

    assert replies == [{"batchItemFailures": []}] * 2, "nothing may be sent back for retry"
    failures = trail.failures()
    queries = trail.queries()
    for event_id in case["good_before"]:
        assert queries.by_id(event_id) is not None, f"{event_id} was read before any fault and must be stored"
    if name in failures:
        assert failures[name]
    else:
        assert not case["truncated"]
        for event_id in case["good"]:
            assert queries.by_id(event_id) is not None, event_id
        hostile = queries.by_id(case["hostile_id"])
        assert hostile is not None and hostile["event_id"] == case["hostile_id"]
    table, logs = trail.table_text(), trail.logs.getvalue()
    for label, secret in case["secrets"].items():
        assert secret not in table, label
        assert secret not in logs, label
