"""cli.listing: the trail's prefixes planned for a range, the parallel listing streamed in flat memory,
resumed without loss or repeat, and the same selection as the sequential listing it replaces."""

from __future__ import annotations

import bisect
import gc
import tracemalloc
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from workshop.synthetic import SampleManifest, upload_to_s3, write_sample_bucket

from cli.listing import (
    SKIPPED_SERVICES,
    KeyFilter,
    Listing,
    ListingCounts,
    ListingState,
    Parallelism,
    ResumeError,
    days_node,
    delivery_day,
    place,
    plan,
    tasks,
)
from core.errors import IngestError
from core.ingest.sources import S3Source
from core.model import ObjectRef

THREADS = Parallelism(0, 4)


class FakeBucket:
    """ListObjectsV2 over a sorted key list (Prefix, Delimiter, StartAfter, ContinuationToken, MaxKeys), as
    S3 answers it; `calls` counts the calls."""

    def __init__(self, keys: list[str] | None = None, page_size: int = 1000) -> None:
        self.keys = sorted(set(keys or []))
        self.page_size = page_size
        self.calls = 0

    def list_objects_v2(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        prefix, delimiter = kwargs.get("Prefix", ""), kwargs.get("Delimiter", "")
        after = max(kwargs.get("StartAfter", ""), kwargs.get("ContinuationToken", ""))
        limit = min(kwargs.get("MaxKeys", 1000), self.page_size)
        keys = self.keys
        i = bisect.bisect_right(keys, after) if after else bisect.bisect_left(keys, prefix)
        contents: list[dict[str, Any]] = []
        folders: list[dict[str, str]] = []
        last = ""
        while i < len(keys) and keys[i].startswith(prefix) and len(contents) + len(folders) < limit:
            cut = keys[i].find(delimiter, len(prefix)) if delimiter else -1
            if cut >= 0:
                folder = keys[i][:cut + len(delimiter)]
                folders.append({"Prefix": folder})
                last = folder + "\uffff"
                i = bisect.bisect_left(keys, last)
                continue
            contents.append({"Key": keys[i], "Size": 10, "ETag": '"e"'})
            last = keys[i]
            i += 1
        page: dict[str, Any] = {"IsTruncated": i < len(keys) and keys[i].startswith(prefix)}
        if contents:
            page["Contents"] = contents
        if folders:
            page["CommonPrefixes"] = folders
        if page["IsTruncated"]:
            page["NextContinuationToken"] = last
        return page


class GeneratedBucket(FakeBucket):
    """One Region's days of `per_day` log files, generated page by page (no key list held): for memory tests."""

    ROOT = "AWSLogs/111122223333/CloudTrail/us-east-1/"

    def __init__(self, days: int, per_day: int) -> None:
        super().__init__()
        self.days, self.per_day = days, per_day

    def list_objects_v2(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        prefix = kwargs["Prefix"]
        if kwargs.get("Delimiter"):
            return {"IsTruncated": False}
        day = date(*(int(p) for p in prefix.removeprefix(self.ROOT).strip("/").split("/")))
        start = int(kwargs.get("ContinuationToken", "0"))
        end = min(start + 1000, self.per_day)
        contents = [{"Key": f"{prefix}111122223333_CloudTrail_us-east-1_{day:%Y%m%d}T0000Z_{n:08d}.json.gz",
                     "Size": 100, "ETag": '"e"'} for n in range(start, end)]
        page: dict[str, Any] = {"Contents": contents, "IsTruncated": end < self.per_day}
        if end < self.per_day:
            page["NextContinuationToken"] = str(end)
        return page


def log_key(account: str, region: str, day: date, n: int, org: str | None = None) -> str:
    base = f"AWSLogs/{org + '/' if org else ''}{account}/CloudTrail/{region}/{day:%Y/%m/%d}/"
    return f"{base}{account}_CloudTrail_{region}_{day:%Y%m%d}T{n % 24:02d}00Z_{n:04x}.json.gz"


def digest_key(account: str, region: str, day: date) -> str:
    return (f"AWSLogs/{account}/CloudTrail-Digest/{region}/{day:%Y/%m/%d}/"
            f"{account}_CloudTrail-Digest_{region}_t_{region}_{day:%Y%m%d}T0130Z.json.gz")


def drain(chunks: Any) -> list[str]:
    return [key for chunk in chunks for key, _, _ in chunk.entries]


def sequential(client: Any, name: str, prefix: str, since: date | None, until: date | None, *,
               digests: bool = False) -> list[str]:
    """The selection of the sequential listing this module replaces (a FakeBucket: its keys filtered alike);
    with `digests`, a backfill's: the digest files too."""
    refs = ([ObjectRef(name, k, 10) for k in client.keys if k.startswith(prefix)] if isinstance(client, FakeBucket)
            else S3Source(client).list(name, prefix))
    keep = KeyFilter(since, until, digests=digests)
    return sorted(r.key for r in refs if keep.keeps(r.key, r.size, ListingCounts()))


# -- where a folder sits, and the plan -------------------------------------------------------------


@pytest.mark.parametrize(("folder", "action", "root", "dates"), [
    ("", "descend", "", ()),
    ("AWSLogs/", "descend", "", ()),
    ("AWSLogs/o-abcdefghij/", "descend", "", ()),
    ("AWSLogs/o-abcdefghij/111122223333/", "descend", "", ()),
    ("my trail+logs/AWSLogs/111122223333/CloudTrail/", "descend", "", ()),
    ("AWSLogs/111122223333/CloudTrail/us-gov-west-1/", "region", "AWSLogs/111122223333/CloudTrail/us-gov-west-1/", ()),
    ("x/AWSLogs/o-abcdefghij/111122223333/CloudTrail/eu-west-1/2024/05/",
     "region", "x/AWSLogs/o-abcdefghij/111122223333/CloudTrail/eu-west-1/", (2024, 5)),
    ("AWSLogs/111122223333/CloudTrail-Digest/", "skip", "", ()),
    ("AWSLogs/111122223333/elasticloadbalancing/", "whole", "", ()),
    ("AWSLogs/111122223333/CloudTrail/us-east-1/2024/13/", "whole", "", ()),
    ("AWSLogs/111122223333/CloudTrail/us-east-1/9999/12/", "whole", "", ()),
    ("AWSLogs/111122223333/CloudTrail/us-east-1/odd/", "whole", "", ()),
    ("AWSLogs/notanaccount/", "whole", "", ()),
])
def test_a_folder_is_placed_in_cloudtrails_layout(folder: str, action: str, root: str,
                                                    dates: tuple[int, ...]) -> None:
    where = place(folder, SKIPPED_SERVICES)
    assert (where.action, where.region_root, where.dates) == (action, root, dates)


segment_st = st.one_of(st.sampled_from(["AWSLogs", "o-abcdefghij", "111122223333", "CloudTrail", "CloudTrail-Digest",
                                         "us-east-1", "2024", "0000", "9999", "12", "13", "31", "00"]),
                       st.text(alphabet="ab0-9+ ", max_size=5))


@given(st.lists(segment_st, max_size=10))
def test_any_folder_is_placed_without_error_and_a_region_folder_names_real_days(segments: list[str]) -> None:
    where = place("".join(f"{s}/" for s in segments), SKIPPED_SERVICES)
    assert where.action in ("descend", "whole", "skip", "region")
    if where.action == "region":
        assert where.region_root.endswith("/") and days_node(where.region_root, where.dates, None, None) is not None


def test_a_range_plans_one_prefix_a_day_per_region_without_listing_the_days() -> None:
    first = date(2024, 5, 1)
    bucket = FakeBucket([log_key(a, r, first, 0) for a in ("111122223333", "444455556666")
                         for r in ("us-east-1", "eu-west-1")] + [digest_key("111122223333", "us-east-1", first)])
    planned = [t.prefix for t in tasks(plan(bucket, "b", "", date(2024, 4, 30), date(2024, 5, 2),
                                            skip_services=SKIPPED_SERVICES))]
    assert len(planned) == 2 * 2 * 3
    assert planned == sorted(planned)
    assert "AWSLogs/111122223333/CloudTrail/eu-west-1/2024/04/30/" in planned
    assert bucket.calls == 1 + 1 + 2 + 2  # the root, AWSLogs/, each account, its CloudTrail/: no call per day


days_st = st.dates(min_value=date(2023, 12, 25), max_value=date(2024, 1, 10))
keys_st = st.lists(st.tuples(st.sampled_from(["111122223333", "444455556666"]),
                             st.sampled_from(["us-east-1", "ap-southeast-2"]), days_st,
                             st.integers(0, 50), st.sampled_from([None, "o-abcdefghij"])), max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(keys_st, days_st, days_st, st.sampled_from(["", "AWSLogs/", "AWSLogs/111122223333/",
                                                    "AWSLogs/111122223333/CloudTrail/us-east-1/2024/"]))
def test_every_key_of_the_range_is_under_exactly_one_planned_prefix_and_none_outside(
        made: list[tuple[str, str, date, int, str | None]], first: date, second: date, prefix: str) -> None:
    since, until = min(first, second), max(first, second)
    keys = sorted({log_key(a, r, d, n, org) for a, r, d, n, org in made})
    bucket = FakeBucket(keys + [digest_key(a, r, d) for a, r, d, _, _ in made])
    planned = [t.prefix for t in tasks(plan(bucket, "b", prefix, since, until, skip_services=SKIPPED_SERVICES))]
    assert len(planned) == len(set(planned))
    for key in keys:
        under = [p for p in planned if key.startswith(p)]
        wanted = key.startswith(prefix) and since <= date(*map(int, key.split("/")[-4:-1])) <= until
        assert len(under) == (1 if wanted else 0), key
    assert not any("CloudTrail-Digest" in p for p in planned)
    listed = drain(Listing("b", prefix, since, until, planned_above=0).chunks(bucket, bucket, parallelism=THREADS))
    assert sorted(listed) == sequential(bucket, "b", prefix, since, until)


def test_without_a_first_day_the_day_folders_present_are_found_by_listing() -> None:
    bucket = FakeBucket([log_key("111122223333", "us-east-1", day, 1)
                         for day in (date(2023, 12, 31), date(2024, 1, 2), date(2024, 1, 9))])
    planned = [t.prefix for t in tasks(plan(bucket, "b", "", None, date(2024, 1, 5)))]
    assert [p.removeprefix("AWSLogs/111122223333/CloudTrail/us-east-1/") for p in planned] == [
        "2023/12/31/", "2024/01/02/"]


# -- streaming in flat memory ----------------------------------------------------------------------


def peak_while_listing(days: int, per_day: int) -> tuple[int, int]:
    bucket = GeneratedBucket(days, per_day)
    listing = Listing("b", GeneratedBucket.ROOT, date(2024, 1, 1), date(2024, 1, 1) + timedelta(days=days - 1),
                      planned_above=0)
    gc.collect()
    tracemalloc.start()
    try:
        count = sum(len(chunk.entries) for chunk in listing.chunks(bucket, bucket, parallelism=THREADS))
        return count, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_stream_holds_a_bounded_number_of_chunks_whatever_the_count() -> None:
    small_count, small_peak = peak_while_listing(40, 200)
    large_count, large_peak = peak_while_listing(400, 200)
    assert (small_count, large_count) == (8_000, 80_000)
    # Ten times the keys: a stream that held them would peak about ten times higher. Threads scheduled
    # differently move the peak by a few chunks, so the bound leaves room for that, far below 10x.
    assert large_peak < 3 * small_peak, (small_peak, large_peak)


# -- resume ----------------------------------------------------------------------------------------


def org_bucket(page_size: int = 7) -> FakeBucket:
    return FakeBucket([log_key(a, r, date(2024, 2, 1) + timedelta(days=d), n) for a in ("111122223333", "444455556666")
                       for r in ("us-east-1", "eu-west-1") for d in range(4) for n in range(20)], page_size=page_size)


def test_a_small_prefix_is_listed_as_one_without_planning() -> None:
    bucket = org_bucket(page_size=1000)
    listed = drain(Listing("b", "").chunks(bucket, bucket, parallelism=THREADS))
    assert sorted(listed) == bucket.keys
    assert bucket.calls == 2  # the probe, then the listing


@pytest.mark.parametrize("stop_after", [0, 1, 5, 17, 40])
def test_a_stopped_listing_resumed_from_its_state_hands_over_every_key_once(tmp_path: Path, stop_after: int) -> None:
    bucket = org_bucket()
    listing = Listing("b", "", date(2024, 2, 1), date(2024, 2, 4), planned_above=0)
    path = tmp_path / "state.json"
    state = ListingState(plan_id=listing.plan_id)
    handed: list[str] = []
    chunks = listing.chunks(bucket, bucket, parallelism=THREADS, state=state, save=state.save_to(path))
    for n, chunk in enumerate(chunks):
        if n == stop_after:
            break  # this chunk was not handed over: the consumer failed on it
        handed += [key for key, _, _ in chunk.entries]
    chunks.close()
    resumed = ListingState.load(path, listing.plan_id)
    assert len(resumed.done) + len(resumed.after) <= 40  # the prefixes in flight, not every prefix done
    handed += drain(listing.chunks(bucket, bucket, parallelism=THREADS, state=resumed))
    assert sorted(handed) == bucket.keys
    assert len(handed) == len(set(handed))


def test_a_state_of_another_listing_or_no_state_is_refused_by_name(tmp_path: Path) -> None:
    listing = Listing("b", "", date(2024, 2, 1), date(2024, 2, 4))
    with pytest.raises(ResumeError, match="no saved listing"):
        ListingState.load(tmp_path / "none.json", listing.plan_id)
    ListingState(plan_id="s3://other/ -..-").save(tmp_path / "other.json")
    with pytest.raises(ResumeError, match="saved for another listing"):
        ListingState.load(tmp_path / "other.json", listing.plan_id)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ResumeError, match="not a listing state"):
        ListingState.load(tmp_path / "bad.json", listing.plan_id)


def test_start_after_leaves_out_every_key_up_to_it() -> None:
    bucket = org_bucket()
    middle = bucket.keys[len(bucket.keys) // 2]
    listed = drain(Listing("b", "", date(2024, 2, 1), date(2024, 2, 4), start_after=middle, planned_above=0)
                   .chunks(bucket, bucket, parallelism=THREADS))
    assert sorted(listed) == [k for k in bucket.keys if k > middle]


# -- failures --------------------------------------------------------------------------------------


class Denied(FakeBucket):
    def list_objects_v2(self, **kwargs: Any) -> dict[str, Any]:
        if "/2024/" in kwargs["Prefix"]:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "ListObjectsV2")
        return super().list_objects_v2(**kwargs)


def test_a_prefix_that_cannot_be_listed_stops_the_listing_naming_it_and_the_reason() -> None:
    bucket = Denied(org_bucket().keys)
    with pytest.raises(IngestError, match=r"listing s3://b/AWSLogs/\d{12}/CloudTrail/.*/2024/02/0\d/ failed.*access"):
        drain(Listing("b", "", date(2024, 2, 1), date(2024, 2, 4), planned_above=0)
              .chunks(bucket, bucket, parallelism=THREADS))


def test_the_filter_counts_why_keys_are_passed_over() -> None:
    counts = ListingCounts()
    keep = KeyFilter(date(2024, 1, 2), date(2024, 1, 2))
    assert [keep.keeps(k, 10, counts) for k in (
        log_key("111122223333", "us-east-1", date(2024, 1, 2), 1),
        log_key("111122223333", "us-east-1", date(2024, 1, 3), 1),
        digest_key("111122223333", "us-east-1", date(2024, 1, 2)),
        "AWSLogs/111122223333/CloudTrail/us-east-1/2024/01/02/renamed.json.gz")] == [True, False, False, False]
    assert (counts.listed, counts.not_log_files, counts.outside_dates, counts.undated) == (4, 1, 1, 1)


# -- parity with the sequential listing, on moto ---------------------------------------------------


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SampleManifest]:
    root = tmp_path_factory.mktemp("bucket")
    return root, write_sample_bucket(root, files=60, organization_id="o-abcdefghij")


@pytest.mark.parametrize(("prefix", "since", "until", "planned_above"), [
    ("", None, None, 0), ("", date(2024, 5, 3), date(2024, 5, 9), 0), ("AWSLogs/", date(2024, 5, 1), None, 0),
    ("my", None, date(2024, 5, 20), 0), ("", date(2024, 5, 3), date(2024, 5, 9), 1000),
])
def test_the_parallel_listing_selects_what_the_sequential_one_did_on_moto(
        moto_bucket: tuple[Any, str], sample: tuple[Path, SampleManifest], prefix: str, since: date | None,
        until: date | None, planned_above: int) -> None:
    client, name = moto_bucket
    upload_to_s3(sample[0], client, name)
    expected = sequential(client, name, prefix, since, until)
    assert expected
    listed = drain(Listing(name, prefix, since, until, planned_above=planned_above)
                   .chunks(client, client, parallelism=THREADS))
    assert sorted(listed) == expected


def test_worker_processes_list_what_threads_do_against_a_moto_server(
        moto_endpoint: str, sample: tuple[Path, SampleManifest]) -> None:
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket="processes")
    upload_to_s3(sample[0], client, "processes")
    listing = Listing("processes", "", date(2024, 5, 1), date(2024, 5, 31), planned_above=0)
    listed = drain(listing.chunks(client, client, parallelism=Parallelism(2, 2)))
    assert sorted(listed) == sequential(client, "processes", "", date(2024, 5, 1), date(2024, 5, 31))
    assert listed


