"""`verify --events`: every stored event re-derived from a log file a signed digest lists. A signed trail is
ingested, the table tampered with (an event altered, one deleted, one added), and each change is named by
its event id and file; the untouched table is proven; the bad inputs (no digests, a log file deleted, a
document that does not decode) are said."""

from __future__ import annotations

import gzip
import io
import json
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from workshop.sample_digests import DigestSigner, chained_digests

from cli.main import main
from conftest import emptied
from core.ingest.catalog import load_catalog
from core.ingest.items import encode, event_items, restore
from core.ingest.normalize import normalize
from core.ingest.pipeline import Pipeline
from core.ingest.proof import S3Objects
from core.ingest.publickeys import KeyRing
from core.ingest.selection import Selection
from core.ingest.sinks import TableSink
from core.ingest.sources import S3Source
from core.ingest.store import EventStore, deserialize, serialize
from core.model import ObjectRef, Status
from core.read.event_proof import EventProof, EventProofReport, RecordingBucket
from core.settings import DEFAULT_EVENT_SOURCES

START = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
ACCOUNT, REGION = "111122223333", "us-east-1"
SIGNER = DigestSigner()


def log_key(account: str, region: str, t: datetime, n: int) -> str:
    return (f"AWSLogs/{account}/CloudTrail/{region}/{t:%Y/%m/%d}/"
            f"{account}_CloudTrail_{region}_{t:%Y%m%dT%H%MZ}_{n:04d}abcd.json.gz")


def event_id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def record(n: int, t: datetime, *, source: str = "opsworks.amazonaws.com", account: str = ACCOUNT,
           region: str = REGION) -> dict[str, Any]:
    happened = t - timedelta(minutes=3)
    return {"eventVersion": "1.08", "eventID": event_id(n), "eventTime": f"{happened:%Y-%m-%dT%H:%M:%SZ}",
            "eventSource": source, "eventName": "CreateLayer" if n % 2 else "DescribeStacks", "awsRegion": region,
            "recipientAccountId": account, "sourceIPAddress": "192.0.2.7", "userAgent": "aws-cli/2.15",
            "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::{account}:user/alice", "accountId": account,
                             "userName": "alice"},
            "requestParameters": {"stackId": "11111111-2222-3333-4444-555555555555", "name": f"layer {n}"},
            "responseElements": {"layerId": f"l-{n}"} if n % 2 else None}


def gz(records: list[dict[str, Any]]) -> bytes:
    return gzip.compress(json.dumps({"Records": records}).encode(), mtime=0)


