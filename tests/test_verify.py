"""Proof from digests: `opsworks-trail verify` and the function's digest check find each planted fault,
name the object, and pass a clean bucket; a redelivered digest changes nothing."""

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
from workshop.sample_digests import DigestSigner, SignedDigest, chained_digests, digest_key, make_digest

from cli.main import main
from conftest import emptied
from core.ingest.digests import parse_digest
from core.ingest.pipeline import Pipeline
from core.ingest.proof import DigestCheck, S3Objects
from core.ingest.publickeys import KeyRing
from core.ingest.selection import Selection
from core.ingest.sinks import TableSink
from core.ingest.sources import S3Source
from core.ingest.store import EventStore, deserialize
from core.model import ObjectRef, Status
from core.read.verify import Verifier, VerifyReport, coverage_from_table
from core.settings import DEFAULT_EVENT_SOURCES

START = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
ACCOUNTS = ("111122223333", "444455556666")
SIGNER = DigestSigner()


def log_key(prefix: str, org: str | None, account: str, region: str, t: datetime, n: int) -> str:
    org_part = f"{org}/" if org else ""
    return (f"{prefix}AWSLogs/{org_part}{account}/CloudTrail/{region}/{t:%Y/%m/%d}/"
            f"{account}_CloudTrail_{region}_{t:%Y%m%dT%H%MZ}_{n:04d}abcd.json.gz")


def log_body(account: str, n: int, opsworks: bool) -> bytes:
    records = [{"eventVersion": "1.08", "eventID": f"00000000-0000-4000-8000-{n:012d}",
                "eventTime": "2024-05-01T10:00:00Z", "eventName": "DescribeStacks", "awsRegion": "us-east-1",
                "eventSource": "opsworks.amazonaws.com" if opsworks else "ec2.amazonaws.com",
                "recipientAccountId": account, "userIdentity": {"type": "Root", "accountId": account}}]
    return gzip.compress(json.dumps({"Records": records}).encode())


@dataclass
class Trail:
    s3: Any
    bucket: str
    ddb: Any
    table: str
    logs: dict[str, bytes] = field(default_factory=dict)
    digests: list[SignedDigest] = field(default_factory=list)

    @property
    def store(self) -> EventStore:
        return EventStore(self.ddb, self.table, sleep=lambda _: None)

    def write(self, *, prefix: str = "", org: str | None = None, hours: int = 4, per_hour: int = 2,
              regions: tuple[str, ...] = ("us-east-1",), signed: bool = True) -> None:
        logs: dict[str, bytes] = {}
        n = len(self.logs)
        for account in ACCOUNTS:
            for region in regions:
                for hour in range(hours):
                    for i in range(per_hour):
                        n += 1
                        t = START + timedelta(hours=hour, minutes=5 + 20 * i)
                        logs[log_key(prefix, org, account, region, t, n)] = log_body(account, n, n % 3 == 0)
        for key, body in logs.items():
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        self.logs.update(logs)
        if signed:
            digests = chained_digests(SIGNER, self.bucket, logs)
            for d in digests:
                self.put_digest(d)
            self.digests += digests

    def put_digest(self, d: SignedDigest, metadata: dict[str, str] | None = None) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=d.key, Body=d.body,
                           Metadata=d.metadata if metadata is None else metadata)

    def pipeline(self, **kwargs: Any) -> Pipeline:
        return Pipeline(open=S3Source(self.s3).open, selection=Selection(frozenset(DEFAULT_EVENT_SOURCES)),
                        sink=TableSink(self.store), max_decompressed_bytes=1 << 26, **kwargs)

    def ingest(self, keys: Any = None) -> None:
        pipeline = self.pipeline()
        for ref in S3Source(self.s3).list(self.bucket):
            if ref.key in self.logs and (keys is None or ref.key in keys):
                assert pipeline.ingest(ref).status is Status.INGESTED

    def verify(self, **kwargs: Any) -> VerifyReport:
        source = S3Source(self.s3)
        verifier = Verifier(list_objects=source.list, fetch=S3Objects(self.s3).fetch,
                            keys=KeyRing([SIGNER.public_key()]), store=self.store, open=source.open,
                            now=datetime(2030, 1, 1, tzinfo=UTC))
        return verifier.run(self.bucket, kwargs.pop("prefix", ""), **kwargs)


