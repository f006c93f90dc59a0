"""The sample data generator: deterministic, laid out like a real trail bucket, honest manifest."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from random import Random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from workshop.sample_data import new_maker
from workshop.sample_data.calls import Session, Story
from workshop.sample_data.opsworks_cm import server
from workshop.sample_data.opsworks_stack import stack
from workshop.sample_data.services import LOOKALIKES, NOISE, lookalike, noise
from workshop.synthetic import (
    DEFAULT_ACCOUNTS,
    DEFAULT_START,
    LOOKALIKE_MARKER,
    OPSWORKS_SOURCES,
    SECRET_MARKER,
    SampleManifest,
    load_manifest,
    main,
    resources_of,
    upload_to_s3,
    write_large_trail_file,
    write_manifest,
    write_sample_bucket,
)

FILES = 45
ACCOUNT = r"\d{12}"
REGION = r"[a-z]{2}-[a-z]+-\d"
DAY = r"\d{4}/\d{2}/\d{2}"
ORG = r"(?:o-[a-z0-9]{10,32}/)?"
LOG_KEY = re.compile(
    rf"^(?:my trail\+logs/)?AWSLogs/{ORG}(?P<acct>{ACCOUNT})/CloudTrail/(?P<region>{REGION})/{DAY}/"
    rf"(?P=acct)_CloudTrail_(?P=region)_\d{{8}}T\d{{4}}Z_[A-Za-z0-9]{{16}}\.json\.gz$"
)
DIGEST_KEY = re.compile(
    rf"^(?:my trail\+logs/)?AWSLogs/(?:o-[a-z0-9]+/)?(?P<acct>{ACCOUNT})/CloudTrail-Digest/(?P<region>{REGION})/{DAY}/"
    rf"(?P=acct)_CloudTrail-Digest_(?P=region)_[\w-]+_(?P=region)_\d{{8}}T\d{{6}}Z\.json\.gz$"
)
INSIGHT_KEY = re.compile(
    rf"^AWSLogs/(?:o-[a-z0-9]+/)?(?P<acct>{ACCOUNT})/CloudTrail-Insight/(?P<region>{REGION})/{DAY}/"
    rf"(?P=acct)_CloudTrail-Insight_(?P=region)_\d{{8}}T\d{{4}}Z_[A-Za-z0-9]{{16}}\.json\.gz$"
)


@pytest.fixture(scope="module")
def bucket(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SampleManifest]:
    root = tmp_path_factory.mktemp("sample") / "bucket"
    return root, write_sample_bucket(root, files=FILES)


def records_of(root: Path, key: str) -> list[dict[str, Any]]:
    data = json.loads(gzip.decompress(root.joinpath(*key.split("/")).read_bytes()))
    assert isinstance(data["Records"], list)
    return data["Records"]


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(
    tmp_path: Path, bucket: tuple[Path, SampleManifest]
) -> None:
    root, manifest = bucket
    again = write_sample_bucket(tmp_path / "again", files=FILES)
    assert tree(tmp_path / "again") == tree(root)
    assert again == manifest
    other = write_sample_bucket(tmp_path / "other", files=FILES, seed=8)
    assert set(other.expected) != set(manifest.expected)


def test_every_written_object_is_classified_and_keys_follow_cloudtrail_layout(
    bucket: tuple[Path, SampleManifest],
) -> None:
    root, m = bucket
    on_disk = set(tree(root))
    assert on_disk == set(m.log_keys) | {k for k, why in m.skipped_keys.items() if why != "folder"}
    assert len(m.log_keys) == m.files == FILES
    assert all(LOG_KEY.match(k) for k in m.log_keys), [k for k in m.log_keys if not LOG_KEY.match(k)]
    reasons = defaultdict(list)
    for key, why in m.skipped_keys.items():
        reasons[why].append(key)
    assert set(reasons) == {"digest", "insight", "not-a-log-file", "folder"}
    assert all(DIGEST_KEY.match(k) for k in reasons["digest"])
    assert all(INSIGHT_KEY.match(k) for k in reasons["insight"])
    assert all(k.endswith("/Config/ConfigWritabilityCheckFile") for k in reasons["not-a-log-file"])
    assert all(k.endswith("/") for k in reasons["folder"]) and reasons["folder"] == m.folder_keys
    assert "AWSLogs/" in m.folder_keys


def test_log_keys_embed_their_own_delivery_time_and_records_precede_it(
    bucket: tuple[Path, SampleManifest],
) -> None:
    root, m = bucket
    for key in m.log_keys:
        stamp = re.search(r"_(\d{8}T\d{4})Z_", key)
        assert stamp is not None
        day = "/".join((stamp[1][:4], stamp[1][4:6], stamp[1][6:8]))
        assert f"/{day}/" in key
        delivered = f"{stamp[1][:4]}-{stamp[1][4:6]}-{stamp[1][6:8]}T{stamp[1][9:11]}:{stamp[1][11:13]}"
        assert all(r["eventTime"][:16] <= delivered for r in records_of(root, key))


def test_manifest_counts_equal_a_recount_of_the_files(bucket: tuple[Path, SampleManifest]) -> None:
    root, m = bucket
    records = opsworks = 0
    seen: dict[str, list[str]] = defaultdict(list)
    content: dict[str, dict[str, Any]] = {}
    for key in m.log_keys:
        for r in records_of(root, key):
            records += 1
            if r.get("eventSource") in OPSWORKS_SOURCES:  # exact match, as the pipeline selects
                opsworks += 1
                seen[r["eventID"]].append(key)
                assert content.setdefault(r["eventID"], r) == r  # a redelivery carries the same content
    assert (records, opsworks, len(seen)) == (m.records, m.opsworks_records, m.opsworks_events)
    assert set(seen) == set(m.expected)
    for eid, event in m.expected.items():
        r = content[eid]
        assert sorted(event.keys) == sorted(seen[eid])
        assert (event.event_source, event.event_name, event.error_code) == (
            r["eventSource"],
            r["eventName"],
            r.get("errorCode"),
        )
        assert event.resources == resources_of(r)
    assert {e.event_source for e in m.expected.values()} == set(OPSWORKS_SOURCES)


def test_default_bucket_has_five_to_ten_percent_opsworks_files(tmp_path: Path) -> None:
    m = write_sample_bucket(tmp_path / "b")  # 300 files
    assert 0.05 <= len(m.keys_with_opsworks()) / m.files <= 0.10
    assert any(e.event_time >= "2024-05-26" for e in m.expected.values())  # after the Stacks end of life
    assert any(e.event_time < "2024-05-26" for e in m.expected.values())


def test_a_redelivered_event_sits_in_two_files(bucket: tuple[Path, SampleManifest]) -> None:
    _, m = bucket
    assert m.duplicate_event_ids
    for eid in m.duplicate_event_ids:
        assert len(set(m.expected[eid].keys)) == 2
    assert m.opsworks_records == m.opsworks_events + len(m.duplicate_event_ids)


def test_the_story_names_resources_of_every_kind(bucket: tuple[Path, SampleManifest]) -> None:
    _, m = bucket
    kinds = {t for e in m.expected.values() for t, _ in e.resources}
    assert kinds >= {
        *("stack", "layer", "instance", "app", "deployment", "volume", "elastic-ip", "rds-db-instance"),
        *("user-profile", "server", "backup", "node", "elastic-load-balancer", "command"),
    }
    create_dep = next(
        e for e in m.expected.values() if e.event_name == "CreateDeployment" and not e.error_code
    )
    assert {t for t, _ in create_dep.resources} >= {"stack", "instance", "deployment"}
    errors = {e.error_code for e in m.expected.values()} - {None}
    assert {"ValidationException", "AccessDenied"} <= errors


def test_lookalikes_mention_opsworks_but_are_other_services(bucket: tuple[Path, SampleManifest]) -> None:
    root, m = bucket
    assert m.lookalike_event_ids
    found = {}
    for key in m.log_keys:
        for r in records_of(root, key):
            if r["eventID"] in m.lookalike_event_ids:
                found[r["eventID"]] = r
    assert set(found) == set(m.lookalike_event_ids)
    for r in found.values():
        assert r["eventSource"] not in OPSWORKS_SOURCES
        assert LOOKALIKE_MARKER in json.dumps(r) or "opsworks-cm.amazonaws.com" in json.dumps(r)
    assert any(r["userIdentity"].get("invokedBy") == LOOKALIKE_MARKER for r in found.values())


def test_planted_secrets_are_in_the_raw_files(bucket: tuple[Path, SampleManifest]) -> None:
    root, m = bucket
    raw = b"".join(gzip.decompress(root.joinpath(*k.split("/")).read_bytes()) for k in m.log_keys)
    assert m.secrets
    for s in m.secrets:
        assert s.value.startswith(SECRET_MARKER) and s.value.encode() in raw
        assert s.event_id in m.expected
    leaves = {s.path.split(".")[-1] for s in m.secrets}
    assert leaves >= {
        "password",
        "sshKey",
        "privateKey",
        "dbPassword",
        "customPrivateKey",
        "attributeValue",
        "value",
    }
    assert any(".engineAttributes." in s.path for s in m.secrets)
    assert any(".environment." in s.path for s in m.secrets)
    # the list is complete: every occurrence in the raw files is a listed secret of an OpsWorks record
    assert raw.count(SECRET_MARKER.encode()) == sum(len(m.expected[s.event_id].keys) for s in m.secrets)


def test_docs_shaped_records_are_included(bucket: tuple[Path, SampleManifest]) -> None:
    root, m = bucket
    records = [r for k in m.keys_with_opsworks() for r in records_of(root, k)]
    v101 = [r for r in records if r.get("eventVersion") == "1.01"]
    assert v101 and all(r["responseElements"] is None and "eventType" not in r for r in v101)
    v105 = [r for r in records if r.get("eventVersion") == "1.05"]
    assert v105 and all(r["userIdentity"]["accessKeyId"] == "ID number" for r in v105)
    assert any(re.search(r"[g-z]", r["eventID"]) for r in v105)


def test_custom_prefix_keys_hold_a_space_and_a_plus_and_an_opsworks_event(
    bucket: tuple[Path, SampleManifest],
) -> None:
    _, m = bucket
    prefixed = [k for k in m.log_keys if k.startswith("my trail+logs/")]
    assert prefixed and set(prefixed) & set(m.keys_with_opsworks())


def test_skipped_objects_are_what_they_claim(bucket: tuple[Path, SampleManifest]) -> None:
    root, m = bucket
    for key, why in m.skipped_keys.items():
        if why == "digest":
            body = json.loads(gzip.decompress(root.joinpath(*key.split("/")).read_bytes()))
            assert "Records" not in body and body["digestSignatureAlgorithm"] == "SHA256withRSA"
        elif why == "insight":
            recs = records_of(root, key)
            assert all(r["eventType"] == "AwsCloudTrailInsight" for r in recs)
        elif why == "not-a-log-file":
            assert root.joinpath(*key.split("/")).stat().st_size == 0


def test_sample_digests_are_signed_chained_and_list_every_log_file_with_its_hash(
    bucket: tuple[Path, SampleManifest],
) -> None:
    from core.ingest.digests import chain_problem, parse_digest, signature_problem
    from core.ingest.publickeys import KeyRing, keys_from_list

    root, m = bucket
    ring = KeyRing(keys_from_list(m.public_keys))
    digests = {k: parse_digest(m.bucket, k, root.joinpath(*k.split("/")).read_bytes(), m.digest_metadata[k])
               for k, why in m.skipped_keys.items() if why == "digest"}
    listed = {}
    for digest in digests.values():
        assert signature_problem(digest, ring.key_for(digest.fingerprint, "", digest.end)) is None
        if digest.previous:
            before = digests[digest.previous[1]]
            assert chain_problem(digest, before.signature, before.content_sha256) is None
        listed.update({f.key: f.sha256 for f in digest.log_files})
    assert sorted(listed) == m.log_keys
    for key in m.log_keys[:20]:
        assert listed[key] == hashlib.sha256(gzip.decompress(root.joinpath(*key.split("/")).read_bytes())).hexdigest()


def test_organization_trail_layout(tmp_path: Path) -> None:
    m = write_sample_bucket(tmp_path / "org", files=FILES, organization_id="o-a1b2c3d4e5")
    assert all("/o-a1b2c3d4e5/" in k for k in m.log_keys)
    assert all(LOG_KEY.match(k) for k in m.log_keys)
    assert all(DIGEST_KEY.match(k) for k, why in m.skipped_keys.items() if why == "digest")


def test_manifest_round_trips_through_json(tmp_path: Path, bucket: tuple[Path, SampleManifest]) -> None:
    _, m = bucket
    write_manifest(m, tmp_path / "m.json")
    assert load_manifest(tmp_path / "m.json") == m


def test_too_few_files_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least"):
        write_sample_bucket(tmp_path / "tiny", files=10)


class FakeS3:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_object(self, *, Bucket: str, Key: str, Body: bytes) -> dict[str, Any]:
        assert Bucket == "trail-bucket"
        self.objects[Key] = Body
        return {}


def test_upload_puts_every_file_and_zero_byte_folders(bucket: tuple[Path, SampleManifest]) -> None:
    root, m = bucket
    s3 = FakeS3()
    keys = upload_to_s3(root, s3, "trail-bucket")
    assert set(keys) == set(s3.objects) == set(m.log_keys) | set(m.skipped_keys)
    assert all(s3.objects[k] == b"" for k in m.folder_keys)


def test_large_file_has_about_the_requested_size_and_fraction(tmp_path: Path) -> None:
    path = tmp_path / "big.json.gz"
    size = 3 * 1024 * 1024
    stats = write_large_trail_file(path, uncompressed_bytes=size, opsworks_fraction=0.01)
    raw = gzip.decompress(path.read_bytes())
    assert len(raw) == stats.uncompressed_bytes and size <= len(raw) <= size + 8192
    records = json.loads(raw)["Records"]
    assert len(records) == stats.records and 500 <= 3 * 1024 * 1024 / len(records) <= 2500  # ~1-2 KB each
    ops = [r for r in records if r["eventSource"] in OPSWORKS_SOURCES]
    assert len(ops) == stats.opsworks_records and 0.005 <= len(ops) / len(records) <= 0.02
    assert len({r["eventID"] for r in records}) == len(records)
    assert stats.compressed_bytes == path.stat().st_size
    # deterministic, and no OpsWorks at all when asked for none
    write_large_trail_file(tmp_path / "again.json.gz", uncompressed_bytes=size, opsworks_fraction=0.01)
    assert (tmp_path / "again.json.gz").read_bytes() == path.read_bytes()
    none = write_large_trail_file(
        tmp_path / "none.json.gz", uncompressed_bytes=size // 4, opsworks_fraction=0.0
    )
    assert none.opsworks_records == 0


def test_command_line_writes_bucket_and_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bucket", str(tmp_path / "b"), "--files", str(FILES), "--seed", "3"]) == 0
    summary = json.loads(capsys.readouterr().out)
    m = load_manifest(tmp_path / "b.manifest.json")
    assert summary["files"] == m.files == FILES and summary["opsworks_events"] == m.opsworks_events
    assert main(["large", str(tmp_path / "l.json.gz"), "--mb", "0.5", "--opsworks-fraction", "0.01"]) == 0
    assert json.loads(capsys.readouterr().out)["uncompressed_bytes"] >= 512 * 1024


# -- the sample data (workshop/sample_data) ---------------------------------------------------------

CATALOG = json.loads((Path(__file__).parents[1] / "src/core/ingest/catalog.json").read_text())


def story_sessions(seed: int) -> list[Session]:
    """A stack story and a server story of each engine, as the bucket and the large file use them."""
    maker = new_maker(Random(seed), DEFAULT_ACCOUNTS, DEFAULT_START, 30)
    sessions = stack(maker, DEFAULT_ACCOUNTS[0], "us-east-1", name="s", by="alice", at=[0.1] * 7)
    for engine in ("ChefAutomate", "Puppet"):
        sessions += server(maker, DEFAULT_ACCOUNTS[1], "eu-west-1", name="c", engine=engine, at=[0.2] * 5)
    return sessions


def test_every_action_the_stories_call_is_in_the_catalog_with_its_read_only_flag() -> None:
    records = [r for s in story_sessions(1) for r in s.records]
    for record in records:
        action = CATALOG["services"][record["eventSource"]]["actions"].get(record["eventName"])
        assert action is not None, f"{record['eventSource']} {record['eventName']} is not in catalog.json"
        assert action["read_only"] == record["readOnly"], f"{record['eventName']} read_only"
    assert {"CreateStack", "DeleteStack", "CreateServer", "DeleteServer"} <= {r["eventName"] for r in records}


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32))
def test_for_any_seed_story_records_name_every_resource_the_catalog_knows(seed: int) -> None:
    """Catalog resource parameters in a story's records are in its manifest resources (RESOURCE_KEYS agrees)."""
    sessions = story_sessions(seed)
    records = [r for s in sessions for r in s.records]
    assert {r["eventSource"] for r in records} == set(OPSWORKS_SOURCES)
    assert all(la["eventSource"] not in OPSWORKS_SOURCES for s in sessions for la in s.lookalikes)
    for record in records:
        action = CATALOG["services"][record["eventSource"]]["actions"][record["eventName"]]
        found = set(resources_of(record))
        for part in ("request", "response"):
            body = record["requestParameters" if part == "request" else "responseElements"] or {}
            for path, kind in action[part].items():
                value: Any = body
                for key in path.split("."):
                    value = value.get(key) if isinstance(value, dict) else None
                for item in value if isinstance(value, list) else [value]:
                    if isinstance(item, str):
                        assert (kind, item) in found, (record["eventName"], path)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32), when=st.floats(min_value=0.0, max_value=0.95))