@dataclass
class SignedTrail:
    """A trail bucket with signed, chained digests, and the table its files were ingested into."""

    s3: Any
    bucket: str
    ddb: Any
    table: str
    logs: dict[str, bytes] = field(default_factory=dict)
    opsworks_ids: dict[str, list[str]] = field(default_factory=dict)
    """Per log file, the ids of its OpsWorks records."""

    @property
    def store(self) -> EventStore:
        return EventStore(self.ddb, self.table, sleep=lambda _: None)

    def add_file(self, key: str, records: list[dict[str, Any]]) -> None:
        self.logs[key] = gz(records)
        self.opsworks_ids[key] = [r["eventID"] for r in records if r["eventSource"] in DEFAULT_EVENT_SOURCES]
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=self.logs[key])

    def write(self, hours: int = 3, per_hour: int = 2, *, signed: bool = True) -> None:
        """`per_hour` files an hour; every third file holds no OpsWorks record (EC2 only)."""
        n = 0
        for hour in range(hours):
            for i in range(per_hour):
                t = START + timedelta(hours=hour, minutes=5 + 20 * i)
                key = log_key(ACCOUNT, REGION, t, len(self.logs) + 1)
                quiet = len(self.logs) % 3 == 2
                records = []
                for j in range(3):
                    n += 1
                    records.append(record(n, t, source="ec2.amazonaws.com" if quiet or j == 2 else
                                          "opsworks.amazonaws.com"))
                self.add_file(key, records)
        if signed:
            self.sign()

    def sign(self) -> None:
        for d in chained_digests(SIGNER, self.bucket, self.logs):
            self.s3.put_object(Bucket=self.bucket, Key=d.key, Body=d.body, Metadata=d.metadata)

    def ingest(self, keys: Any = None) -> None:
        pipeline = Pipeline(open=S3Source(self.s3).open, selection=Selection(frozenset(DEFAULT_EVENT_SOURCES)),
                            sink=TableSink(self.store), max_decompressed_bytes=1 << 26)
        for key in keys if keys is not None else sorted(self.logs):
            assert pipeline.ingest(ObjectRef(self.bucket, key)).status is Status.INGESTED

    def event_item(self, eid: str) -> dict[str, Any]:
        item = self.ddb.get_item(TableName=self.table, Key={"pk": {"S": f"EVENT#{eid}"}, "sk": {"S": "EVENT"}})
        return deserialize(item["Item"])

    def put(self, item: dict[str, Any]) -> None:
        self.ddb.put_item(TableName=self.table, Item=serialize(item))

    def prove(self, **kwargs: Any) -> EventProofReport:
        source = S3Source(self.s3)
        seen = RecordingBucket(source.list, S3Objects(self.s3).fetch)
        prover = EventProof(self.store, kwargs.pop("open", source.open), KeyRing([SIGNER.public_key()]),
                            Selection(frozenset(DEFAULT_EVENT_SOURCES)))
        return prover.run(self.bucket, seen, **kwargs)

    def cli(self, tmp_path: Path, *extra: str) -> tuple[int, dict[str, Any]]:
        keys = tmp_path / "keys.json"
        keys.write_text(json.dumps(SIGNER.listing()))
        out = io.StringIO()
        with redirect_stdout(out):
            code = main(["verify", f"s3://{self.bucket}/", "--events", "--public-keys", str(keys), "--table",
                         self.table, "--format", "json", *extra])
        return code, json.loads(out.getvalue())


@pytest.fixture
def trail(moto_bucket: tuple[Any, str], moto_table: tuple[Any, str]) -> SignedTrail:
    return SignedTrail(*moto_bucket, *moto_table)


def findings(report: EventProofReport) -> list[tuple[str, str]]:
    return sorted((f.kind, f.event_id) for f in report.findings)


def uri(trail: SignedTrail, key: str) -> str:
    return f"s3://{trail.bucket}/{key}"


def tamper_field(trail: SignedTrail, eid: str, name: str, value: Any) -> None:
    item = trail.event_item(eid)
    event = dict(restore(item), **{name: value})
    trail.put(dict(item, event=encode(event)))


# -- done when ------------------------------------------------------------------------------------------

def test_an_altered_a_deleted_and_an_added_event_are_named_and_the_untouched_table_proven(
        trail: SignedTrail, tmp_path: Path) -> None:
    trail.write()
    trail.ingest()
    code, clean = trail.cli(tmp_path)
    assert code == 0 and clean["findings"] == 0 and clean["events"]["findings"] == 0
    stream = clean["events"]["streams"][0]
    held = sum(len(ids) for ids in trail.opsworks_ids.values())
    assert stream["status"] == "proven" and stream["events"]["proven"] == stream["events"]["stored"] == held

    files = [k for k in sorted(trail.logs) if trail.opsworks_ids[k]]
    altered, deleted = trail.opsworks_ids[files[0]][0], trail.opsworks_ids[files[1]][1]
    tamper_field(trail, altered, "event_name", "DeleteStack")
    trail.ddb.delete_item(TableName=trail.table, Key={"pk": {"S": f"EVENT#{deleted}"}, "sk": {"S": "EVENT"}})
    forged = normalize(record(9999, START + timedelta(minutes=30)), ObjectRef(trail.bucket, files[2]),
                       load_catalog(), "2024-05-01T11:00:00Z")
    for item in event_items(forged):
        trail.put(item)

    code, result = trail.cli(tmp_path)
    assert code == 1
    named = {(f["kind"], f["event_id"]): f for f in result["events"]["streams"][0]["findings"]}
    assert set(named) == {("altered", altered), ("missing", deleted), ("unbacked", event_id(9999))}
    assert "event_name" in named[("altered", altered)]["detail"]
    assert named[("altered", altered)]["file"] == uri(trail, files[0])
    assert named[("missing", deleted)]["file"] == uri(trail, files[1])
    assert named[("unbacked", event_id(9999))]["file"] == uri(trail, files[2])
    assert "added to the table" in named[("unbacked", event_id(9999))]["detail"]
    assert result["findings"] == 0  # the files themselves are intact: only the table was changed