@pytest.fixture
def trail(moto_bucket: tuple[Any, str], moto_table: tuple[Any, str]) -> Trail:
    return Trail(*moto_bucket, *moto_table)


def kinds(report: VerifyReport) -> list[tuple[str, str]]:
    return sorted((f.kind, f.uri) for f in report.findings)


def uri(trail: Trail, key: str) -> str:
    return f"s3://{trail.bucket}/{key}"


# -- verify ----------------------------------------------------------------------------------------------

def test_a_valid_chain_of_ingested_files_is_proven(trail: Trail) -> None:
    trail.write()
    trail.ingest()
    report = trail.verify()
    assert report.findings == []
    assert [s.status for s in report.sorted()] == ["proven", "proven"]
    assert (report.total("digests"), report.total("verified"), report.total("listed"), report.total("ingested")) \
        == (8, 8, 16, 16)
    assert all(s.hours_verified == pytest.approx(4.0) and s.uncovered == 0 for s in report.sorted())


def test_the_cli_exits_0_on_a_clean_bucket_and_1_naming_each_fault(trail: Trail, tmp_path: Path) -> None:
    trail.write()
    trail.ingest()
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(SIGNER.listing()))
    argv = ["verify", f"s3://{trail.bucket}/", "--public-keys", str(keys), "--table", trail.table]
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(argv) == 0
    assert "No findings." in out.getvalue() and "proven" in out.getvalue()
    victim = sorted(trail.logs)[3]
    trail.s3.delete_object(Bucket=trail.bucket, Key=victim)
    out = io.StringIO()
    with redirect_stdout(out):
        assert main([*argv, "--format", "json"]) == 1
    result = json.loads(out.getvalue())
    assert result["findings"] == 1
    found = [f for s in result["streams"] for f in s["findings"]]
    assert found[0]["kind"] == "log-deleted" and found[0]["object"] == uri(trail, victim)


def test_a_log_file_edited_before_it_was_read_is_altered(trail: Trail) -> None:
    trail.write()
    victim = sorted(trail.logs)[1]
    trail.s3.put_object(Bucket=trail.bucket, Key=victim, Body=log_body(ACCOUNTS[0], 999, True))
    trail.ingest()
    report = trail.verify()
    assert kinds(report) == [("altered", uri(trail, victim))]
    assert "differs from the one CloudTrail delivered" in report.findings[0].detail


def test_a_log_file_edited_after_it_was_read_is_altered_by_etag_and_by_rehash(trail: Trail) -> None:
    trail.write()
    trail.ingest()
    victim = sorted(trail.logs)[5]
    trail.s3.put_object(Bucket=trail.bucket, Key=victim, Body=log_body(ACCOUNTS[1], 999, False))
    assert kinds(trail.verify()) == [("altered", uri(trail, victim))]
    rehashed = trail.verify(rehash=True)
    assert kinds(rehashed) == [("altered", uri(trail, victim))]


def test_rehash_finds_an_edit_that_kept_the_etag_the_ledger_knows(trail: Trail) -> None:
    trail.write()
    trail.ingest()
    victim = sorted(trail.logs)[2]
    trail.s3.put_object(Bucket=trail.bucket, Key=victim, Body=log_body(ACCOUNTS[0], 998, False))
    etag = trail.s3.head_object(Bucket=trail.bucket, Key=victim)["ETag"].strip('"')
    key = {"pk": {"S": f"FILE#{trail.bucket}/{victim}"}, "sk": {"S": "FILE"}}
    trail.ddb.update_item(TableName=trail.table, Key=key, UpdateExpression="SET etag = :e",
                          ExpressionAttributeValues={":e": {"S": etag}})
    assert trail.verify().findings == []
    report = trail.verify(rehash=True)
    assert kinds(report) == [("altered", uri(trail, victim))]
    assert "now differs" in report.findings[0].detail