def test_an_interrupted_backfill_says_how_to_resume_and_the_resumed_run_sends_the_rest(
        moto_bucket: tuple[Any, str], sample: tuple[Path, SampleManifest], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from cli.main import main
    from core.ingest.triggers import refs_from_message

    client, name = moto_bucket
    upload_to_s3(sample[0], client, name)
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="ingest")["QueueUrl"]
    state = tmp_path / "state.json"
    command = ["backfill", f"s3://{name}/", "--since", "2024-05-01", "--state", str(state), "--list-processes", "0"]
    assert main([*command, "--queue-url", url + "-gone"]) == 1
    err = capsys.readouterr().err
    assert "--resume" in err and str(state) in err and state.exists()
    assert main([*command, "--queue-url", url, "--resume"]) == 0
    sent: list[str] = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            sent += [ref.key for ref in refs_from_message(message["Body"])]
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert sorted(sent) == sequential(client, name, "", date(2024, 5, 1), None, digests=True)
    assert any("CloudTrail-Digest" in key for key in sent)
    assert not state.exists()  # a finished run leaves no state behind


# -- ingest: workers from the machine and the source, a streamed listing kept streamed --------------


def test_ingest_reads_local_files_one_per_core_and_s3_objects_with_more_in_flight(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from cli.ingest import S3_READS_PER_CORE, default_workers

    monkeypatch.setattr("os.cpu_count", lambda: 6)
    assert default_workers(["trail/", "more/file.json.gz"]) == 6
    assert default_workers(["trail/", "s3://bucket/AWSLogs/"]) == 6 * S3_READS_PER_CORE


@pytest.mark.parametrize("workers", [1, 2, 5])
def test_ingest_takes_objects_from_a_stream_only_a_few_ahead_of_the_readers(workers: int) -> None:
    import threading

    from cli.ingest import Summary, ingest_all
    from core.model import Outcome, Status

    taken = done = 0
    most_ahead = 0
    lock = threading.Lock()

    def stream() -> Any:
        nonlocal taken, most_ahead
        for n in range(500):
            with lock:
                taken += 1
                most_ahead = max(most_ahead, taken - done)
            yield ObjectRef("b", f"k{n:04d}", 1)

    class Pipeline:
        def ingest(self, ref: ObjectRef) -> Outcome:
            nonlocal done
            with lock:
                done += 1
            return Outcome(ref, Status.SKIPPED, reason="test")

    summary = ingest_all(Pipeline(), stream(), Summary(), workers=workers, progress=False)  # type: ignore[arg-type]
    assert summary.files == 500
    assert most_ahead <= 2 * workers + 2


def test_a_backfill_listing_hands_over_the_digests_of_its_days_and_the_day_after(
        moto_bucket: tuple[Any, str], sample: tuple[Path, SampleManifest]) -> None:
    client, name = moto_bucket
    upload_to_s3(sample[0], client, name)
    digest_days = sorted({day for ref in S3Source(client).list(name) if "CloudTrail-Digest" in ref.key
                          and (day := delivery_day(ref.key))})
    until = digest_days[len(digest_days) // 2] - timedelta(days=1)  # a day whose next day has digests
    since = until - timedelta(days=3)
    listing = Listing(name, "", since, until, digests=True, planned_above=0)

    listed = drain(listing.chunks(client, client, parallelism=Parallelism(0, 2)))

    assert sorted(listed) == sequential(client, name, "", since, until, digests=True)
    days = {delivery_day(k) for k in listed if "CloudTrail-Digest" in k}
    assert days and min(days) >= since and max(days) == until + timedelta(days=1)