def test_the_text_output_names_each_finding_and_says_the_result_was_recorded(trail: SignedTrail,
                                                                             tmp_path: Path) -> None:
    trail.write(hours=1)
    trail.ingest()
    victim = trail.opsworks_ids[sorted(trail.logs)[0]][0]
    tamper_field(trail, victim, "source_ip", "203.0.113.9")
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(SIGNER.listing()))
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["verify", f"s3://{trail.bucket}/", "--events", "--public-keys", str(keys),
                     "--table", trail.table]) == 1
    text = out.getvalue()
    assert f"altered: event {victim} (s3://{trail.bucket}/" in text and "source_ip" in text
    assert "Event findings (1):" in text


# -- what is read, and what is compared ------------------------------------------------------------------

def test_only_files_that_held_opsworks_records_are_read_again(trail: SignedTrail) -> None:
    trail.write()
    trail.ingest()
    opened: list[str] = []
    source = S3Source(trail.s3)

    def counting_open(ref: ObjectRef) -> Any:
        opened.append(ref.key)
        return source.open(ref)

    report = trail.prove(open=counting_open)
    assert report.findings == []
    with_records = sorted(k for k, ids in trail.opsworks_ids.items() if ids)
    assert sorted(opened) == with_records and len(with_records) < len(trail.logs)
    assert report.total("files_without_events") == len(trail.logs) - len(with_records)


def test_a_deleted_event_whose_file_count_was_zeroed_too_is_missing_when_every_file_is_read(
        trail: SignedTrail, tmp_path: Path) -> None:
    trail.write(hours=1)
    trail.ingest()
    victim_file = sorted(k for k, ids in trail.opsworks_ids.items() if ids)[0]
    for eid in trail.opsworks_ids[victim_file]:
        trail.ddb.delete_item(TableName=trail.table, Key={"pk": {"S": f"EVENT#{eid}"}, "sk": {"S": "EVENT"}})
    trail.ddb.update_item(TableName=trail.table, Key={"pk": {"S": f"FILE#{trail.bucket}/{victim_file}"},
                                                      "sk": {"S": "FILE"}},
                          UpdateExpression="SET matched = :z", ExpressionAttributeValues={":z": {"N": "0"}})
    assert trail.cli(tmp_path)[0] == 0  # the ledger is believed: the file is not read again
    code, result = trail.cli(tmp_path, "--events-every-file")
    assert code == 1
    assert sorted((f["kind"], f["event_id"]) for f in result["events"]["streams"][0]["findings"]) == \
        sorted(("missing", eid) for eid in trail.opsworks_ids[victim_file])


def test_the_fields_the_store_sets_itself_are_not_compared(trail: SignedTrail) -> None:
    trail.write(hours=1)
    trail.ingest()
    victim = trail.opsworks_ids[sorted(trail.logs)[0]][0]
    tamper_field(trail, victim, "ingested_at", "2030-01-01T00:00:00Z")
    assert trail.prove().findings == []


def test_an_index_key_changed_beside_the_document_is_altered(trail: SignedTrail) -> None:
    trail.write(hours=1)
    trail.ingest()
    victim = trail.opsworks_ids[sorted(trail.logs)[0]][1]
    trail.put(dict(trail.event_item(victim), actor_pk="arn:aws:iam::111122223333:user/mallory"))
    report = trail.prove()
    assert findings(report) == [("altered", victim)]
    assert "actor_pk" in report.findings[0].detail


def test_a_nested_field_is_named_with_its_map(trail: SignedTrail) -> None:
    trail.write(hours=1)
    trail.ingest()
    victim = trail.opsworks_ids[sorted(trail.logs)[0]][0]
    item = trail.event_item(victim)
    event = restore(item)
    event["actor"] = dict(event["actor"], name="bob")
    trail.put(dict(item, event=encode(event)))
    report = trail.prove()
    assert findings(report) == [("altered", victim)] and "actor.name" in report.findings[0].detail


