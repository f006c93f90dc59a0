"""LookupEvents' limit (2 requests a second per account and Region): a token bucket per account-Region, the
account-Regions in parallel, throttling retried with backoff until it gives up and the pair is listed."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta

import pytest
from botocore.awsrequest import AWSResponse
from hypothesis import given, settings
from hypothesis import strategies as st

from cli.sweep import Sweep, Target
from core.ingest.history import MAX_ATTEMPTS, Lookup, TokenBucket
from core.ingest.records import RecordIngest
from core.ingest.selection import Selection
from lookup_events_fake import FakeEventHistory, _Body, opsworks_record

NOW = datetime.now(UTC).replace(microsecond=0)
OPSWORKS = "opsworks.amazonaws.com"


class FakeTime:
    """A clock that moves only when something sleeps (or the test says so)."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@settings(max_examples=200, deadline=None)
@given(rate=st.sampled_from([0.5, 1.0, 2.0, 5.0]), burst=st.integers(1, 3),
       gaps=st.lists(st.floats(0, 2, allow_nan=False), min_size=1, max_size=40))
def test_a_token_bucket_never_lets_more_through_than_its_rate_and_burst(rate: float, burst: int,
                                                                        gaps: list[float]) -> None:
    fake = FakeTime()
    bucket = TokenBucket(rate, burst, clock=fake.clock, sleep=fake.sleep)
    taken = []
    for gap in gaps:
        fake.sleep(gap)
        bucket.take()
        taken.append(fake.now)

    for i in range(len(taken)):
        for j in range(i + 1, len(taken)):
            assert j - i <= (burst - 1) + rate * (taken[j] - taken[i]) + 1e-6


def test_a_token_bucket_waits_only_as_long_as_the_rate_needs() -> None:
    fake = FakeTime()
    bucket = TokenBucket(2.0, clock=fake.clock, sleep=fake.sleep)

    waits = [bucket.take() for _ in range(5)]

    assert waits == [0.0, 0.5, 0.5, 0.5, 0.5]
    assert fake.now == pytest.approx(2.0)


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (2, 0)])
def test_a_token_bucket_without_a_positive_rate_or_a_burst_is_refused(rate: float, burst: float) -> None:
    with pytest.raises(ValueError, match="positive rate"):
        TokenBucket(rate, burst)


def test_account_regions_run_in_parallel_each_within_two_requests_a_second() -> None:
    # Given three account-Regions of four pages each
    pairs = [("111111111111", "us-east-1"), ("111111111111", "eu-west-1"), ("222222222222", "us-east-1")]
    records = {pair: [opsworks_record("DescribeStacks", account=pair[0], region=pair[1],
                                      when=NOW - timedelta(hours=n), number=n) for n in range(4)] for pair in pairs}
    fake = FakeEventHistory(records, page_size=1)
    sweep = Sweep(RecordIngest(Selection(frozenset({OPSWORKS})), None), NOW - timedelta(days=1), NOW,
                  cloudtrail=fake.client, sources=(OPSWORKS,))

    # When they are swept with real time
    results, skipped = sweep.run([(Target(a, None), r) for a, r in pairs], workers=3)

    # Then each pair's requests are half a second apart, and the pairs overlap in time
    assert not skipped and [r.calls for r in results] == [4, 4, 4]
    for pair in pairs:
        times = fake.times[pair]
        assert len(times) == 4
        # the hook runs a few ms after the token is taken, a little more or less each time
        assert all(later - earlier >= 0.5 - 0.05 for earlier, later in itertools.pairwise(times))
        assert times[-1] - times[0] >= 3 * 0.5 - 0.05
    assert max(fake.times[p][0] for p in pairs) < min(fake.times[p][-1] for p in pairs)


