"""Acceptance on real CloudTrail data in ../shared/corpus (skipped when it is absent).

The expected numbers come from the corpus's own MANIFEST.tsv (records column), and the expected OpsWorks
fields from the AWS documentation examples themselves, not from this code's output.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from cli.main import main
from conftest import needs_shared
from core.ingest.catalog import REDACTED
from core.ingest.pipeline import Pipeline
from core.ingest.selection import Selection
from core.ingest.sinks import CollectingSink
from core.ingest.sources import LocalSource
from core.model import Outcome
from core.settings import DEFAULT_EVENT_SOURCES

pytestmark = pytest.mark.corpus

DOCS = "corpus/opsworks-docs-examples"
SANS = "suzaku/SANS-504-S3-ransomware-lab/"
INVICTUS = "invictus-ir/"


def manifest_records(prefix: str) -> tuple[int, int, int]:
    """(files, records, OpsWorks records) of the MANIFEST.tsv rows under a corpus folder."""
    path = needs_shared("corpus/MANIFEST.tsv")
    files = records = opsworks = 0
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            if row["local_path"].startswith(prefix):
                files += 1
                records += int(row["records"])
                opsworks += int(row["opsworks"]) + int(row["opsworks_cm"])
    return files, records, opsworks


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["ingest", "--dry-run", "--json", "--no-progress", "--count-records", *args])
    return code, json.loads(capsys.readouterr().out)


def docs_events(path: Path) -> tuple[dict[str, dict[str, Any]], list[Outcome]]:
    source = LocalSource()
    pipeline = Pipeline(open=source.open, selection=Selection(frozenset(DEFAULT_EVENT_SOURCES)), sink=CollectingSink(),
                        max_decompressed_bytes=1 << 26, count_records=True)
    outcomes = [pipeline.ingest(ref) for ref in source.list(path)]
    return {e["event_id"]: e for o in outcomes for e in o.items}, outcomes


# -- the OpsWorks documentation examples ----------------------------------------------------------


@pytest.fixture(scope="module")
def combined() -> dict[str, dict[str, Any]]:
    events, outcomes = docs_events(needs_shared(DOCS) / "opsworks-and-opsworks-cm-records.combined.json")
    assert [o.status.value for o in outcomes] == ["ingested"]
    assert outcomes[0].records == outcomes[0].matched == 4
    return events


def test_docs_create_layer_names_its_stack(combined: dict[str, dict[str, Any]]) -> None:
    event = combined["342cd1ec-8214-4a0f-a68f-8e6352feb5af"]

    assert event["event_name"] == "CreateLayer"
    assert event["service"] == "opsworks"
    assert event["event_time"] == "2014-05-28T16:05:29Z"
    assert event["event_version"] == "1.01"
    assert event["region"] == "us-west-2"
    assert event["read_only"] is False  # the record has no readOnly: from the catalog
    assert event["outcome"] == "success"
    assert event["account_id"] == "111122223333"  # no recipientAccountId: the identity's account
    assert event["resources"] == [{"type": "stack", "id": "a263312e-f937-4949-a91f-f32b6b641b2c"}]
    assert "response_elements" not in event  # responseElements: null
    assert "event_type" not in event  # the 1.01 record has none
    assert event["actor"] == {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/A-User-Name",
                              "principal_id": "AKIAI44QH8DHBEXAMPLE", "account_id": "111122223333",
                              "name": "A-User-Name", "access_key_id": "AKIAIOSFODNN7EXAMPLE"}
    assert event["source_ip"] == "198.51.100.0"
    assert event["request_id"] == "e3952a2b-e681-11e3-aa71-81092480ee2e"


def test_docs_describe_instances_names_its_instance(combined: dict[str, dict[str, Any]]) -> None:
    event = combined["a860d8f8-c1eb-449b-8f55-eafc373b49a4"]

    assert event["event_name"] == "DescribeInstances"
    assert event["read_only"] is True
    assert event["resources"] == [{"type": "instance", "id": "218289c4-0492-473d-a990-3fbe1efa25f6"}]
    assert event["request_parameters"] == {"instanceIds": ["218289c4-0492-473d-a990-3fbe1efa25f6"]}


@pytest.mark.parametrize("event_id, server, engine", [
    ("8r7b18df-6c90-47be-87cf-e8346428cfc3", "OpsChef-test-server", "Chef"),
    ("8z7z18dz-6z90-47bz-87cf-e8346428zzz3", "test-puppet-server", "Puppet"),
])
def test_docs_create_server_names_its_server_and_redacts_engine_attributes(
        combined: dict[str, dict[str, Any]], event_id: str, server: str, engine: str) -> None:
    event = combined[event_id]

    assert event["service"] == "opsworks-cm"
    assert event["event_source"] == "opsworks-cm.amazonaws.com"
    assert event["event_name"] == "CreateServer"
    assert event["event_type"] == "AwsApiCall"
    assert event["read_only"] is False
    assert event["account_id"] == "831000000000"
    assert event["resources"] == [{"type": "server", "id": server}]
    assert event["actor"] == {
        "type": "AssumedRole", "arn": "arn:aws:sts::831000000000:assumed-role/Admin/OpsWorksCMUser",
        "principal_id": "ID number:OpsWorksCMUser", "account_id": "831000000000", "name": "Admin",
        "access_key_id": "ID number", "session_issuer_arn": "arn:aws:iam::831000000000:role/Admin",
        "mfa_authenticated": False, "session_created": "2017-01-05T22:03:47Z"}
    server_out = event["response_elements"]["server"]
    assert server_out["engine"] == engine
    attributes = server_out["engineAttributes"]
    assert len(attributes) >= 2
    assert all(a["value"] == REDACTED for a in attributes)
    assert all(a["name"].startswith(("CHEF_", "PUPPET_")) for a in attributes)
    assert event["request_parameters"]["serverName"] == server


def test_each_docs_page_gives_the_same_events_as_the_combined_file(combined: dict[str, dict[str, Any]]) -> None:
    pages: dict[str, dict[str, Any]] = {}
    for path in sorted(needs_shared(DOCS).glob("*.fixed.json")):
        events, _ = docs_events(path)
        pages.update(events)

    assert set(pages) == set(combined)
    for event_id, event in pages.items():
        assert {k: v for k, v in event.items() if k not in ("source_object", "ingested_at")} == \
            {k: v for k, v in combined[event_id].items() if k not in ("source_object", "ingested_at")}


# -- real trails without OpsWorks -----------------------------------------------------------------


@pytest.mark.parametrize("folder", [SANS, INVICTUS])
def test_real_trail_folders_hold_no_opsworks_record_and_read_without_failure(
        capsys: pytest.CaptureFixture[str], folder: str) -> None:
    path = needs_shared("corpus/" + folder)
    files, records, opsworks = manifest_records(folder)
    assert opsworks == 0

    code, summary = run_cli(capsys, str(path))

    assert code == 0
    assert summary["files"] == files
    assert summary["failed_files"] == 0, summary["failures"][:3]
    assert summary["skipped_files"] == 0
    assert summary["matched"] == 0
    assert summary["records"] == records


@pytest.mark.parametrize("folder, expected_files, expected_records", [(SANS, 3872, 30477), (INVICTUS, 55, 2900)])
def test_with_every_event_source_every_record_of_the_manifest_is_matched(
        capsys: pytest.CaptureFixture[str], folder: str, expected_files: int, expected_records: int) -> None:
    path = needs_shared("corpus/" + folder)
    # Pinned totals of the MANIFEST.tsv rows (SOURCES.md: 3,872 SANS-504 files; invictus-ir 55 files, 2,900
    # records), so that a changed corpus is noticed rather than silently followed.
    assert manifest_records(folder)[:2] == (expected_files, expected_records)

    code, summary = run_cli(capsys, "--event-sources", "all", str(path))

    assert code == 0
    assert summary["files"] == expected_files
    assert summary["failed_files"] == 0, summary["failures"][:3]
    assert summary["records"] == expected_records
    assert summary["matched"] == expected_records
    assert summary["written"] == 0