def test_a_deleted_log_file_is_named(trail: Trail) -> None:
    trail.write()
    trail.ingest()
    victim = sorted(trail.logs)[0]
    trail.s3.delete_object(Bucket=trail.bucket, Key=victim)
    report = trail.verify()
    assert kinds(report) == [("log-deleted", uri(trail, victim))]
    assert "after it was ingested" in report.findings[0].detail


def test_a_deleted_digest_is_named_by_the_next_one(trail: Trail) -> None:
    trail.write()
    trail.ingest()
    victim = trail.digests[1]
    trail.s3.delete_object(Bucket=trail.bucket, Key=victim.key)
    report = trail.verify()
    assert kinds(report) == [("digest-deleted", uri(trail, victim.key))]
    assert trail.digests[2].key in report.findings[0].detail
    assert report.total("chain_breaks") == 1
    assert report.total("uncovered") == 2  # the files only the deleted digest listed


def test_a_forged_signature_is_named(trail: Trail) -> None:
    trail.write()
    trail.ingest()
    victim = trail.digests[2]
    trail.put_digest(victim, dict(victim.metadata, signature=DigestSigner().sign(b"forged")))
    report = trail.verify()
    assert kinds(report) == [("signature", uri(trail, victim.key))]
    assert "does not verify" in report.findings[0].detail


def test_a_digest_signed_by_the_wrong_key_is_named(trail: Trail) -> None:
    trail.write()
    trail.ingest()
    victim = trail.digests[0]
    fields = parse_digest(trail.bucket, victim.key, victim.body, {}).fields
    impostor = make_digest(DigestSigner(), trail.bucket, victim.key, str(fields["awsAccountId"]),
                           datetime.fromisoformat(str(fields["digestStartTime"])),
                           datetime.fromisoformat(str(fields["digestEndTime"])),
                           [(str(f["s3Object"]), str(f["hashValue"])) for f in fields["logFiles"]])  # type: ignore[attr-defined]
    trail.put_digest(impostor)
    report = trail.verify()
    assert ("signature", uri(trail, victim.key)) in kinds(report)
    assert "no CloudTrail public key has fingerprint" in report.findings[0].detail
    # the next digest's link names the real one's signature, which the impostor does not carry
    assert ("chain", uri(trail, trail.digests[1].key)) not in kinds(report)  # an untrusted digest is not linked


def test_a_log_file_never_delivered_to_the_function_is_missing(trail: Trail) -> None:
    trail.write()
    victim = sorted(trail.logs)[6]
    trail.ingest(set(trail.logs) - {victim})
    report = trail.verify()
    assert kinds(report) == [("missing", uri(trail, victim))]
    assert "never ingested" in report.findings[0].detail


def test_a_file_listed_in_the_last_hour_is_pending_not_missing(trail: Trail) -> None:
    trail.write()
    victim = sorted(trail.logs)[-1]
    trail.ingest(set(trail.logs) - {victim})
    source = S3Source(trail.s3)
    verifier = Verifier(source.list, S3Objects(trail.s3).fetch, KeyRing([SIGNER.public_key()]), trail.store,
                        now=START + timedelta(hours=4, minutes=30))
    report = verifier.run(trail.bucket)
    assert report.findings == [] and report.total("pending") == 1


def test_backfill_digests_count(trail: Trail) -> None:
    trail.write()
    late = log_key("", None, ACCOUNTS[0], "us-east-1", START + timedelta(minutes=55), 7777)
    trail.s3.put_object(Bucket=trail.bucket, Key=late, Body=log_body(ACCOUNTS[0], 7777, True))
    trail.logs[late] = log_body(ACCOUNTS[0], 7777, True)
    end = START + timedelta(hours=1, minutes=1, seconds=31)
    import hashlib

    backfill = make_digest(SIGNER, trail.bucket, digest_key("", None, ACCOUNTS[0], "us-east-1", end, backfill=True),
                           ACCOUNTS[0], end - timedelta(hours=1), end,
                           [(late, hashlib.sha256(gzip.decompress(trail.logs[late])).hexdigest())])
    trail.put_digest(backfill)
    trail.ingest()
    report = trail.verify(account=ACCOUNTS[0])
    stream = report.sorted()[0]
    assert report.findings == [] and (stream.backfill, stream.digests, stream.listed, stream.ingested) == (1, 5, 9, 9)
    assert stream.uncovered == 0


