"""`opsworks-trail sweep`: Event history of every account and Region into the table, every event once.

The organization, the roles and the Region lists are moto's; LookupEvents is tests/lookup_events_fake.py (moto
does not implement it): real botocore clients whose pages are checked against the CloudTrail model.
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from cli import sweep
from cli.main import build_parser
from core.ingest.items import restore
from core.ingest.pipeline import Pipeline
from core.ingest.selection import Selection
from core.ingest.sinks import TableSink
from core.ingest.sources import S3Source
from core.ingest.store import EventStore
from lookup_events_fake import FakeEventHistory, opsworks_record

REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2", "sa-east-1"]
NOW = datetime.now(UTC).replace(microsecond=0)
OPERATIONS = [("opsworks", "DescribeStacks"), ("opsworks", "StopInstance"), ("opsworkscm", "DescribeServers"),
              ("opsworks", "CreateDeployment"), ("opsworks", "DescribeInstances"), ("opsworkscm", "DeleteServer")]


def _records(account: str, region: str, count: int) -> list[dict[str, Any]]:
    return [opsworks_record(OPERATIONS[n % len(OPERATIONS)][1], service=OPERATIONS[n % len(OPERATIONS)][0],
                            account=account, region=region, when=NOW - timedelta(days=1 + 7 * n, hours=n),
                            caller=f"team-{n % 2}", error=n == 3, number=n)
            for n in range(count)]


@pytest.fixture
def organization(moto_aws: None) -> list[str]:
    """Three accounts: moto's management account and two members."""
    organizations = boto3.client("organizations", region_name="us-east-1")
    organizations.create_organization(FeatureSet="ALL")
    for name in ("build", "legacy"):
        organizations.create_account(Email=f"{name}@example.com", AccountName=name)
    return sorted(a["Id"] for a in organizations.list_accounts()["Accounts"])


def _run(argv: list[str], fake: FakeEventHistory) -> int:
    args = build_parser(["sweep", *argv]).parse_args(["sweep", *argv])
    return sweep.run(args, cloudtrail=fake.client, sleep=lambda _: None)


def _event_items(client: Any, table: str) -> dict[str, dict[str, Any]]:
    items = client.get_paginator("scan").paginate(TableName=table).build_full_result()["Items"]
    return {item["pk"]["S"]: item for item in items if item["sk"]["S"] == "EVENT"}


def _trail_key(account: str, region: str) -> str:
    return (f"AWSLogs/{account}/CloudTrail/{region}/{NOW:%Y/%m/%d}/"
            f"{account}_CloudTrail_{region}_{NOW:%Y%m%dT%H%MZ}_AbCdEfGh12345678.json.gz")