def test_throttling_is_retried_with_backoff_and_a_pair_that_never_recovers_is_listed() -> None:
    pairs = [("111111111111", "us-east-1"), ("111111111111", "eu-west-1")]
    records = {pair: [opsworks_record("StopInstance", account=pair[0], region=pair[1], when=NOW - timedelta(hours=1))]
               for pair in pairs}
    fake = FakeEventHistory(records, throttle={pairs[0]: 10 * MAX_ATTEMPTS, pairs[1]: 2})
    pauses: list[float] = []
    said: list[str] = []
    sweep = Sweep(RecordIngest(Selection(frozenset({OPSWORKS})), None), NOW - timedelta(days=1), NOW,
                  cloudtrail=fake.client, sleep=pauses.append, say=said.append, sources=(OPSWORKS,))

    results, skipped = sweep.run([(Target(a, None), r) for a, r in pairs], workers=2)

    assert [(r.region, r.calls, r.retries) for r in results] == [("eu-west-1", 1, 2)]
    assert [(s.region, s.reason) for s in skipped] == [("us-east-1", "ThrottlingException: Rate exceeded")]
    assert fake.requests[pairs[0]] == MAX_ATTEMPTS
    retries = [re.search(r"(\S+) (\S+): ThrottlingException, retry (\d+) in ([\d.]+) s", line) for line in said]
    told = [(m[2], int(m[3]), float(m[4])) for m in retries if m]
    assert sorted((region, attempt) for region, attempt, _ in told) == sorted(
        [("eu-west-1", 1), ("eu-west-1", 2)] + [("us-east-1", n) for n in range(1, MAX_ATTEMPTS)])
    # exponential backoff with jitter: attempt n waits between 0.5 s and min(20, 0.5 * 2**n) s (to the 0.1 s said)
    assert all(0.45 <= pause <= min(20.0, 0.5 * 2 ** attempt) + 0.05 for _, attempt, pause in told)


def test_an_event_without_a_readable_record_is_named_not_dropped() -> None:
    record = opsworks_record("DescribeStacks", when=NOW - timedelta(hours=1))
    fake = FakeEventHistory({("111122223333", "us-east-1"): [record]})
    original = fake._answer

    def broken(account: str, region: str, request: object) -> AWSResponse:
        response = original(account, region, request)
        body = response.content.replace(b'"CloudTrailEvent": "{', b'"CloudTrailEvent": "x{')
        assert body != response.content
        return AWSResponse(response.url, response.status_code, response.headers, _Body(body))

    fake._answer = broken  # type: ignore[method-assign]
    sweep = Sweep(RecordIngest(Selection(frozenset({OPSWORKS})), None), NOW - timedelta(days=1), NOW,
                  cloudtrail=fake.client, sources=(OPSWORKS,), sleep=lambda _: None)

    [result], skipped = sweep.run([(Target("111122223333", None), "us-east-1")])

    assert result.calls == 0 and not skipped
    assert result.problems == [f"event {record['eventID']}: CloudTrailEvent is not a JSON object"]



@settings(max_examples=15, deadline=None)
@given(count=st.integers(0, 12), page_size=st.integers(1, 5), throttles=st.integers(0, 2))
def test_pages_give_every_event_once_newest_first_whatever_the_page_size(count: int, page_size: int,
                                                                          throttles: int) -> None:
    pair = ("111122223333", "us-east-1")
    records = [opsworks_record("DescribeStacks", when=NOW - timedelta(hours=n + 1), number=n) for n in range(count)]
    fake = FakeEventHistory({pair: records}, page_size=page_size, throttle={pair: throttles})
    lookup = Lookup(fake.client(pair[0], pair[1]), TokenBucket(1000.0), sleep=lambda _: None)

    read = list(lookup.records(OPSWORKS, NOW - timedelta(days=1), NOW))

    assert [r["eventID"] for r in read] == [r["eventID"] for r in records]  # made newest first
    assert lookup.requests == max(1, -(-count // page_size)) + throttles
    assert [body.get("NextToken") for body in fake.sent[pair][throttles:]] == \
        [None] + [str(n) for n in range(page_size, count, page_size)]


def test_an_account_region_is_read_in_chunks_keeping_counts_and_the_last_call_not_every_event(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import cli.sweep

    monkeypatch.setattr(cli.sweep, "CHUNK", 3)
    pair = ("111122223333", "us-east-1")
    records = [opsworks_record("StopInstance", when=NOW - timedelta(hours=n + 1), number=n, error=n % 3 == 0)
               for n in range(7)]
    fake = FakeEventHistory({pair: records}, page_size=2)
    sweep = Sweep(RecordIngest(Selection(frozenset({OPSWORKS})), None), NOW - timedelta(days=1), NOW,
                  cloudtrail=fake.client, sleep=lambda _: None, sources=(OPSWORKS,))

    [result], _ = sweep.run([(Target(pair[0], None), pair[1])])

    assert (result.calls, result.failed, result.events) == (7, 3, [])
    assert result.last is not None and result.last["event_id"] == records[0]["eventID"]
