"""core.keys spells the table's keys as CONTRACTS.md lists them, and key_part is idempotent (a key
part read back from an item, like a link's event_id, gives the same key again)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from workshop.template import table_definition_from_template

from conftest import REPO
from core.event import Event
from core.ingest.items import event_items
from core.keys import (
    ACCOUNTS_PK,
    EVENT_SK,
    FAILED_FILES,
    INDEXES,
    MAX_KEY_PART_BYTES,
    PROOF_STREAMS_PK,
    account_head_key,
    child_sk,
    digest_sk,
    event_pk,
    file_key,
    key_part,
    link_key,
    resource_pk,
    stream_head_key,
    stream_pk,
    stream_sk,
    table_definition,
    time_sk,
)
from core.read.queries import time_key

CONTRACTS = (REPO / "CONTRACTS.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("item, pk, sk", [
    ("event", event_pk("<event_id>"), EVENT_SK),
    ("resource link", resource_pk("<type>", "<id>"), time_sk("<event_time>", "<event_id>")),
    ("relation", resource_pk("stack", "<id>"), child_sk("<type>", "<id>")),
    ("account registry", ACCOUNTS_PK, "<account_id>"),
    ("file state", file_key("<bucket>", "<key>")["pk"], file_key("<bucket>", "<key>")["sk"]),
    ("digest record", stream_pk("<account>", "<region>"), digest_sk("<digestEndTime>", "<bucket>", "<key>")),
    ("proof streams", PROOF_STREAMS_PK, stream_sk("<account>", "<region>")),
    ("account head", account_head_key("<account_id>")["pk"], account_head_key("<account_id>")["sk"]),
    ("stream head", stream_head_key("<account>", "<region>")["pk"], stream_head_key("<account>", "<region>")["sk"]),
    ("chain link", link_key("<account>", "<region>", "<bucket>", "<key>")["pk"],
     link_key("<account>", "<region>", "<bucket>", "<key>")["sk"]),
])
def test_each_item_key_is_the_one_contracts_lists(item: str, pk: str, sk: str) -> None:
    line = re.search(rf"^  - {item}:(.*)$", CONTRACTS, flags=re.MULTILINE)

    assert line, f"CONTRACTS.md lists no {item} item"
    assert f"pk=`{pk}`" in line[1]
    assert f"sk=`{sk}`" in line[1]


def test_a_failed_file_is_listed_under_the_key_contracts_names() -> None:
    assert f"failed_pk=`{FAILED_FILES}`" in CONTRACTS


def test_the_indexes_are_the_ones_contracts_lists() -> None:
    listed = re.findall(r"`(\w+)`\s*:\s*`(\w+)` \(S\) HASH, `(\w+)` \(S\) RANGE", CONTRACTS)

    assert {(i.name, i.key, i.sort_key) for i in INDEXES} == set(listed)


@given(st.one_of(st.text(st.characters(exclude_categories=())), st.text(min_size=MAX_KEY_PART_BYTES - 2)))
def test_key_part_is_idempotent_and_short(text: str) -> None:
    part = key_part(text)

    assert key_part(part) == part
    assert len(part.encode("utf-8")) <= MAX_KEY_PART_BYTES
    assert event_pk(part) == event_pk(text)


@given(event_id=st.text(min_size=1, max_size=20) | st.text(min_size=520, max_size=900))
def test_the_query_side_time_key_is_the_stored_time_sk_even_for_a_long_or_odd_event_id(event_id: str) -> None:
    event: Event = {"event_id": event_id, "event_time": "2024-05-01T00:00:00Z", "outcome": "success",
                    "ingested_at": "2024-05-02T00:00:00Z", "account_id": "111122223333"}
    main = next(item for item in event_items(event) if item["sk"] == "EVENT")

    assert time_key(event) == main["time_sk"]


def test_the_table_definition_in_the_package_is_the_templates() -> None:
    def canonical(definition: dict[str, Any]) -> dict[str, Any]:
        return {**definition, "AttributeDefinitions": sorted(definition["AttributeDefinitions"],
                                                             key=lambda a: a["AttributeName"]),
                "GlobalSecondaryIndexes": sorted(definition["GlobalSecondaryIndexes"], key=lambda i: i["IndexName"])}

    assert canonical(table_definition()) == canonical(table_definition_from_template())
