"""Issue 21 (b): the queue path's listing and selection over a simulated organization bucket.

A loopback S3 (this script starts it in a child process) answers ListObjectsV2 with the XML S3 sends,
over a generated bucket: ACCOUNTS x REGIONS x DAYS x FILES log files under
`AWSLogs/o-.../ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/`, plus 24 digests a day per Region under
`CloudTrail-Digest/` (handed over too, so the function verifies them). Each call sleeps 20 ms first, as
S3's latency; botocore parses every key in the command, as it would against S3. The command measured is

    opsworks-trail backfill s3://BUCKET/ --since FIRST --until LAST --dry-run --queue-url URL

run as a subprocess (interpreter start-up included). Figures: wall time, the list calls the server
answered, and the peak memory of the command's processes together, sampled every 50 ms: the sum of their
RSS (pages shared after fork counted once per process) and of their PSS (shared pages divided among
them: what the run costs the machine).

    .venv/bin/python bench/backfill_listing.py            # 1,000,000 keys; writes bench/results-backfill-listing.json
    .venv/bin/python bench/backfill_listing.py --quick    # 50,000 log files, for development
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlparse
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "org-trail-bucket"
ORG = "o-exampleorg1"
REGIONS = ("eu-west-1", "us-east-1", "us-east-2", "us-west-2", "ap-southeast-2", "sa-east-1")
FIRST_DAY = date(2024, 5, 1)
TARGETS = {"wall_seconds": 60.0, "peak_mb": 100.0}


# -- the simulated bucket and its S3 ----------------------------------------------------------------


def bucket_keys(accounts: int, regions: int, days: int, files: int) -> list[str]:
    """Every key of the simulated bucket, sorted as S3 lists them."""
    keys = []
    for a in range(accounts):
        account = f"{100000000000 + a * 7919:012d}"
        for region in REGIONS[:regions]:
            for d in range(days):
                day = FIRST_DAY + timedelta(days=d)
                folder = f"AWSLogs/{ORG}/{account}/CloudTrail/{region}/{day:%Y/%m/%d}/"
                digests = f"AWSLogs/{ORG}/{account}/CloudTrail-Digest/{region}/{day:%Y/%m/%d}/"
                for f in range(files):
                    minute = f * 1440 // files
                    keys.append(f"{folder}{account}_CloudTrail_{region}_{day:%Y%m%d}T{minute // 60:02d}"
                                f"{minute % 60:02d}Z_{a:04x}{d:03x}{f:05x}A1b2C3d4.json.gz")
                keys += [f"{digests}{account}_CloudTrail-Digest_{region}_org-trail_{region}_{day:%Y%m%d}T{h:02d}"
                         "1530Z.json.gz" for h in range(24)]
    keys.sort()
    return keys


class FakeS3(ThreadingHTTPServer):
    """ListObjectsV2 over a sorted key list: Prefix, Delimiter, StartAfter, ContinuationToken, MaxKeys."""

    daemon_threads = True

    def __init__(self, keys: list[str], latency: float) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.keys, self.latency, self.calls, self.lock = keys, latency, 0, threading.Lock()

    def page(self, query: dict[str, str]) -> bytes:
        prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
        after = max(query.get("start-after", ""), query.get("continuation-token", ""))
        limit = min(int(query.get("max-keys", "1000")), 1000)
        keys, i = self.keys, bisect.bisect_right(self.keys, after) if after else bisect.bisect_left(self.keys, prefix)
        contents: list[str] = []
        folders: list[str] = []
        last = ""
        while i < len(keys) and keys[i].startswith(prefix) and len(contents) + len(folders) < limit:
            key = keys[i]
            cut = key.find(delimiter, len(prefix)) if delimiter else -1
            if cut >= 0:
                folder = key[:cut + len(delimiter)]
                folders.append(folder)
                last = folder + "\uffff"
                i = bisect.bisect_left(keys, last)
                continue
            contents.append(key)
            last = key
            i += 1
        truncated = i < len(keys) and keys[i].startswith(prefix)
        encode = query.get("encoding-type") == "url"

        def name(text: str) -> str:
            return quote(text, safe="/") if encode else escape(text)

        body = [f'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/'
                f'2006-03-01/"><Name>{BUCKET}</Name><Prefix>{name(prefix)}</Prefix>'
                f"<KeyCount>{len(contents) + len(folders)}</KeyCount><MaxKeys>{limit}</MaxKeys>"
                f"{'<Delimiter>' + name(delimiter) + '</Delimiter>' if delimiter else ''}"
                f"{'<EncodingType>url</EncodingType>' if encode else ''}"
                f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>"]
        if truncated:
            body.append(f"<NextContinuationToken>{escape(last)}</NextContinuationToken>")
        for key in contents:
            body.append(f"<Contents><Key>{name(key)}</Key><LastModified>2024-05-02T00:00:00.000Z</LastModified>"
                        f"<ETag>&quot;{hash(key) & (1 << 64) - 1:032x}&quot;</ETag><Size>{2000 + len(key)}</Size>"
                        "<StorageClass>STANDARD</StorageClass></Contents>")
        body += [f"<CommonPrefixes><Prefix>{name(f)}</Prefix></CommonPrefixes>" for f in folders]
        body.append("</ListBucketResult>")
        return "".join(body).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeS3

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path == "/__calls":
            self._send(200, str(self.server.calls).encode(), "text/plain")
            return
        query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        if url.path.strip("/") != BUCKET or query.get("list-type") != "2":
            self._send(400, b"<Error><Code>NotImplemented</Code></Error>", "application/xml")
            return
        time.sleep(self.server.latency)
        with self.server.lock:
            self.server.calls += 1
        self._send(200, self.server.page(query), "application/xml")

    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(accounts: int, regions: int, days: int, files: int, latency: float) -> None:
    """The child process: build the bucket, print the port, serve until stdin closes."""
    server = FakeS3(bucket_keys(accounts, regions, days, files), latency)
    print(server.server_address[1], len(server.keys), flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()
    server.shutdown()


# -- measuring the command ---------------------------------------------------------------------------


def tree_memory(root: int) -> tuple[float, float, int]:
    """The RSS and PSS (MB) of a process and its descendants, and how many there are."""
    pids, rss, pss = [root], 0, 0
    seen = 0
    while pids:
        pid = pids.pop()
        seen += 1
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        pids += [int(c) for c in children]
    return rss / 1024, pss / 1024, seen


def measure(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak_rss = peak_pss = 0.0
    most = 0
    while child.poll() is None:
        rss, pss, count = tree_memory(child.pid)
        peak_rss, peak_pss, most = max(peak_rss, rss), max(peak_pss, pss), max(most, count)
        time.sleep(0.05)
    wall = time.perf_counter() - started
    out, err = child.communicate()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the command and its workers, reaped
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if child.returncode:
        raise SystemExit(f"the command failed ({child.returncode}): {err}")
    return {"wall_seconds": wall, "cpu_seconds": cpu, "peak_rss_sum_mb": peak_rss, "peak_pss_sum_mb": peak_pss,
            "processes": most, "stdout": out.strip(), "stderr": err.strip()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="50,000 log files (10 accounts x 2 Regions x 10 days)")
    parser.add_argument("--accounts", type=int)
    parser.add_argument("--regions", type=int, default=4)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--files", type=int, default=250, help="log files a day per account and Region")
    parser.add_argument("--latency", type=float, default=0.020, help="seconds each ListObjectsV2 call waits")
    parser.add_argument("--list-processes", type=int, help="passed to the command (default: its own choice)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    accounts = args.accounts or (10 if args.quick else 100)
    regions = 2 if args.quick and args.regions == 4 else args.regions
    if args.serve:
        serve(accounts, regions, args.days, args.files, args.latency)
        return 0
    out = args.out or (ROOT / "bench-data" / "results-backfill-listing-quick.json" if args.quick
                       else ROOT / "bench" / "results-backfill-listing.json")
    server = subprocess.Popen([sys.executable, __file__, "--serve", "--accounts", str(accounts), "--regions",
                               str(regions), "--days", str(args.days), "--files", str(args.files),
                               "--latency", str(args.latency)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port, total = (int(x) for x in server.stdout.readline().split())
        endpoint = f"http://127.0.0.1:{port}"
        log_keys = accounts * regions * args.days * args.files
        print(f"fake S3 at {endpoint}: {total:,} keys ({log_keys:,} log files, {total - log_keys:,} digests), "
              f"{args.latency * 1000:.0f} ms a call", file=sys.stderr)
        env = dict(os.environ, AWS_ENDPOINT_URL_S3=endpoint, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                   AWS_DEFAULT_REGION="us-east-1", XDG_CACHE_HOME=str(ROOT / "bench-data" / "cache"))
        env.pop("AWS_PROFILE", None)
        last = FIRST_DAY + timedelta(days=args.days - 1)
        command = [str(Path(sys.executable).with_name("opsworks-trail")), "backfill", f"s3://{BUCKET}/",
                   "--since", FIRST_DAY.isoformat(), "--until", last.isoformat(), "--dry-run",
                   "--queue-url", "https://sqs.us-east-1.amazonaws.com/000000000000/ingest"]
        if args.list_processes is not None:
            command += ["--list-processes", str(args.list_processes)]
        run = measure(command, env)
        with __import__("urllib.request").request.urlopen(f"{endpoint}/__calls") as answer:
            calls = int(answer.read())
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait()
    selected = int(run["stderr"].split(" files would be sent", 1)[0].rsplit("\n", 1)[-1])
    checks = {
        "selected_every_log_file_and_digest": (selected, "==", total),
        "wall_seconds": (run["wall_seconds"], "<=", TARGETS["wall_seconds"]),
        "peak_pss_sum_mb": (run["peak_pss_sum_mb"], "<=", TARGETS["peak_mb"]),
        "peak_rss_sum_mb": (run["peak_rss_sum_mb"], "<=", TARGETS["peak_mb"]),
    }
    passed = {k: v == t if op == "==" else v <= t for k, (v, op, t) in checks.items()}
    print(f"\n{' '.join(command[1:])}\n{run['stderr']}")
    print(f"\nwall {run['wall_seconds']:.1f} s (CPU {run['cpu_seconds']:.1f} s, load average "
          f"{os.getloadavg()[0]:.1f}), {calls:,} list calls, peak memory of its {run['processes']} "
          f"processes: PSS {run['peak_pss_sum_mb']:.1f} MB, RSS {run['peak_rss_sum_mb']:.1f} MB (summed)")
    for key, (value, op, target) in checks.items():
        print(f"  {'PASS' if passed[key] else 'FAIL'}  {key:24s} {value:12,.1f} {op} {target:,}")
    result = {
        "bucket": {"accounts": accounts, "regions": regions, "days": args.days, "files_a_day": args.files,
                   "log_files": log_keys, "digests": total - log_keys, "keys": total},
        "latency_seconds": args.latency, "command": command[1:], "list_calls": calls,
        "wall_seconds": run["wall_seconds"], "cpu_seconds": run["cpu_seconds"],
        "peak_pss_sum_mb": run["peak_pss_sum_mb"],
        "peak_rss_sum_mb": run["peak_rss_sum_mb"], "processes": run["processes"], "selected": selected,
        "summary": run["stderr"],
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load_average": os.getloadavg()},
        "checks": {k: {"value": v, "op": op, "target": t, "pass": passed[k]} for k, (v, op, t) in checks.items()},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