def test_sweep_of_three_accounts_by_four_regions_stores_every_event_once_and_lists_what_it_could_not_read(
        organization: list[str], moto_table: tuple[Any, str], capsys: pytest.CaptureFixture[str]) -> None:
    # Given 3 accounts x 4 Regions of Event history, one account-Region denying LookupEvents, one throttling
    client, table = moto_table
    records = {(a, r): _records(a, r, (i * 4 + j) % 6)
               for i, a in enumerate(organization) for j, r in enumerate(REGIONS)}
    denied, throttled = (organization[1], "eu-west-1"), (organization[2], "us-east-1")
    records[throttled] = _records(*throttled, 5)
    fake = FakeEventHistory(records, page_size=2, throttle={throttled: 3}, deny={denied})
    argv = ["--role-name", "audit", "--regions", ",".join(REGIONS), "--table", table, "--region", "us-east-1",
            "--no-progress"]

    # When the sweep runs
    code = _run(argv, fake)

    # Then every event of every readable account-Region is stored once, the denied pair is listed, exit 1
    out = capsys.readouterr().out
    readable = {pair: recs for pair, recs in records.items() if pair != denied}
    expected = {r["eventID"] for recs in readable.values() for r in recs}
    stored = _event_items(client, table)
    assert code == 1
    assert {restore(_plain(item))["event_id"] for item in stored.values()} == expected
    assert len(stored) == len(expected) == sum(len(recs) for recs in readable.values())
    assert f"not read: {denied[0]} {denied[1]}: AccessDeniedException" in out
    assert out.count("not read:") == 1
    assert fake.throttled[throttled] == 3  # throttled three times, then read to the end
    assert {r["eventID"] for r in records[throttled]} <= expected
    assert "OpsWorks is still called" in out.splitlines()[-1]
    first = {pk: restore(_plain(item)) for pk, item in stored.items()}
    assert all(e["source_object"] == {"key": f"lookup-events:{e['account_id']}:{e['region']}"} for e in first.values())

    # When it runs again, nothing new is written (the items are as the first run left them)
    assert _run(argv, fake) == 1
    again = capsys.readouterr().out
    assert _event_items(client, table) == stored
    rows = [line.split() for line in again.splitlines() if line.startswith(tuple(organization))]
    assert len(rows) == sum(1 for pair, recs in readable.items() if recs)
    assert {row[-1] for row in rows} == {"0"}  # the NEW column

    # When the same events are later read from trail files, they add nothing: same items, same events
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="org-trail")
    for (account, region), recs in readable.items():
        s3.put_object(Bucket="org-trail", Key=_trail_key(account, region),
                      Body=gzip.compress(json.dumps({"Records": recs}).encode()))
    pipeline = Pipeline(open=S3Source(s3).open, selection=Selection(frozenset(sweep.EVENT_SOURCES)),
                        sink=TableSink(EventStore(client, table, sleep=lambda _: None)), max_decompressed_bytes=1 << 24)
    outcomes = [pipeline.ingest(ref) for ref in S3Source(s3).list("org-trail", "AWSLogs/")]
    assert all(o.status.value == "ingested" for o in outcomes), [o.reason for o in outcomes]
    after = _event_items(client, table)
    assert set(after) == set(stored)
    from_trail = {pk: restore(_plain(item)) for pk, item in after.items()}
    assert {pk: _without_origin(e) for pk, e in from_trail.items()} == \
        {pk: _without_origin(e) for pk, e in first.items()}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    from core.ingest.store import deserialize

    return deserialize(item)


def _without_origin(event: Any) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k not in ("source_object", "ingested_at")}