def test_organization_trails_and_custom_prefixes_are_proven(trail: Trail) -> None:
    trail.write(prefix="my trail+logs/", org="o-abc123", regions=("us-east-1", "eu-west-1"))
    trail.ingest()
    report = trail.verify(prefix="my trail+logs/")
    assert report.findings == [] and len(report.streams) == 4
    assert report.total("ingested") == report.total("listed") == 32


def test_validation_off_is_not_provable_and_no_failure(trail: Trail, tmp_path: Path) -> None:
    trail.write(signed=False)
    trail.ingest()
    report = trail.verify()
    assert report.findings == [] and {s.status for s in report.sorted()} == {"not provable"}
    assert report.total("log_files") == 16
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(SIGNER.listing()))
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["verify", f"s3://{trail.bucket}", "--public-keys", str(keys), "--table", trail.table]) == 0
    assert "not provable" in out.getvalue()


def test_the_range_and_filters_limit_what_is_verified(trail: Trail) -> None:
    trail.write(regions=("us-east-1", "eu-west-1"))
    trail.ingest()
    report = trail.verify(since=START + timedelta(hours=2), account=ACCOUNTS[1], region="eu-west-1")
    assert list(report.streams) == [(ACCOUNTS[1], "eu-west-1")]
    assert report.total("digests") == 3 and report.findings == []  # ending 12:01, 13:01, 14:01


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_one_planted_fault_is_found_and_named(moto_bucket: tuple[Any, str], moto_table: tuple[Any, str],
                                                 data: st.DataObject) -> None:
    s3, bucket = moto_bucket
    ddb, table = moto_table
    emptied(s3, bucket, ddb, table)  # the fixtures live across hypothesis examples
    trail = Trail(s3, bucket, ddb, table)
    trail.write(hours=data.draw(st.integers(2, 4)), per_hour=data.draw(st.integers(1, 3)))
    fault = data.draw(st.sampled_from(["edit", "delete-log", "delete-digest", "forge", "undelivered"]))
    logs = sorted(trail.logs)
    victim = data.draw(st.sampled_from(logs))
    digest = data.draw(st.sampled_from(trail.digests[1:]))  # one a later digest links to, or the last
    trail.ingest(set(logs) - {victim} if fault == "undelivered" else None)
    if fault == "edit":
        s3.put_object(Bucket=bucket, Key=victim, Body=b"{}")
    elif fault == "delete-log":
        s3.delete_object(Bucket=bucket, Key=victim)
    elif fault == "delete-digest":
        s3.delete_object(Bucket=bucket, Key=digest.key)
    elif fault == "forge":
        trail.put_digest(digest, dict(digest.metadata, signature="00" * 256))
    expected = {"edit": ("altered", victim), "delete-log": ("log-deleted", victim),
                "undelivered": ("missing", victim), "delete-digest": ("digest-deleted", digest.key),
                "forge": ("signature", digest.key)}[fault]
    named = kinds(trail.verify())
    last = trail.digests[-1].key == digest.key or not any(
        d.key != digest.key and parse_digest(bucket, d.key, d.body, {}).previous == (bucket, digest.key)
        for d in trail.digests)
    if fault == "delete-digest" and last:
        assert named == []  # the newest digest of a chain: nothing names it; its files show as not covered
    else:
        assert (expected[0], uri(trail, expected[1])) in named


# -- the function --------------------------------------------------------------------------------------

def digest_pipeline(trail: Trail, **kwargs: Any) -> Pipeline:
    check = DigestCheck(S3Objects(trail.s3).fetch, KeyRing([SIGNER.public_key()]), trail.store, **kwargs)
    return trail.pipeline(digests=check)