def test_a_session_starts_near_its_fraction_and_each_call_comes_5_to_90_seconds_after_the_last(
    seed: int, when: float
) -> None:
    maker = new_maker(Random(seed), DEFAULT_ACCOUNTS, DEFAULT_START, 30)
    s = Story(maker, DEFAULT_ACCOUNTS[0], "us-east-1", source=OPSWORKS_SOURCES[0], caller="alice").session(when)
    for _ in range(4):
        s.call("DescribeStacks", {"stackIds": []}, ro=True)
    times = [datetime.strptime(r["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) for r in s.records]
    start = DEFAULT_START + timedelta(seconds=int(30 * 86400 * when))
    assert start < times[0] <= start + timedelta(seconds=1800 + 90)
    assert all(5 <= (b - a).total_seconds() <= 90 for a, b in pairwise(times))


def test_a_call_by_someone_the_account_does_not_have_names_them_and_the_people_it_has() -> None:
    maker = new_maker(Random(1), DEFAULT_ACCOUNTS, DEFAULT_START, 30)
    s = Story(maker, DEFAULT_ACCOUNTS[0], "us-east-1", source=OPSWORKS_SOURCES[0]).session(0.1)
    with pytest.raises(ValueError, match=r"no person or role 'mallory' in account 111122223333 .*carol"):
        s.call("DescribeStacks", {}, ro=True, who="mallory")


def test_every_kind_of_noise_comes_up_and_none_is_an_opsworks_record() -> None:
    maker = new_maker(Random(2), DEFAULT_ACCOUNTS, DEFAULT_START, 30)
    records = [noise(maker, DEFAULT_ACCOUNTS[0], "us-west-2", DEFAULT_START) for _ in range(600)]
    assert all(r["eventSource"] not in OPSWORKS_SOURCES for r in records)
    called = {r["eventName"] for r in records}
    assert len(called) == len(NOISE)  # each kind calls an action of its own
    assert {"GetBucketAcl", "RunInstances", "UpdateInstanceInformation", "ConsoleLogin"} <= called


@pytest.mark.parametrize("which", range(len(LOOKALIKES)))
def test_each_lookalike_mentions_opsworks_outside_its_event_source(which: int) -> None:
    maker = new_maker(Random(3), DEFAULT_ACCOUNTS, DEFAULT_START, 30)
    record = lookalike(maker, DEFAULT_ACCOUNTS[0], "us-east-1", DEFAULT_START, which)
    assert record["eventSource"] not in OPSWORKS_SOURCES
    assert any(source in json.dumps(record) for source in OPSWORKS_SOURCES)


def test_the_generator_draws_only_from_its_own_seeded_generator(tmp_path: Path) -> None:
    """Same seed, same bytes, whatever the process-wide random state (no stray `random.x()` call)."""
    import random

    random.seed(1)
    first = write_large_trail_file(tmp_path / "a.json.gz", uncompressed_bytes=256 << 10, opsworks_fraction=0.1)
    random.seed(2)
    second = write_large_trail_file(tmp_path / "b.json.gz", uncompressed_bytes=256 << 10, opsworks_fraction=0.1)
    assert first == second and (tmp_path / "a.json.gz").read_bytes() == (tmp_path / "b.json.gz").read_bytes()