# -- bad input ----------------------------------------------------------------------------------------------

def test_a_range_with_no_digests_is_not_provable_and_exits_0(trail: SignedTrail, tmp_path: Path) -> None:
    trail.write(signed=False)
    trail.ingest()
    code, result = trail.cli(tmp_path)
    assert code == 0 and result["events"]["streams"] == [] and result["events"]["findings"] == 0
    keys = tmp_path / "keys.json"
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["verify", f"s3://{trail.bucket}/", "--events", "--public-keys", str(keys),
                     "--table", trail.table]) == 0
    assert "Not provable: no verified digest in the range" in out.getvalue()


def test_a_log_file_deleted_since_it_was_read_is_named_and_its_events_unbacked(trail: SignedTrail) -> None:
    trail.write()
    trail.ingest()
    victim = sorted(k for k, ids in trail.opsworks_ids.items() if ids)[1]
    trail.s3.delete_object(Bucket=trail.bucket, Key=victim)
    report = trail.prove()
    assert findings(report) == sorted([("file-deleted", ""), *(("unbacked", i) for i in trail.opsworks_ids[victim])])
    assert {f.file for f in report.findings} == {uri(trail, victim)}
    assert all("deleted since it was read" in f.detail for f in report.findings if f.kind == "unbacked")


def test_a_document_that_does_not_decode_is_altered(trail: SignedTrail) -> None:
    trail.write(hours=1)
    trail.ingest()
    victim = trail.opsworks_ids[sorted(trail.logs)[0]][1]
    trail.put(dict(trail.event_item(victim), event='{"event_id": "truncated'))
    report = trail.prove()
    assert findings(report) == [("altered", victim)] and "does not decode" in report.findings[0].detail


def test_a_log_file_changed_since_it_was_read_backs_nothing(trail: SignedTrail) -> None:
    trail.write(hours=1)
    trail.ingest()
    victim = sorted(k for k, ids in trail.opsworks_ids.items() if ids)[0]
    trail.s3.put_object(Bucket=trail.bucket, Key=victim, Body=gz([record(1, START)]))
    report = trail.prove()
    kinds = {(f.kind, f.event_id) for f in report.findings}
    assert ("file-altered", "") in kinds
    assert {("unbacked", i) for i in trail.opsworks_ids[victim]} <= kinds


def test_an_event_from_a_file_no_digest_lists_is_unbacked(trail: SignedTrail) -> None:
    trail.write(hours=2)
    late = log_key(ACCOUNT, REGION, START + timedelta(minutes=50), 77)
    trail.add_file(late, [record(7777, START + timedelta(minutes=50))])  # delivered after the digests were made
    trail.ingest()
    report = trail.prove()
    assert findings(report) == [("unbacked", event_id(7777))]
    assert "no verified digest lists" in report.findings[0].detail and report.findings[0].file == uri(trail, late)


def test_events_outside_the_verified_period_are_counted_not_findings(trail: SignedTrail) -> None:
    trail.write(hours=2)
    after = START + timedelta(hours=5)
    late = log_key(ACCOUNT, REGION, after, 88)
    trail.add_file(late, [record(8888, after)])  # not digested yet
    trail.ingest()
    report = trail.prove()
    assert report.findings == [] and report.total("events_outside") == 1


