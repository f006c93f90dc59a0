"""`opsworks-trail backfill --batch-operations | --estimate | --status`: the job asked of S3 Batch Operations
(validated by botocore's own API model), the estimate's arithmetic and sample, --yes, watching, bad input,
and what the function does with what the job hands it."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import ANY, Stubber
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from workshop.synthetic import SampleManifest, upload_to_s3
from workshop.trail_bucket import TrailBucket

from cli import backfill
from cli.backfill_estimate import (
    PRICES,
    WRITES_PER_DIGEST,
    WRITES_PER_LOG_FILE,
    Volume,
    estimate,
    sample_trail,
)
from cli.backfill_jobs import (
    JobTarget,
    create_job,
    generated_manifest_request,
    inventory_request,
    read_inventory,
    trail_selection,
)
from cli.errors import CliError, Exit
from cli.main import main
from core.model import ObjectRef

ACCOUNT = "111122223333"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/batch"
FUNCTION = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:ingest"
TARGET = JobTarget(ACCOUNT, ROLE, FUNCTION, "backfill-bucket", "opsworks-trail/backfill/")
JOB_ARGS = ["--account-id", ACCOUNT, "--role-arn", ROLE, "--function-arn", FUNCTION,
            "--report-bucket", "backfill-bucket"]
US = PRICES["us-east-1"]


def s3control() -> Any:
    return boto3.client("s3control", region_name="us-east-1")


def expected_job(manifest: dict[str, Any]) -> dict[str, Any]:
    return {
        "AccountId": ACCOUNT, "ConfirmationRequired": False,
        "Operation": {"LambdaInvoke": {"FunctionArn": FUNCTION, "InvocationSchemaVersion": "2.0"}},
        **manifest,
        "Report": {"Bucket": "arn:aws:s3:::backfill-bucket", "Format": "Report_CSV_20180820", "Enabled": True,
                   "Prefix": "opsworks-trail/backfill", "ReportScope": "FailedTasksOnly"},
        "Priority": 10, "RoleArn": ROLE, "ClientRequestToken": ANY, "Description": ANY,
    }


# -- the job request ---------------------------------------------------------------------------------------


def test_generated_manifest_job_names_the_trail_prefixes_suffix_and_dates_and_the_api_accepts_it() -> None:
    selection = trail_selection("trail-bucket", "AWSLogs/o-abc1234567/", accounts=(ACCOUNT,),
                                regions=("us-east-1", "eu-west-1"), since=date(2024, 5, 1), until=date(2024, 5, 31))
    request = generated_manifest_request(TARGET, selection)
    base = "AWSLogs/o-abc1234567/111122223333/"
    manifest = {"ManifestGenerator": {"S3JobManifestGenerator": {
        "SourceBucket": "arn:aws:s3:::trail-bucket",
        "EnableManifestOutput": True,
        "ManifestOutputLocation": {"Bucket": "arn:aws:s3:::backfill-bucket",
                                   "ManifestPrefix": "opsworks-trail/backfill/manifest-generated",
                                   "ManifestEncryption": {"SSES3": {}},
                                   "ManifestFormat": "S3InventoryReport_CSV_20211130"},
        "Filter": {"KeyNameConstraint": {
            "MatchAnySuffix": [".json.gz"],
            "MatchAnyPrefix": [f"{base}CloudTrail/us-east-1/", f"{base}CloudTrail/eu-west-1/",
                               f"{base}CloudTrail-Digest/us-east-1/", f"{base}CloudTrail-Digest/eu-west-1/"]},
            "CreatedAfter": datetime(2024, 5, 1, tzinfo=UTC),
            "CreatedBefore": datetime(2024, 6, 1, tzinfo=UTC)}}}}
    client = s3control()
    with Stubber(client) as stub:  # the client validates the request against the CreateJob model first
        stub.add_response("create_job", {"JobId": "job-1"}, expected_job(manifest))
        assert create_job(client, request) == "job-1"
        stub.assert_no_pending_responses()
    assert "Manifest" not in request


def test_a_trail_prefix_alone_is_one_prefix_and_regions_alone_are_substrings() -> None:
    whole = generated_manifest_request(TARGET, trail_selection("b", "AWSLogs/"))
    assert whole["ManifestGenerator"]["S3JobManifestGenerator"]["Filter"] == {
        "KeyNameConstraint": {"MatchAnySuffix": [".json.gz"], "MatchAnyPrefix": ["AWSLogs/"]}}
    regions = generated_manifest_request(TARGET, trail_selection("b", "AWSLogs/", regions=("us-east-1",)))
    assert regions["ManifestGenerator"]["S3JobManifestGenerator"]["Filter"]["KeyNameConstraint"] == {
        "MatchAnySuffix": [".json.gz"], "MatchAnyPrefix": ["AWSLogs/"],
        "MatchAnySubstring": ["/CloudTrail/us-east-1/", "/CloudTrail-Digest/us-east-1/"]}
    bucket = generated_manifest_request(TARGET, trail_selection("b", ""))
    assert "MatchAnyPrefix" not in bucket["ManifestGenerator"]["S3JobManifestGenerator"]["Filter"]["KeyNameConstraint"]


def test_many_accounts_and_regions_become_account_prefixes_and_region_substrings() -> None:
    accounts = tuple(f"{100000000000 + i:012d}" for i in range(300))
    regions = tuple(f"us-test-{i}" for i in range(17))
    selection = trail_selection("b", "AWSLogs/o-abc1234567/", accounts=accounts, regions=regions)
    assert selection.prefixes == tuple(f"AWSLogs/o-abc1234567/{a}/" for a in accounts)
    assert selection.substrings == tuple(f"/{k}/{r}/" for k in ("CloudTrail", "CloudTrail-Digest") for r in regions)
    few = trail_selection("b", "AWSLogs/", accounts=accounts[:2], regions=regions[:2])
    assert len(few.prefixes) == 8 and few.substrings == ()
    client = s3control()
    with Stubber(client) as stub:  # 300 prefixes and 34 substrings: a request the API model accepts
        stub.add_response("create_job", {"JobId": "job-1"})
        assert create_job(client, generated_manifest_request(TARGET, selection)) == "job-1"


def test_the_same_request_twice_has_one_token_and_again_another() -> None:
    selection = trail_selection("b", "AWSLogs/", since=date(2024, 1, 1))
    first = generated_manifest_request(TARGET, selection)
    assert generated_manifest_request(TARGET, selection)["ClientRequestToken"] == first["ClientRequestToken"]
    assert generated_manifest_request(TARGET, selection, again="#1")["ClientRequestToken"] != \
        first["ClientRequestToken"]
    other = generated_manifest_request(TARGET, trail_selection("b", "AWSLogs/", since=date(2024, 1, 2)))
    assert other["ClientRequestToken"] != first["ClientRequestToken"]


def test_accounts_need_a_location_that_ends_at_the_accounts() -> None:
    with pytest.raises(CliError, match="must end at the accounts") as raised:
        trail_selection("b", "logs/", accounts=(ACCOUNT,))
    assert raised.value.code == Exit.USAGE
    with pytest.raises(CliError, match="12-digit"):
        trail_selection("b", "AWSLogs/", accounts=("12345",))


INVENTORY_KEY = "inventory/trail-bucket/all/2024-06-01T01-00Z/manifest.json"


def inventory_manifest(**changes: Any) -> dict[str, Any]:
    document = {"sourceBucket": "trail-bucket", "destinationBucket": "arn:aws:s3:::inventory-bucket",
                "version": "2016-11-30", "creationTimestamp": "1717203600000", "fileFormat": "CSV",
                "fileSchema": "Bucket, Key, Size, LastModifiedDate",
                "files": [{"key": "inventory/trail-bucket/all/data/a.csv.gz", "size": 100, "MD5checksum": "x"}]}
    document.update(changes)
    return document


@pytest.fixture
def inventory_bucket(moto_aws: None) -> Any:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="inventory-bucket")
    return s3


def test_inventory_job_points_at_its_manifest_json_with_the_etag_read(inventory_bucket: Any) -> None:
    inventory_bucket.put_object(Bucket="inventory-bucket", Key=INVENTORY_KEY,
                                Body=json.dumps(inventory_manifest()).encode())
    etag = inventory_bucket.head_object(Bucket="inventory-bucket", Key=INVENTORY_KEY)["ETag"].strip('"')
    inventory = read_inventory(inventory_bucket, f"s3://inventory-bucket/{INVENTORY_KEY}", "trail-bucket")
    manifest = {"Manifest": {"Spec": {"Format": "S3InventoryReport_CSV_20161130"},
                             "Location": {"ObjectArn": f"arn:aws:s3:::inventory-bucket/{INVENTORY_KEY}",
                                          "ETag": etag}}}
    client = s3control()
    with Stubber(client) as stub:
        stub.add_response("create_job", {"JobId": "job-2"}, expected_job(manifest))
        assert create_job(client, inventory_request(TARGET, inventory)) == "job-2"
        stub.assert_no_pending_responses()


@pytest.mark.parametrize(("document", "message", "code"), [
    (inventory_manifest(sourceBucket="another-bucket"), "lists bucket another-bucket, not the trail bucket",
     Exit.USAGE),
    (inventory_manifest(fileFormat="ORC"), "in ORC format: S3 Batch Operations reads CSV inventory reports only",
     Exit.USAGE),
    (inventory_manifest(fileFormat="Parquet"), "in Parquet format", Exit.USAGE),
    (inventory_manifest(files=[]), "lists no data file", Exit.NOTHING),
    (inventory_manifest(fileSchema="Bucket, Size"), "has no Key field", Exit.USAGE),
    ({"sourceBucket": "trail-bucket"}, "is not an S3 Inventory manifest.json", Exit.USAGE),
    ("not json", "is not an S3 Inventory manifest.json", Exit.USAGE),
])
def test_an_inventory_of_another_bucket_or_format_is_refused_by_name(
        inventory_bucket: Any, document: Any, message: str, code: Exit) -> None:
    body = document if isinstance(document, str) else json.dumps(document)
    inventory_bucket.put_object(Bucket="inventory-bucket", Key=INVENTORY_KEY, Body=body.encode())
    with pytest.raises(CliError, match=message) as raised:
        read_inventory(inventory_bucket, f"s3://inventory-bucket/{INVENTORY_KEY}", "trail-bucket")
    assert raised.value.code == code


def test_a_missing_inventory_or_a_data_file_named_instead_is_refused(inventory_bucket: Any) -> None:
    with pytest.raises(CliError, match="does not exist") as raised:
        read_inventory(inventory_bucket, f"s3://inventory-bucket/{INVENTORY_KEY}", "trail-bucket")
    assert raised.value.code == Exit.NOT_FOUND
    with pytest.raises(CliError, match=r"name the inventory report's manifest\.json"):
        read_inventory(inventory_bucket, "s3://inventory-bucket/inventory/data/a.csv.gz", "trail-bucket")


# -- the estimate ------------------------------------------------------------------------------------------


def test_estimate_of_a_million_one_megabyte_log_files_at_us_east_1_list_prices() -> None:
    volume = Volume(log_files=1_000_000, log_bytes=1_000_000 * 10**6, digests=0, digest_bytes=0, list_calls=100)
    found = estimate(volume, US, concurrency=1000, memory_mb=512, generated=True)
    assert found.dollars == pytest.approx({
        "S3 GET": 0.40, "S3 LIST": 0.0005, "Batch Operations": 0.25 + 1.00 + 0.015,
        "Lambda": 0.20 + 1_000_000 * 0.080 * 0.5 * 0.0000133334, "DynamoDB": 0.625})
    assert found.hours == pytest.approx(1_000_000 * 0.080 / 1000 / 3600)
    assert (found.s3_gets, found.dynamodb_writes, found.lambda_invocations) == (1_000_000, 1_000_000, 1_000_000)


volumes = st.builds(Volume, log_files=st.integers(0, 10**10), log_bytes=st.integers(0, 10**15),
                    digests=st.integers(0, 10**9), digest_bytes=st.integers(0, 10**13), others=st.integers(0, 10**6),
                    list_calls=st.integers(0, 10**4))


@given(volume=volumes, concurrency=st.integers(1, 100_000), memory=st.sampled_from([128, 512, 1769, 10240]),
       generated=st.booleans())
def test_estimate_parts_add_up_and_scale_with_the_volume(volume: Volume, concurrency: int, memory: int,
                                                        generated: bool) -> None:
    found = estimate(volume, US, concurrency=concurrency, memory_mb=memory, generated=generated)
    assert found.total_dollars == pytest.approx(sum(found.dollars.values()))
    assert found.s3_gets == volume.log_files + volume.digests
    assert found.lambda_invocations == found.batch_objects == volume.objects
    assert found.dynamodb_writes == volume.log_files * WRITES_PER_LOG_FILE + volume.digests * WRITES_PER_DIGEST
    assert found.manifest_objects == (volume.objects if generated else 0)
    double = Volume(*(2 * getattr(volume, f) for f in ("log_files", "log_bytes", "digests", "digest_bytes",
                                                          "others")), list_calls=2 * volume.list_calls)
    twice = estimate(double, US, concurrency=concurrency, memory_mb=memory, generated=generated)
    assert twice.total_dollars - US.batch_job == pytest.approx(2 * (found.total_dollars - US.batch_job))
    assert twice.hours == pytest.approx(2 * found.hours)
    wider = estimate(volume, US, concurrency=2 * concurrency, memory_mb=memory, generated=generated)
    assert wider.hours == pytest.approx(found.hours / 2) and wider.total_dollars == pytest.approx(found.total_dollars)


REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(accounts=st.integers(1, 6), regions=st.integers(1, 4), days=st.integers(1, 90),
       first=st.dates(date(2022, 1, 1), date(2024, 12, 31)), logs=st.integers(1, 30), digests=st.integers(0, 24),
       since_offset=st.integers(-40, 100), length=st.integers(0, 120))
def test_the_prefix_sample_counts_a_uniform_bucket_exactly_or_says_it_selects_nothing(
        accounts: int, regions: int, days: int, first: date, logs: int, digests: int, since_offset: int,
        length: int) -> None:
    bucket = TrailBucket(accounts=accounts, regions=REGIONS[:regions], first_day=first, days=days,
                         logs_per_day=logs, digests_per_day=digests, log_size=1000, digest_size=10)
    since = first + timedelta(days=since_offset)
    until = since + timedelta(days=length)
    in_range = len({first + timedelta(days=i) for i in range(days)} &
                   {since + timedelta(days=i) for i in range(length + 1)})
    selection = trail_selection(bucket.name, bucket.prefix, since=since, until=until)
    if not in_range:
        with pytest.raises(CliError, match="selects nothing") as raised:
            sample_trail(bucket, selection, today=date(2030, 1, 1))
        assert raised.value.code == Exit.NOTHING
        return
    volume = sample_trail(bucket, selection, today=date(2030, 1, 1))
    pairs = accounts * regions * in_range
    assert (volume.log_files, volume.digests, volume.log_bytes) == (pairs * logs, pairs * digests, pairs * logs * 1000)
    assert volume.method.startswith("prefix-sampled")


def test_the_sample_makes_as_many_list_calls_for_a_billion_keys_as_for_a_million() -> None:
    small = TrailBucket(accounts=100, days=100, logs_per_day=25)
    large = TrailBucket(accounts=1000, regions=tuple(f"us-test-{i}" for i in range(17)), days=730, logs_per_day=100)
    assert small.key_count >= 1_000_000 and large.key_count >= 1_000_000_000
    calls = []
    for bucket in (small, large):
        volume = sample_trail(bucket, trail_selection(bucket.name, bucket.prefix, since=date(2024, 1, 1),
                                                      until=date(2024, 2, 29)), today=date(2030, 1, 1))
        calls.append(volume.list_calls)
        assert volume.log_files == bucket.accounts * len(bucket.regions) * 60 * bucket.logs_per_day
    assert calls[0] == calls[1] < 200


@pytest.mark.parametrize(("below", "days"), [("", 100), ("2024/", 100), ("2024/02/", 29), ("2024/02/03/", 1),
                                              ("2025/", 0)])
def test_a_location_below_a_region_folder_is_counted_for_its_days(below: str, days: int) -> None:
    bucket = TrailBucket(accounts=2, days=100, logs_per_day=7, digests_per_day=3)
    folder = f"{bucket.prefix}{bucket.account_ids[1]}/CloudTrail/us-west-2/{below}"
    selection = trail_selection(bucket.name, folder)
    if not days:
        with pytest.raises(CliError, match="selects nothing"):
            sample_trail(bucket, selection, today=date(2030, 1, 1))
        return
    volume = sample_trail(bucket, selection, today=date(2030, 1, 1))
    assert (volume.log_files, volume.digests) == (7 * days, 0)


@pytest.mark.parametrize(("accounts", "regions"), [(1, 0), (2, 0), (0, 1), (2, 3)])
def test_accounts_and_regions_narrow_the_sample_as_they_narrow_the_manifest(accounts: int, regions: int) -> None:
    bucket = TrailBucket(accounts=5, days=20, logs_per_day=4, digests_per_day=2)
    chosen_accounts = tuple(bucket.account_ids[:accounts])
    chosen_regions = bucket.regions[:regions]
    selection = trail_selection(bucket.name, bucket.prefix, accounts=chosen_accounts, regions=chosen_regions)
    volume = sample_trail(bucket, selection, today=date(2030, 1, 1))
    pairs = (accounts or 5) * (regions or len(bucket.regions)) * 20
    assert (volume.log_files, volume.digests) == (pairs * 4, pairs * 2)


def test_an_inventory_is_counted_from_its_data_files(inventory_bucket: Any) -> None:
    keys = [f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2024/05/0{d}/{ACCOUNT}_CloudTrail_us-east-1_2024050{d}T0000Z_"
            f"x{i}.json.gz" for d in range(1, 4) for i in range(5)]
    keys += [f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/us-east-1/2024/05/01/{ACCOUNT}_CloudTrail-Digest_us-east-1_"
             f"trail_us-east-1_20240501T0{h}0000Z.json.gz" for h in range(3)]
    keys += [f"AWSLogs/{ACCOUNT}/CloudTrail-Insight/us-east-1/2024/05/01/{ACCOUNT}_CloudTrail-Insight_x.json.gz"]
    rows = "".join(f'"trail-bucket","{k.replace("_", "_")}","2000","2024-05-01T00:00:00.000Z"\n' for k in keys)
    inventory_bucket.put_object(Bucket="inventory-bucket", Key="inventory/trail-bucket/all/data/a.csv.gz",
                                Body=gzip.compress(rows.encode()))
    inventory_bucket.put_object(Bucket="inventory-bucket", Key=INVENTORY_KEY,
                                Body=json.dumps(inventory_manifest()).encode())
    from cli.backfill_estimate import count_inventory

    inventory = read_inventory(inventory_bucket, f"s3://inventory-bucket/{INVENTORY_KEY}", "trail-bucket")
    volume = count_inventory(inventory_bucket, inventory, "AWSLogs/")
    assert (volume.log_files, volume.digests, volume.others, volume.log_bytes) == (15, 3, 1, 30_000)
    assert volume.method == "inventory: all 1 data files read, 19 rows" and volume.list_calls == 0
    with pytest.raises(CliError, match="lists objects outside other/"):
        count_inventory(inventory_bucket, inventory, "other/")


def test_a_large_inventory_is_read_up_to_a_row_budget_even_within_a_file_and_scaled(
        inventory_bucket: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import random

    from cli import backfill_estimate

    monkeypatch.setattr(backfill_estimate, "INVENTORY_ROWS_READ", 3_000)
    shuffle = random.Random(5)
    files = []
    for f in range(4):  # 4 files of 5,000 rows: one log file in two, the rest digests
        rows = []
        for i in range(5_000):
            day = 1 + shuffle.randrange(28)
            rows.append(f'"trail-bucket","AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2024/05/{day:02d}/{ACCOUNT}_'
                        f'CloudTrail_us-east-1_202405{day:02d}T0000Z_{f}x{i:05d}.json.gz","2000","2024-05-01"\n'
                        if i % 2 else
                        f'"trail-bucket","AWSLogs/{ACCOUNT}/CloudTrail-Digest/us-east-1/2024/05/{day:02d}/{ACCOUNT}_'
                        f'CloudTrail-Digest_us-east-1_trail_us-east-1_202405{day:02d}T{i % 24:02d}0000Z.json.gz",'
                        f'"900","2024-05-01"\n')
        body = gzip.compress("".join(rows).encode())
        key = f"inventory/trail-bucket/all/data/{f}.csv.gz"
        inventory_bucket.put_object(Bucket="inventory-bucket", Key=key, Body=body)
        files.append({"key": key, "size": len(body), "MD5checksum": "x"})
    inventory_bucket.put_object(Bucket="inventory-bucket", Key=INVENTORY_KEY,
                                Body=json.dumps(inventory_manifest(files=files)).encode())
    inventory = read_inventory(inventory_bucket, f"s3://inventory-bucket/{INVENTORY_KEY}", "trail-bucket")
    volume = backfill_estimate.count_inventory(inventory_bucket, inventory, "AWSLogs/")
    assert volume.method.startswith("inventory-sampled: 3,000 rows of 1 of 4 data files read")
    assert volume.log_files == pytest.approx(10_000, rel=0.1) and volume.digests == pytest.approx(10_000, rel=0.1)


# -- the command: estimate, --yes, start, bad input ------------------------------------------------------------


class Clients:
    """Stubbed clients for the command, each validated by botocore against its API model."""

    def __init__(self, bucket: TrailBucket, region: str = "us-east-1", s3control: Any = None) -> None:
        self.stubs: list[Stubber] = []
        self.s3 = bucket
        self.s3control = s3control or self._stubbed("s3control", region)
        self.iam = self._stubbed("iam", region)
        self.lambda_ = self._stubbed("lambda", region)
        self.cloudwatch = self._stubbed("cloudwatch", region)
        self.sqs = self._stubbed("sqs", region)
        self.sts = self._stubbed("sts", region)

    def _stubbed(self, service: str, region: str) -> Any:
        client = boto3.client(service, region_name=region)
        stub = Stubber(client)
        stub.activate()
        self.stubs.append(stub)
        setattr(self, f"{service}_stub", stub)
        return client

    def stub(self, service: str) -> Stubber:
        found: Stubber = getattr(self, f"{service}_stub")
        return found

    def all_answered(self) -> None:
        for stub in self.stubs:
            stub.assert_no_pending_responses()


@pytest.fixture
def org() -> TrailBucket:
    return TrailBucket(accounts=100, days=100, logs_per_day=25)


def use(monkeypatch: pytest.MonkeyPatch, clients: Clients) -> Clients:
    monkeypatch.setattr(backfill, "make_clients", lambda region: clients)
    return clients


def allow_role(clients: Clients, count: int) -> None:
    for _ in range(count):
        clients.stub("iam").add_response("simulate_principal_policy", {"EvaluationResults": [
            {"EvalActionName": "s3:Any", "EvalDecision": "allowed"}]})


def test_estimate_prints_volume_requests_dollars_and_hours_and_starts_nothing(
        org: TrailBucket, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    clients = use(monkeypatch, Clients(org))
    assert main(["backfill", f"s3://{org.name}/{org.prefix}", "--estimate", "--since", "2024-01-01",
                 "--until", "2024-01-31", "--concurrency", "500", "--memory-mb", "512"]) == 0
    out = capsys.readouterr().out.splitlines()
    objects = 100 * 4 * 31 * (25 + 24)
    assert out[0].startswith("estimate (prefix-sampled: 48 day folders listed, ") and f"{objects:,} objects" in out[0]
    assert out[1].startswith(f"requests: S3 {objects:,} GET")
    assert out[2].startswith("cost: $") and "us-east-1 list prices of" in out[2]
    assert "at a concurrency of 500" in out[3]
    clients.all_answered()


def test_a_run_over_the_threshold_needs_yes_and_starts_nothing_without_it(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    huge = TrailBucket(accounts=1000, regions=tuple(f"us-test-{i}" for i in range(17)), days=365, logs_per_day=100)
    clients = use(monkeypatch, Clients(huge))  # no create_job answer: calling it would fail the test
    command = ["backfill", f"s3://{huge.name}/{huge.prefix}", "--batch-operations", *JOB_ARGS,
               "--concurrency", "1000", "--memory-mb", "512", "--no-check-role"]
    assert main(command) == Exit.USAGE
    err = capsys.readouterr().err
    assert "over the threshold ($50 or 10,000,000 objects): run again with --yes to start it (nothing started)" in err
    clients.stub("s3control").add_response("create_job", {"JobId": "job-9"}, expected_job({"ManifestGenerator": ANY}))
    assert main([*command, "--yes"]) == 0
    out = capsys.readouterr().out
    assert "job job-9 started" in out and "--status job-9" in out
    clients.all_answered()


def test_a_small_run_starts_after_checking_the_role(
        org: TrailBucket, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    clients = use(monkeypatch, Clients(org))
    clients.stub("lambda").add_response("get_function_concurrency", {"ReservedConcurrentExecutions": 200},
                                        {"FunctionName": FUNCTION})
    clients.stub("lambda").add_response("get_function_configuration", {"MemorySize": 1024}, {"FunctionName": FUNCTION})
    allow_role(clients, 4)
    clients.stub("s3control").add_response("create_job", {"JobId": "job-3"}, expected_job({"ManifestGenerator": ANY}))
    assert main(["backfill", f"s3://{org.name}/{org.prefix}", "--batch-operations", *JOB_ARGS,
                 "--since", "2024-01-01", "--until", "2024-01-02"]) == 0
    out = capsys.readouterr().out
    assert "at a concurrency of 200" in out and "job job-3 started" in out
    clients.all_answered()


def test_the_estimate_says_when_it_could_not_read_the_functions_settings(
        org: TrailBucket, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    clients = use(monkeypatch, Clients(org))
    clients.stub("lambda").add_client_error("get_function_concurrency", "AccessDeniedException", "no", 403)
    assert main(["backfill", f"s3://{org.name}/{org.prefix}", "--estimate", "--since", "2024-01-01",
                 "--until", "2024-01-01", "--function-arn", FUNCTION]) == 0
    out = capsys.readouterr().out
    assert "at a concurrency of 1,000" in out
    assert ("(the function's settings unread (ClientError); concurrency: 1000, the account default (pass "
            "--concurrency); memory: 512 MB, the stack's)") in out
    clients.all_answered()


def test_dry_run_prints_the_create_job_request_and_starts_nothing(
        org: TrailBucket, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    clients = use(monkeypatch, Clients(org))
    assert main(["backfill", f"s3://{org.name}/{org.prefix}", "--batch-operations", *JOB_ARGS, "--since",
                 "2024-01-01", "--until", "2024-01-31", "--concurrency", "9", "--memory-mb", "512", "--no-check-role",
                 "--dry-run"]) == 0
    out = capsys.readouterr().out
    request = json.loads(out[out.index("the CreateJob request (--dry-run: not sent):") + 44:])
    generator = request["ManifestGenerator"]["S3JobManifestGenerator"]
    assert generator["Filter"]["CreatedAfter"] == "2024-01-01T00:00:00+00:00"
    assert generator["Filter"]["CreatedBefore"] == "2024-02-01T00:00:00+00:00"
    assert generator["Filter"]["KeyNameConstraint"]["MatchAnyPrefix"] == [org.prefix]
    clients.all_answered()


def test_start_after_is_refused_for_batch_operations(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backfill", "s3://b/AWSLogs/", "--batch-operations", *JOB_ARGS, "--start-after", "k"]) == Exit.USAGE
    assert "--start-after is the queue path's" in capsys.readouterr().err


@pytest.mark.parametrize(("location", "dates", "message"), [
    ("s3://org-trail-bucket/other/", [], "no CloudTrail log folder"),
    ("s3://org-trail-bucket/AWSLogs/o-abcdefghij/", ["--since", "2025-01-01"], "no day folder between 2025-01-01"),
])
def test_a_filter_that_selects_nothing_exits_nothing_started(
        org: TrailBucket, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], location: str,
        dates: list[str], message: str) -> None:
    clients = use(monkeypatch, Clients(org))
    assert main(["backfill", location, "--batch-operations", *JOB_ARGS, *dates, "--concurrency", "9",
                 "--memory-mb", "512"]) == Exit.NOTHING
    err = capsys.readouterr().err
    assert "the filter selects nothing" in err and message in err and len(err.splitlines()) == 1
    clients.all_answered()


def test_a_role_that_may_not_invoke_the_function_is_named_with_the_fix(
        org: TrailBucket, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    clients = use(monkeypatch, Clients(org))
    clients.stub("iam").add_response("simulate_principal_policy", {"EvaluationResults": [
        {"EvalActionName": "lambda:InvokeFunction", "EvalDecision": "implicitDeny"}]},
        {"PolicySourceArn": ROLE, "ActionNames": ["lambda:InvokeFunction"], "ResourceArns": [FUNCTION]})
    assert main(["backfill", f"s3://{org.name}/{org.prefix}", "--batch-operations", *JOB_ARGS, "--since",
                 "2024-01-01", "--until", "2024-01-01", "--concurrency", "9", "--memory-mb", "512"]) == Exit.DENIED
    err = capsys.readouterr().err
    assert f"the role {ROLE} may not invoke the function (lambda:InvokeFunction on {FUNCTION}: implicitDeny)" in err
    assert "grant it in the role's policy" in err
    clients.all_answered()


def test_a_role_that_may_not_list_the_trail_bucket_is_named(
        org: TrailBucket, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    clients = use(monkeypatch, Clients(org))
    allow_role(clients, 2)
    clients.stub("iam").add_response("simulate_principal_policy", {"EvaluationResults": [
        {"EvalActionName": "s3:ListBucket", "EvalDecision": "explicitDeny"}]})
    assert main(["backfill", f"s3://{org.name}/{org.prefix}", "--batch-operations", *JOB_ARGS, "--since",
                 "2024-01-01", "--until", "2024-01-01", "--concurrency", "9", "--memory-mb", "512"]) == Exit.DENIED
    assert f"may not list the trail bucket for the manifest (s3:ListBucket on arn:aws:s3:::{org.name}" in \
        capsys.readouterr().err


def test_create_job_denied_names_the_role_and_the_permissions_needed(
        org: TrailBucket, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    clients = use(monkeypatch, Clients(org))
    clients.stub("s3control").add_client_error("create_job", "AccessDenied", "Access Denied", 403)
    assert main(["backfill", f"s3://{org.name}/{org.prefix}", "--batch-operations", *JOB_ARGS, "--since",
                 "2024-01-01", "--until", "2024-01-01", "--concurrency", "9", "--memory-mb", "512",
                 "--no-check-role"]) == Exit.DENIED
    err = capsys.readouterr().err.strip()
    assert err == (f"opsworks-trail: CreateJob denied (AccessDenied: Access Denied): the caller needs s3:CreateJob "
                   f"and iam:PassRole on {ROLE}; the role itself needs what `backfill --check-role` lists")


def test_a_region_without_batch_operations_is_named_with_the_fix(
        org: TrailBucket, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    endpoint = f"https://{ACCOUNT}.s3-control.us-east-1.amazonaws.com/v20180820/jobs"

    class NoBatchOperations:
        """What botocore raises where the Region has no S3 Control endpoint (the name does not resolve)."""

        meta = type("Meta", (), {"region_name": "us-east-1"})

        def create_job(self, **request: Any) -> Any:
            raise EndpointConnectionError(endpoint_url=endpoint)

    use(monkeypatch, Clients(org, s3control=NoBatchOperations()))
    assert main(["backfill", f"s3://{org.name}/{org.prefix}", "--batch-operations", *JOB_ARGS, "--since",
                 "2024-01-01", "--until", "2024-01-01", "--concurrency", "9", "--memory-mb", "512",
                 "--no-check-role"]) == Exit.UNREACHABLE
    err = capsys.readouterr().err
    assert f"S3 Batch Operations is not reachable in us-east-1 ({endpoint})" in err
    assert "run the job in a Region that offers it" in err


def test_a_function_in_another_region_is_refused_before_anything(
        org: TrailBucket, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    use(monkeypatch, Clients(org, region="eu-west-1"))
    assert main(["backfill", f"s3://{org.name}/{org.prefix}", "--batch-operations", *JOB_ARGS]) == Exit.USAGE
    assert f"the function {FUNCTION} is in us-east-1 but the job would run in eu-west-1: pass --region us-east-1" \
        in capsys.readouterr().err
    assert org.calls == {}


def test_an_inventory_cannot_be_narrowed_by_date(org: TrailBucket, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    use(monkeypatch, Clients(org))
    assert main(["backfill", f"s3://{org.name}/", "--batch-operations", *JOB_ARGS, "--inventory",
                 "s3://inv/x/manifest.json", "--since", "2024-01-01"]) == Exit.USAGE
    assert "an inventory is handed over whole" in capsys.readouterr().err


def test_no_engine_named_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backfill", "s3://b/AWSLogs/"]) == Exit.USAGE
    assert "--batch-operations (or --estimate first), --status JOB_ID or --queue-url URL" in capsys.readouterr().err


# -- watching ------------------------------------------------------------------------------------------------


def describe(status: str, total: int, succeeded: int, failed: int, elapsed: int) -> dict[str, Any]:
    return {"Job": {"JobId": "job-7", "Status": status, "Priority": 10, "RoleArn": ROLE,
                    "ProgressSummary": {"TotalNumberOfTasks": total, "NumberOfTasksSucceeded": succeeded,
                                        "NumberOfTasksFailed": failed,
                                        "Timers": {"ElapsedTimeInActiveSeconds": elapsed}},
                    "Report": {"Bucket": "arn:aws:s3:::backfill-bucket", "Prefix": "opsworks-trail/backfill",
                               "Format": "Report_CSV_20180820", "Enabled": True, "ReportScope": "FailedTasksOnly"},
                    "GeneratedManifestDescriptor": {"Format": "S3InventoryReport_CSV_20211130", "Location": {
                        "ObjectArn": "arn:aws:s3:::backfill-bucket/opsworks-trail/backfill/manifest-generated/"
                                     "job-7/manifest.json", "ETag": "e"}}}}


def metrics(values: dict[str, list[float]]) -> dict[str, Any]:
    return {"MetricDataResults": [{"Id": name, "Label": name, "Values": v, "Timestamps": [
        datetime(2024, 1, 1, tzinfo=UTC)] * len(v), "StatusCode": "Complete"} for name, v in values.items()]}


def test_status_shows_tasks_eta_function_rates_and_dead_letters(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    clients = use(monkeypatch, Clients(TrailBucket()))
    clients.stub("s3control").add_response("describe_job", describe("Active", 1_000_000, 600_000, 5_000, 3_600),
                                           {"AccountId": ACCOUNT, "JobId": "job-7"})
    clients.stub("cloudwatch").add_response("get_metric_data", metrics({
        "ingested": [15_000.0] * 10, "skipped": [1_500.0] * 10, "digests": [3_000.0] * 5,
        "failed_permanent": [15.0], "failed_transient": [], "events": [30.0], "integrity": []}),
        {"MetricDataQueries": ANY, "StartTime": ANY, "EndTime": ANY, "ScanBy": "TimestampDescending"})
    clients.stub("sqs").add_response("get_queue_attributes", {"Attributes": {"ApproximateNumberOfMessages": "3"}},
                                     {"QueueUrl": "https://sqs.us-east-1.amazonaws.com/1/dlq",
                                      "AttributeNames": ["ApproximateNumberOfMessages"]})
    assert main(["backfill", "--status", "job-7", "--account-id", ACCOUNT,
                 "--dlq-url", "https://sqs.us-east-1.amazonaws.com/1/dlq"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "job job-7: Active; tasks 600,000 succeeded, 5,000 failed, 1,000,000 total (60.5%); "
        "ETA 39m 10s at the rate so far; active 1h 00m",
        "  manifest S3 generated: s3://backfill-bucket/opsworks-trail/backfill/manifest-generated/job-7/manifest.json",
        "  report of failed tasks: s3://backfill-bucket/opsworks-trail/backfill/job-job-7/",
        "function, per minute over the last 15 min: 10,000 files ingested, 1,000 skipped, 1,000 digests checked, "
        "1.0 failed (1.0 permanent), 2 events stored, 0.0 integrity findings",
        "dead-letter queue: 3 messages",
    ]
    clients.all_answered()


def test_watch_follows_the_job_until_it_ends_and_exits_partial_when_tasks_failed(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    clients = use(monkeypatch, Clients(TrailBucket()))
    clients.stub("sts").add_response("get_caller_identity", {"Account": ACCOUNT})
    for state in (describe("Preparing", 0, 0, 0, 0), describe("Active", 10, 4, 0, 40), describe("Complete", 10, 9, 1,
                                                                                                  90)):
        clients.stub("s3control").add_response("describe_job", state, {"AccountId": ACCOUNT, "JobId": "job-7"})
        clients.stub("cloudwatch").add_response("get_metric_data", metrics({}))
    monkeypatch.setattr(backfill.time, "sleep", lambda seconds: None)
    assert main(["backfill", "--status", "job-7", "--watch", "--interval", "0"]) == Exit.PARTIAL
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("job ")]
    assert lines == ["job job-7: Preparing; tasks 0 succeeded, 0 failed, 0 total; ETA -",
                     "job job-7: Active; tasks 4 succeeded, 0 failed, 10 total (40.0%); ETA 1m 00s at the rate so far; "
                     "active 0m 40s",
                     "job job-7: Complete; tasks 9 succeeded, 1 failed, 10 total (100.0%); ETA -; active 1m 30s"]
    clients.all_answered()


def test_status_of_an_unknown_job_says_so(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    clients = use(monkeypatch, Clients(TrailBucket()))
    clients.stub("s3control").add_client_error("describe_job", "NoSuchJob", "not found", 404)
    assert main(["backfill", "--status", "job-x", "--account-id", ACCOUNT]) == Exit.NOT_FOUND
    assert f"no Batch Operations job job-x in account {ACCOUNT}, us-east-1" in capsys.readouterr().err


def test_the_dashboard_draws_the_metrics_status_reads_and_the_function_emits() -> None:
    from cli.backfill_status import FUNCTION_METRICS, NAMESPACE
    from template_schema import load_template

    template = load_template()
    body = json.dumps(template["Resources"]["BackfillDashboard"]["Properties"]["DashboardBody"])
    handler = (Path(__file__).resolve().parent.parent / "src" / "handlers" / "ingest.py").read_text()
    for metric in FUNCTION_METRICS.values():
        assert f'\\"{metric}\\"' in body or f'"{metric}"' in body, metric
        emitted = metric in handler or (metric.startswith("Files") and 'f"Files{' in handler)
        assert emitted, metric
    assert NAMESPACE in body and "ApproximateNumberOfMessagesVisible" in body


# -- what the function does with what the job hands it ------------------------------------------------------


class FakeContext:
    function_name = "ingest"
    memory_limit_in_mb = 512
    invoked_function_arn = FUNCTION
    aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


@pytest.fixture
def handler(moto_table: tuple[Any, str], moto_bucket: tuple[Any, str], monkeypatch: pytest.MonkeyPatch,
            sample_bucket: tuple[Path, SampleManifest], tmp_path: Path) -> Iterator[tuple[Any, list[ObjectRef]]]:
    """handlers.ingest over moto, with the sample bucket uploaded; digest checks on when DIGEST_PUBLIC_KEYS is."""
    import handlers.ingest as ingest

    root, manifest = sample_bucket
    s3, bucket = moto_bucket
    upload_to_s3(root, s3, bucket, manifest.digest_metadata)
    refs = [ObjectRef(bucket, o["Key"]) for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    client, table = moto_table
    monkeypatch.setenv("TABLE_NAME", table)
    monkeypatch.setattr(ingest, "s3_client", s3)
    monkeypatch.setattr(ingest, "dynamodb_client", client)
    ingest.pipeline.cache_clear()
    yield ingest, refs
    ingest.pipeline.cache_clear()


def job_invocations(refs: list[ObjectRef]) -> list[dict[str, Any]]:
    """What a Batch Operations job (schema 2.0) sends: one task per invocation, keys URL-encoded."""
    from core.ingest.triggers import encode_key

    return [{"invocationSchemaVersion": "2.0", "invocationId": f"inv-{i}", "job": {"id": "job-1",
             "userArguments": {}}, "tasks": [{"taskId": f"t-{i}", "s3Bucket": ref.bucket,
                                             "s3Key": encode_key(ref.key), "s3VersionId": None}]}
            for i, ref in enumerate(refs)]


def run_job(ingest: Any, refs: list[ObjectRef]) -> dict[str, tuple[str, str]]:
    results = {}
    for event, ref in zip(job_invocations(refs), refs, strict=True):
        (result,) = ingest.lambda_handler(event, FakeContext())["results"]
        results[ref.key] = (result["resultCode"], result["resultString"])
    return results


def stored_ids(client: Any, table: str) -> list[str]:
    return [item["event_id"]["S"] for page in client.get_paginator("scan").paginate(TableName=table)
            for item in page["Items"] if item["sk"]["S"] == "EVENT"]


def test_digests_the_job_hands_over_are_verified_by_the_function_not_failed(
        handler: tuple[Any, list[ObjectRef]], sample_bucket: tuple[Path, SampleManifest], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    ingest, refs = handler
    _, manifest = sample_bucket
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(manifest.public_keys))
    monkeypatch.setenv("DIGEST_PUBLIC_KEYS", str(keys))
    selected = [r for r in refs if r.key.endswith(".json.gz")]  # what the generated manifest's filter keeps
    digests = [r.key for r in selected if "CloudTrail-Digest" in r.key]
    assert digests
    results = run_job(ingest, [r for r in selected if r.key not in digests] + [r for r in selected
                                                                               if r.key in digests])
    assert {code for code, _ in results.values()} == {"Succeeded"}
    assert all(results[k][1].startswith("ingested: digest verified") for k in digests), \
        [results[k] for k in digests][:2]
    assert '"DigestsChecked":[1.0]' in capsys.readouterr().out


def test_without_a_digest_check_the_function_skips_the_digests_as_succeeded(
        handler: tuple[Any, list[ObjectRef]]) -> None:
    ingest, refs = handler
    digests = [r for r in refs if "CloudTrail-Digest" in r.key and r.key.endswith(".json.gz")]
    results = run_job(ingest, digests)
    assert {code for code, _ in results.values()} == {"Succeeded"}
    assert all(text.startswith("skipped: digest file") for _, text in results.values()), results


def test_a_job_stopped_part_way_then_run_again_stores_nothing_twice(
        handler: tuple[Any, list[ObjectRef]], moto_table: tuple[Any, str],
        sample_bucket: tuple[Path, SampleManifest]) -> None:
    ingest, refs = handler
    _, manifest = sample_bucket
    selected = [r for r in refs if r.key.endswith(".json.gz")]
    first = run_job(ingest, selected[: len(selected) // 2])  # the job failed part-way: half the tasks ran
    assert {code for code, _ in first.values()} == {"Succeeded"}
    again = run_job(ingest, selected)  # the whole backfill again (--again)
    assert {code for code, _ in again.values()} == {"Succeeded"}
    ids = stored_ids(*moto_table)
    assert sorted(ids) == sorted(set(ids)) and set(ids) == set(manifest.expected)
    read_twice = [k for k in first if again[k][1].startswith("ingested") and "0 events" not in again[k][1]]
    assert read_twice == []