def scan(trail: Trail) -> list[dict[str, Any]]:
    return sorted((deserialize(i) for p in trail.ddb.get_paginator("scan").paginate(TableName=trail.table)
                   for i in p["Items"]), key=lambda i: (i["pk"], i["sk"]))


def ref_of(trail: Trail, key: str) -> ObjectRef:
    head = trail.s3.head_object(Bucket=trail.bucket, Key=key)
    return ObjectRef(trail.bucket, key, head["ContentLength"], head["ETag"].strip('"'))


def test_the_function_verifies_digests_and_a_redelivery_changes_nothing(trail: Trail) -> None:
    trail.write()
    trail.ingest()
    pipeline = digest_pipeline(trail)
    outcomes = [pipeline.ingest(ref_of(trail, d.key)) for d in trail.digests]
    assert {o.status for o in outcomes} == {Status.INGESTED} and not any(o.findings for o in outcomes)
    before = scan(trail)
    again = pipeline.ingest(ref_of(trail, trail.digests[3].key))
    assert again.status is Status.SKIPPED and again.reason.startswith("digest already verified")
    assert scan(trail) == before
    coverage = coverage_from_table(trail.store)
    assert [(s.account, s.verified, s.listed, s.ingested, s.findings) for s in coverage] == [
        (ACCOUNTS[0], 4, 8, 8, []), (ACCOUNTS[1], 4, 8, 8, [])]
    assert coverage[0].hours_verified == pytest.approx(4.0)


def test_the_function_records_a_forged_digest_as_a_finding_not_a_failure(trail: Trail) -> None:
    trail.write()
    trail.ingest()
    victim = trail.digests[1]
    trail.put_digest(victim, dict(victim.metadata, signature="ab" * 256))
    outcome = digest_pipeline(trail).ingest(ref_of(trail, victim.key))
    assert outcome.status is Status.INGESTED and len(outcome.findings) == 1
    assert victim.key in outcome.findings[0] and "does not verify" in outcome.findings[0]
    coverage = coverage_from_table(trail.store)
    assert coverage[0].failed == 1 and coverage[0].findings


def test_the_function_finds_an_altered_file_and_a_broken_chain(trail: Trail) -> None:
    trail.write()
    victim = sorted(trail.logs)[0]
    trail.s3.put_object(Bucket=trail.bucket, Key=victim, Body=log_body(ACCOUNTS[0], 4242, False))
    trail.ingest()
    pipeline = digest_pipeline(trail)
    first = pipeline.ingest(ref_of(trail, trail.digests[0].key))
    assert any(victim in f and "altered" in f for f in first.findings)
    second = trail.digests[1]
    fields = json.loads(gzip.decompress(second.body))
    first_digest = trail.digests[0]
    not_the_first = SignedDigest(first_digest.key, b"", {"signature": "cd" * 256}, first_digest.sha256)
    relinked = make_digest(SIGNER, trail.bucket, second.key, ACCOUNTS[0],
                           datetime.fromisoformat(fields["digestStartTime"]),
                           datetime.fromisoformat(fields["digestEndTime"]),
                           [(f["s3Object"], f["hashValue"]) for f in fields["logFiles"]], not_the_first)
    trail.put_digest(relinked)
    outcome = pipeline.ingest(ref_of(trail, second.key))
    assert any("chain broken" in f for f in outcome.findings)


def test_files_still_absent_when_the_next_digest_arrives_are_missing(trail: Trail) -> None:
    trail.write()
    first, second = trail.digests[0], trail.digests[1]
    listed = [f.key for f in parse_digest(trail.bucket, first.key, first.body, {}).log_files]
    trail.ingest(set(trail.logs) - set(listed))
    pipeline = digest_pipeline(trail, grace=timedelta(0))
    assert pipeline.ingest(ref_of(trail, first.key)).reason.endswith("2 not ingested yet")
    outcome = pipeline.ingest(ref_of(trail, second.key))
    assert outcome.missing_files == 2 and outcome.findings == []
    coverage = coverage_from_table(trail.store, grace=timedelta(0))[0]
    assert coverage.missing == 2 and {f.uri for f in coverage.findings} == {uri(trail, k) for k in listed}