def test_an_event_in_two_verified_files_is_backed_by_either(trail: SignedTrail) -> None:
    trail.write(hours=2, signed=False)
    first, second = sorted(k for k, ids in trail.opsworks_ids.items() if ids)[:2]
    again = json.loads(gzip.decompress(trail.logs[first]))["Records"][0]
    records = json.loads(gzip.decompress(trail.logs[second]))["Records"]
    trail.add_file(second, [*records, again])
    trail.sign()
    trail.ingest(sorted(trail.logs, reverse=True))
    report = trail.prove()
    assert report.findings == []
    assert report.total("events_proven") == len({i for ids in trail.opsworks_ids.values() for i in ids})


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_one_tampered_event_is_named_by_its_id(moto_bucket: tuple[Any, str], moto_table: tuple[Any, str],
                                                   data: st.DataObject) -> None:
    s3, bucket = moto_bucket
    ddb, table = moto_table
    emptied(s3, bucket, ddb, table)  # the fixtures live across hypothesis examples
    trail = SignedTrail(s3, bucket, ddb, table)
    trail.write(hours=2)
    trail.ingest()
    ids = sorted(i for held in trail.opsworks_ids.values() for i in held)
    victim = data.draw(st.sampled_from(ids))
    change = data.draw(st.sampled_from(["edit", "delete", "garble"]))
    if change == "edit":
        name = data.draw(st.sampled_from(["event_name", "user_agent", "region", "outcome", "request_parameters"]))
        tamper_field(trail, victim, name, data.draw(st.text(min_size=1, max_size=20)))
        expected = "altered"
    elif change == "delete":
        ddb.delete_item(TableName=table, Key={"pk": {"S": f"EVENT#{victim}"}, "sk": {"S": "EVENT"}})
        expected = "missing"
    else:
        trail.put(dict(trail.event_item(victim), event=data.draw(st.text(max_size=30).filter(
            lambda t: not t.strip().startswith("{")))))
        expected = "altered"
    assert findings(trail.prove()) == [(expected, victim)]


# -- the record and the report -----------------------------------------------------------------------------

def test_the_result_is_recorded_and_the_report_counts_the_events_re_derived(
        trail: SignedTrail, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trail.write()
    trail.ingest()
    victim = trail.opsworks_ids[sorted(trail.logs)[0]][0]
    tamper_field(trail, victim, "event_name", "DeleteStack")
    assert trail.cli(tmp_path)[0] == 1
    capsys.readouterr()
    records = trail.store.query(KeyConditionExpression="pk = :p AND begins_with(sk, :e)",
                                ExpressionAttributeValues={":p": {"S": f"PROOF#{ACCOUNT}#{REGION}"},
                                                           ":e": {"S": "EVENTS#"}})
    (recorded,) = list(records)
    assert recorded["finding_event_ids"] == [victim] and recorded["status"] == "FINDINGS"
    assert main(["report", "--table", trail.table, "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    shown = sum(len(ids) for ids in trail.opsworks_ids.values())
    (proven,) = report["events_proven"]
    assert (proven["account"], proven["region"], proven["shown"], proven["re_derived"]) == \
        (ACCOUNT, REGION, shown, shown - 1)
    assert proven["verified_at"] == recorded["run_at"]
    assert main(["report", "--table", trail.table]) == 0
    assert f"{shown - 1} of {shown} shown events re-derived" in capsys.readouterr().out


def test_a_table_that_refuses_the_record_is_said_and_the_proof_still_printed(trail: SignedTrail) -> None:
    import argparse

    from botocore.exceptions import ClientError

    from cli.verify import prove_events

    trail.write(hours=1)
    trail.ingest()

    class ReadOnly(EventProof):
        def record(self, report: EventProofReport) -> None:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "explicit deny"}}, "PutItem")

    source = S3Source(trail.s3)
    prover = ReadOnly(trail.store, source.open, KeyRing([SIGNER.public_key()]),
                      Selection(frozenset(DEFAULT_EVENT_SOURCES)))
    args = argparse.Namespace(account=None, only_region=None, table=trail.table)
    report = prove_events(args, prover, RecordingBucket(source.list, S3Objects(trail.s3).fetch), trail.bucket, "",
                          None, None)
    assert report.findings == [] and report.total("events_proven") > 0
    assert "not recorded" in report.recorded


def test_the_html_report_shows_the_events_re_derived(trail: SignedTrail, tmp_path: Path) -> None:
    trail.write(hours=1)
    trail.ingest()
    assert trail.cli(tmp_path)[0] == 0
    page = tmp_path / "report.html"
    assert main(["report", "--table", trail.table, "--html", str(page)]) == 0
    html = page.read_text()
    assert "re-derived from verified log files" in html and html.index("re-derived") < html.index("</body>")