def test_a_dry_run_prints_each_event_as_a_json_line_and_writes_nothing(
        moto_aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    account = boto3.client("sts", region_name="us-east-1").get_caller_identity()["Account"]
    records = {(account, "us-east-1"): _records(account, "us-east-1", 5)}
    fake = FakeEventHistory(records, page_size=2)

    code = _run(["--regions", "us-east-1", "--dry-run", "--format", "jsonl", "--region", "us-east-1",
                 "--no-progress"], fake)

    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert sorted(json.loads(line)["event_id"] for line in lines) == sorted(r["eventID"] for r in records[(account,
                                                                                                           "us-east-1")])
    assert not boto3.client("dynamodb", region_name="us-east-1").list_tables()["TableNames"]


def test_no_call_anywhere_says_so_in_the_headline_and_exits_0(moto_aws: None,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    account = boto3.client("sts", region_name="us-east-1").get_caller_identity()["Account"]
    fake = FakeEventHistory({})

    code = _run(["--regions", "us-east-1,eu-west-1", "--dry-run", "--region", "us-east-1", "--no-progress"], fake)

    assert code == 0
    assert capsys.readouterr().out.splitlines()[-1] == "no OpsWorks call in 1 account(s) x 2 Region(s) over 90 days"
    assert set(fake.requests) == {(account, "us-east-1"), (account, "eu-west-1")}
    # both event sources asked for, in every Region, over the last 90 days
    sent = [body for bodies in fake.sent.values() for body in bodies]
    assert sorted({b["LookupAttributes"][0]["AttributeValue"] for b in sent}) == list(sweep.EVENT_SOURCES)
    assert all(round((b["EndTime"] - b["StartTime"]) / 86400) == 90 for b in sent)


def test_json_summary_names_the_last_call_and_its_caller(moto_aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    account = boto3.client("sts", region_name="us-east-1").get_caller_identity()["Account"]
    records = {(account, "eu-west-1"): _records(account, "eu-west-1", 4)}

    code = _run(["--regions", "eu-west-1", "--dry-run", "--format", "json", "--region", "us-east-1",
                 "--no-progress"], FakeEventHistory(records))

    summary = json.loads(capsys.readouterr().out)
    newest = max(records[(account, "eu-west-1")], key=lambda r: r["eventTime"])
    assert code == 0
    assert (summary["calls"], summary["failed_calls"], summary["written"]) == (4, 1, None)
    [result] = summary["results"]
    assert result["last_call"]["event_name"] == newest["eventName"]
    assert result["last_call"]["caller"] == newest["userIdentity"]["arn"]


def test_an_account_whose_role_cannot_be_assumed_is_listed_and_the_others_are_read() -> None:
    from botocore.stub import Stubber

    base = boto3.Session(region_name="us-east-1")
    sts = base.client("sts")
    stub = Stubber(sts)
    stub.add_client_error("assume_role", "AccessDenied", "not authorized to perform: sts:AssumeRole")
    stub.activate()

    class Base:
        region_name = "us-east-1"

        def client(self, name: str) -> Any:
            return sts

        def get_partition_for_region(self, region: str) -> str:
            return "aws"

    found, skipped = sweep.targets(["111111111111", "222222222222"], "111111111111", Base(), "audit",
                                   make_session=boto3.Session)

    assert [t.account_id for t in found] == ["111111111111"]
    assert skipped == [sweep.Skipped("222222222222", "*", "cannot assume arn:aws:iam::222222222222:role/audit: "
                                     "AccessDenied: not authorized to perform: sts:AssumeRole")]


def test_a_requested_region_the_account_has_not_enabled_is_listed_not_read() -> None:
    from botocore.stub import Stubber

    ec2 = boto3.client("ec2", region_name="us-east-1")
    stub = Stubber(ec2)
    stub.add_response("describe_regions", {"Regions": [
        {"RegionName": "us-east-1", "OptInStatus": "opt-in-not-required"},
        {"RegionName": "af-south-1", "OptInStatus": "not-opted-in"},
        {"RegionName": "me-south-1", "OptInStatus": "opted-in"}]})
    stub.activate()

    class Session:
        def client(self, name: str) -> Any:
            return ec2

    regions, skipped = sweep.account_regions(sweep.Target("111111111111", Session()),
                                             ["us-east-1", "af-south-1", "me-south-1"])

    assert regions == ["us-east-1", "me-south-1"]
    assert skipped == [sweep.Skipped("111111111111", "af-south-1", "Region not enabled in this account")]


def test_regions_default_to_those_the_account_has_enabled(moto_aws: None) -> None:
    session = boto3.Session(region_name="us-east-1")
    listed = session.client("ec2").describe_regions(AllRegions=True)["Regions"]

    regions, skipped = sweep.account_regions(sweep.Target("123456789012", session), [])

    assert regions == sorted(r["RegionName"] for r in listed if r.get("OptInStatus", "opt-in-not-required")
                             in sweep.ENABLED)
    assert "us-east-1" in regions and not skipped


@pytest.mark.parametrize(("text", "problem"), [
    ("123", "not a 12-digit account id"), ("# only a comment\n", "no account id"),
])
def test_an_accounts_file_with_no_valid_id_is_refused_naming_the_line(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "accounts.txt"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(sweep.CliError, match=problem):
        sweep.read_accounts_file(path)


def test_an_accounts_file_lists_ids_once_without_comments(tmp_path: Path) -> None:
    path = tmp_path / "accounts.txt"
    path.write_text("111122223333  # prod\n\n444455556666\n111122223333\n", encoding="utf-8")

    assert sweep.read_accounts_file(path) == ["111122223333", "444455556666"]


@pytest.mark.parametrize("since", ["91", "2020-01-01", "0", "yesterday"])
def test_since_beyond_event_history_or_not_in_the_past_is_a_usage_error(since: str) -> None:
    with pytest.raises(sweep.CliError) as raised:
        sweep.since_start(since, NOW)
    assert raised.value.code == sweep.Exit.USAGE


def test_since_takes_days_or_a_date() -> None:
    assert sweep.since_start("7", NOW) == NOW - timedelta(days=7)
    day = (NOW - timedelta(days=10)).date().isoformat()
    assert sweep.since_start(day, NOW) == datetime.fromisoformat(day).replace(tzinfo=UTC)


def test_a_bad_since_stops_the_command_before_any_aws_call(capsys: pytest.CaptureFixture[str]) -> None:
    from cli.main import main

    assert main(["sweep", "--since", "120", "--dry-run"]) == 2
    assert "Event history keeps 90 days" in capsys.readouterr().err


def test_another_account_without_a_role_name_is_a_usage_error() -> None:
    with pytest.raises(sweep.CliError, match="pass --role-name"):
        sweep.targets(["111111111111", "222222222222"], "111111111111", boto3.Session(region_name="us-east-1"), "",
                      make_session=boto3.Session)