def test_the_handler_verifies_digests_and_counts_findings(trail: Trail, monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import handlers.ingest as ingest

    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(SIGNER.listing()))
    monkeypatch.setenv("TABLE_NAME", trail.table)
    monkeypatch.setenv("DIGEST_PUBLIC_KEYS", str(keys))
    monkeypatch.setattr(ingest, "s3_client", trail.s3)
    monkeypatch.setattr(ingest, "dynamodb_client", trail.ddb)
    ingest.pipeline.cache_clear()
    try:
        trail.write()
        trail.put_digest(trail.digests[0], dict(trail.digests[0].metadata, signature="ab" * 256))
        event = {"s3Bucket": trail.bucket, "s3ObjectKey": [*sorted(trail.logs), *(d.key for d in trail.digests)]}

        class Context:
            function_name, memory_limit_in_mb, aws_request_id = "ingest", 512, "r"
            invoked_function_arn = "arn:aws:lambda:us-east-1:111122223333:function:ingest"

        assert ingest.lambda_handler(event, Context()) == {"batchItemFailures": []}
    finally:
        ingest.pipeline.cache_clear()
    emitted = capsys.readouterr().out
    assert '"IntegrityFindings":[1.0]' in emitted
    coverage = coverage_from_table(trail.store)
    assert [s.verified for s in coverage] == [3, 4]
    assert [f.uri for f in coverage[0].findings] == [uri(trail, trail.digests[0].key)]


# -- the report's coverage section ---------------------------------------------------------------------

def test_the_report_states_the_coverage_the_function_verified(trail: Trail, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    trail.write(regions=("us-east-1", "eu-west-1"))
    trail.ingest()
    pipeline = digest_pipeline(trail)
    for d in trail.digests:
        pipeline.ingest(ref_of(trail, d.key))
    page = tmp_path / "report.html"
    assert main(["report", "--table", trail.table, "--html", str(page), "--format", "json"]) == 0
    coverage = json.loads(capsys.readouterr().out)["coverage"]
    assert [(c["account"], c["region"], c["status"], c["hours_verified"], c["log_files"]["ingested"])
            for c in coverage] == [(a, r, "proven", 4.0, 8) for a in ACCOUNTS for r in ("eu-west-1", "us-east-1")]
    html = page.read_text()
    assert "Coverage: what CloudTrail" in html and html.index("Coverage") < html.index("</body>")
    assert main(["report", "--table", trail.table]) == 0
    assert "proven" in capsys.readouterr().out


def test_the_report_says_not_provable_without_digests_and_lists_findings(trail: Trail,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from cli.present.report import add_coverage_html, render_coverage_text

    assert "Not provable" in render_coverage_text([])
    assert "Not provable" in add_coverage_html("<html><body></body></html>", [])
    trail.write()
    trail.ingest()
    trail.put_digest(trail.digests[0], dict(trail.digests[0].metadata, signature="ab" * 256))
    digest_pipeline(trail).ingest(ref_of(trail, trail.digests[0].key))
    streams = coverage_from_table(trail.store)
    assert trail.digests[0].key in render_coverage_text(streams)
    assert trail.digests[0].key in add_coverage_html("<body></body>", streams)


def test_hours_proven_count_each_hour_once_when_trails_overlap() -> None:
    from core.read.verify import StreamReport

    stream = StreamReport("1", "r")
    stream.covers("2024-05-01T00:00:00Z", "2024-05-01T02:00:00Z")
    stream.covers("2024-05-01T01:00:00Z", "2024-05-01T03:00:00Z")
    stream.covers("2024-05-01T05:00:00Z", "2024-05-01T06:00:00Z")
    assert stream.hours_verified == pytest.approx(4.0)


def test_verify_names_a_bucket_it_cannot_read(moto_table: tuple[Any, str], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(SIGNER.listing()))
    assert main(["verify", "s3://no-such-bucket/", "--public-keys", str(keys), "--table", moto_table[1]]) == 2
    assert "s3://no-such-bucket/" in capsys.readouterr().err
