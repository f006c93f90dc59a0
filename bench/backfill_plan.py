"""Planning a backfill of an organization's trail bucket: the command's list calls, peak memory and wall time
(issue 21, parts (a) and (c) of `make bench-backfill`).

The bucket is simulated (workshop/trail_bucket.py: ListObjectsV2 answered from the trail's layout, each call
waiting LATENCY as a real one does, no key held), as are S3 Control (CreateJob recorded) and, for the
inventory case, an S3 Inventory report of one million rows in gzip CSV files on disk. Each case runs the
real command (`cli.main`) in a fresh interpreter, so its peak RSS is the command's whole footprint
(interpreter, boto3 and all); the RSS before planning (imports done) is given too, so what planning adds
shows.

Cases:
- plan: the Batch Operations job built and created for a generated manifest (`cli.backfill_jobs`): no listing;
- estimate: `backfill --estimate` (the prefix sample of cli.backfill_estimate);
- run: `backfill --batch-operations --yes`: the estimate's sample, then the job;
- run-inventory: `backfill --batch-operations --yes --inventory …/manifest.json`;
each over a bucket of ~2 million keys, and the run also over ~1.5 billion, to show that nothing grows
with the bucket. Targets: under 10 s and 100 MB whatever the bucket size.

    python bench/backfill_plan.py [--out bench/results-backfill-plan.json]
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from workshop.trail_bucket import TrailBucket  # noqa: E402

LATENCY = 0.020
"""Seconds a simulated S3 call takes (the queue path's benchmark uses the same)."""
TARGET_SECONDS = 10.0
TARGET_MB = 100.0
ACCOUNT = "111122223333"
JOB_ARGS = ["--account-id", ACCOUNT, "--role-arn", f"arn:aws:iam::{ACCOUNT}:role/batch",
            "--function-arn", f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:ingest", "--report-bucket", "backfill",
            "--concurrency", "1000", "--memory-mb", "512", "--no-check-role"]
BUCKETS = {
    "2M": {"accounts": 100, "days": 100, "logs_per_day": 25},
    "1.5B": {"accounts": 1000, "regions": tuple(f"us-test-{i}" for i in range(17)), "days": 730,
             "logs_per_day": 100},
}
INVENTORY_ROWS = 1_000_000
INVENTORY_FILES = 10


class S3Control:
    """CreateJob recorded; nothing else is asked of it."""

    class meta:
        region_name = "us-east-1"

    def __init__(self) -> None:
        self.jobs: list[dict[str, Any]] = []

    def create_job(self, **request: Any) -> dict[str, str]:
        self.jobs.append(request)
        return {"JobId": f"job-{len(self.jobs)}"}


class InventoryS3(TrailBucket):
    """The simulated bucket, plus GetObject of an inventory report's files from a folder on disk."""

    folder: Path = Path()

    def get_object(self, *, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        self.calls["get_object"] = self.calls.get("get_object", 0) + 1
        time.sleep(LATENCY)
        path = self.folder / Key
        return {"Body": path.open("rb"), "ETag": '"inventory-etag"', "ContentLength": path.stat().st_size}


def write_inventory(folder: Path, bucket: TrailBucket) -> str:
    """A CSV inventory of INVENTORY_ROWS log files and digests, as S3 Inventory writes it; its manifest key."""
    files = []
    rows_per_file = INVENTORY_ROWS // INVENTORY_FILES
    accounts = bucket.account_ids
    for f in range(INVENTORY_FILES):
        key = f"inventory/{bucket.name}/all/data/part-{f:02d}.csv.gz"
        text = io.StringIO()
        for i in range(f * rows_per_file, (f + 1) * rows_per_file):
            account, day = accounts[i % len(accounts)], 1 + i % 28
            if i % 2:
                name = (f"{bucket.prefix}{account}/CloudTrail/us-east-1/2024/01/{day:02d}/{account}_CloudTrail_"
                        f"us-east-1_202401{day:02d}T{i % 24:02d}00Z_{i:08x}.json.gz")
            else:
                name = (f"{bucket.prefix}{account}/CloudTrail-Digest/us-east-1/2024/01/{day:02d}/{account}_"
                        f"CloudTrail-Digest_us-east-1_org-trail_us-east-1_202401{day:02d}T{i % 24:02d}0000Z.json.gz")
            text.write(f'"{bucket.name}","{name}","2000","2024-01-{day:02d}T00:00:00.000Z"\n')
        path = folder / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(text.getvalue().encode(), 6))
        files.append({"key": key, "size": path.stat().st_size, "MD5checksum": "-"})
    manifest = f"inventory/{bucket.name}/all/2024-02-01T01-00Z/manifest.json"
    (folder / manifest).parent.mkdir(parents=True, exist_ok=True)
    (folder / manifest).write_text(json.dumps({
        "sourceBucket": bucket.name, "destinationBucket": "arn:aws:s3:::inventory", "version": "2016-11-30",
        "fileFormat": "CSV", "fileSchema": "Bucket, Key, Size, LastModifiedDate", "files": files}))
    return manifest


# -- one case, in a fresh interpreter ----------------------------------------------------------------------


def run_case(case: str, size: str, folder: str) -> dict[str, Any]:
    import boto3  # what a real run has loaded before it plans (its clients)

    from cli import backfill, backfill_jobs
    from cli.main import main

    boto3.client("s3", region_name="us-east-1")

    bucket_type = InventoryS3 if case == "run-inventory" else TrailBucket
    bucket = bucket_type(latency=LATENCY, **BUCKETS[size])  # type: ignore[arg-type]
    if isinstance(bucket, InventoryS3):
        bucket.folder = Path(folder)
    s3control = S3Control()
    clients = backfill.Clients(bucket, s3control, None, None, None, None, None)
    backfill.make_clients = lambda region: clients  # type: ignore[assignment]
    location = f"s3://{bucket.name}/{bucket.prefix}"
    dates = ["--since", "2024-01-01", "--until", "2024-03-31"]
    output = io.StringIO()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    with contextlib.redirect_stdout(output):
        if case == "plan":
            target = backfill_jobs.JobTarget(ACCOUNT, JOB_ARGS[3], JOB_ARGS[5], "backfill", "opsworks-trail/backfill/")
            selection = backfill_jobs.trail_selection(bucket.name, bucket.prefix, since=backfill._day(dates[1]),
                                                      until=backfill._day(dates[3]))
            backfill_jobs.create_job(s3control, backfill_jobs.generated_manifest_request(target, selection))
            code = 0
        elif case == "estimate":
            code = main(["backfill", location, "--estimate", *dates, "--concurrency", "1000", "--memory-mb", "512"])
        elif case == "run":
            code = main(["backfill", location, "--batch-operations", "--yes", *JOB_ARGS, *dates])
        else:
            manifest = f"s3://inventory/inventory/{bucket.name}/all/2024-02-01T01-00Z/manifest.json"
            code = main(["backfill", location, "--batch-operations", "--yes", *JOB_ARGS, "--inventory", manifest])
    wall = time.perf_counter() - started
    assert code == 0, (case, code, output.getvalue())
    assert case == "estimate" or len(s3control.jobs) == 1, case
    return {
        "case": case, "bucket_keys": bucket.key_count, "list_calls": bucket.calls.get("list_objects_v2", 0),
        "get_calls": bucket.calls.get("get_object", 0), "jobs_created": len(s3control.jobs),
        "wall_s": round(wall, 3), "rss_before_planning_mb": round(before, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "first_line": output.getvalue().splitlines()[0] if output.getvalue() else "",
    }


CASES = [("plan", "2M"), ("estimate", "2M"), ("run", "2M"), ("run-inventory", "2M"), ("plan", "1.5B"),
         ("estimate", "1.5B"), ("run", "1.5B")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results-backfill-plan.json")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--size", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.size, args.folder)))
        return 0
    results = []
    with tempfile.TemporaryDirectory() as folder:
        write_inventory(Path(folder), TrailBucket(**BUCKETS["2M"]))  # type: ignore[arg-type]
        for case, size in CASES:
            done = subprocess.run([sys.executable, __file__, "--case", case, "--size", size, "--folder", folder],
                                  capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(done.stdout, done.stderr, file=sys.stderr)
                return 1
            results.append(json.loads(done.stdout.splitlines()[-1]))
    met = all(r["wall_s"] < TARGET_SECONDS and r["peak_rss_mb"] < TARGET_MB for r in results)
    report = {"latency_per_call_s": LATENCY, "targets": {"wall_s": TARGET_SECONDS, "peak_rss_mb": TARGET_MB},
              "all_targets_met": met, "cases": results}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'case':<14} {'bucket keys':>15} {'list calls':>10} {'GETs':>5} {'wall s':>7} {'RSS before MB':>13} "
          f"{'peak RSS MB':>11}")
    for r in results:
        print(f"{r['case']:<14} {r['bucket_keys']:>15,} {r['list_calls']:>10} {r['get_calls']:>5} {r['wall_s']:>7.2f} "
              f"{r['rss_before_planning_mb']:>13.1f} {r['peak_rss_mb']:>11.1f}")
    print(f"targets (< {TARGET_SECONDS:.0f} s, < {TARGET_MB:.0f} MB whatever the bucket size): "
          f"{'met' if met else 'NOT met'}; written to {args.out.relative_to(ROOT)}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
