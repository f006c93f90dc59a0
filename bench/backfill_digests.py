"""A simulated digest backfill through the function: the writes per partition key (issue 21, figure d).

    python bench/backfill_digests.py [--accounts 20 --regions 4 --hours 48 --per-hour 2 --seed 1]

An organization's history (accounts x Regions x hours of log files, and the hourly signed, chained digests
that list them) is handed to the function's pipeline in a shuffled order, as a Batch Operations job or the
queue would hand it over, against an in-memory table (workshop/fake_table.py, held to moto by
tests/test_proof_order.py) through a client that counts every write per partition key. Then `verify`'s
stored answer is computed from what the function recorded, counting its Queries and digest reads.

Writes bench/results-backfill-digests.json: the writes per key class, the most written key and its share,
that each registry was written once per thing it registers, and that every digest ended verified with
every listed file proven.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from workshop.backfill_sample import OrganizationHistory  # noqa: E402
from workshop.fake_table import FakeTable  # noqa: E402
from workshop.recording import RecordingClient  # noqa: E402

from core.ingest.pipeline import Pipeline  # noqa: E402
from core.ingest.proof import DigestCheck  # noqa: E402
from core.ingest.publickeys import KeyRing  # noqa: E402
from core.ingest.selection import Selection  # noqa: E402
from core.ingest.sinks import TableSink  # noqa: E402
from core.ingest.store import EventStore, deserialize  # noqa: E402
from core.keys import ACCOUNTS_PK, AWAITING, PROOF_STREAMS_PK  # noqa: E402
from core.model import Status  # noqa: E402
from core.read.verify import stored_verdicts  # noqa: E402
from core.settings import DEFAULT_EVENT_SOURCES  # noqa: E402

RESULTS = ROOT / "bench" / "results-backfill-digests.json"
REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2", "eu-central-1", "sa-east-1")


def key_class(pk: str) -> str:
    """A partition key's kind, for the table of writes (core.keys spells them)."""
    if pk in (PROOF_STREAMS_PK, ACCOUNTS_PK):
        return pk
    if pk.startswith("PROOF#"):
        return "PROOF#<account>#<region>"
    if pk.startswith("ACCOUNT#"):
        return "ACCOUNT#<account>"
    head = pk.split("#", 1)[0]
    return {"FILE": "FILE#<bucket>/<key>", "EVENT": "EVENT#<event_id>", "RES": "RES#<type>#<id>"}.get(head, head)


def run(accounts: int, regions: int, hours: int, per_hour: int, seed: int) -> dict[str, Any]:
    started = time.perf_counter()
    history = OrganizationHistory(accounts=accounts, regions=REGIONS[:regions], hours=hours, per_hour=per_hour)
    made = time.perf_counter() - started
    refs = history.refs
    random.Random(seed).shuffle(refs)
    table = FakeTable()
    client = RecordingClient(table)
    store = EventStore(client, "events")
    fetched: Counter[str] = Counter()

    def fetch(ref: Any) -> Any:
        fetched["GetObject"] += 1
        return history.fetch(ref)

    pipeline = Pipeline(open=history.open, selection=Selection(frozenset(DEFAULT_EVENT_SOURCES)),
                        sink=TableSink(store), max_decompressed_bytes=1 << 26,
                        digests=DigestCheck(fetch, KeyRing([history.signer.public_key()]), store))
    started = time.perf_counter()
    outcomes = Counter(pipeline.ingest(ref).status for ref in refs)
    took = time.perf_counter() - started
    if outcomes[Status.FAILED]:
        raise SystemExit(f"{outcomes[Status.FAILED]} object(s) failed: the bench measures a clean backfill")

    records = [deserialize(i) for (pk, sk), i in table.items.items() if sk.startswith("DIGEST#")]
    per_class: dict[str, dict[str, int]] = {}
    for pk, count in client.attempts.items():
        entry = per_class.setdefault(key_class(pk), {"keys": 0, "writes": 0, "max_on_one_key": 0})
        entry["keys"] += 1
        entry["writes"] += count
        entry["max_on_one_key"] = max(entry["max_on_one_key"], count)
    busiest, most = client.attempts.most_common(1)[0]
    total = sum(client.attempts.values())
    stored = sum(client.stored.values())

    fetched.clear()
    client.reset()
    started = time.perf_counter()
    report = stored_verdicts(EventStore(client, "events"), bucket=history.bucket)
    verify_seconds = time.perf_counter() - started
    return {
        "history": {"accounts": accounts, "regions": regions, "hours": hours, "log_files": len(history.logs),
                    "digests": len(history.digests), "streams": history.streams, "order": f"shuffled (seed {seed})"},
        "function": {
            "objects": len(refs), "seconds": round(took, 2), "generating_seconds": round(made, 2),
            "writes": total, "stored": stored,
            "writes_per_key_class": dict(sorted(per_class.items())),
            "busiest_key": {"pk": busiest, "class": key_class(busiest), "writes": most,
                            "share_of_all_writes": round(most / total, 5)},
            "registry_writes": {"PROOF#STREAMS": client_writes(per_class, PROOF_STREAMS_PK),
                                "streams": history.streams,
                                "ACCOUNTS": client_writes(per_class, ACCOUNTS_PK), "accounts": accounts},
            "before_this_change": {"PROOF#STREAMS": len(history.digests),
                                   "ACCOUNTS": sum(b"opsworks" in gzip.decompress(body)
                                                   for body in history.logs.values())},
        },
        "proof": {"digests_verified": sum(r["status"] == "verified" for r in records),
                  "files_listed": sum(int(r["listed"]) for r in records),
                  "files_proven": sum(int(r["proven"]) for r in records),
                  "still_awaited": sum(len(r.get(AWAITING) or ()) for r in records),
                  "chain_links_ok": sum(r.get("chain") == "ok" for r in records),
                  "findings": sum(len(r.get("findings") or []) for r in records)},
        "verify_from_stored": {"queries": client.calls["paginate:query"], "digest_reads": fetched["GetObject"],
                               "seconds": round(verify_seconds, 2), "digests": report.total("digests"),
                               "ingested": report.total("ingested"), "findings": len(report.findings)},
    }


def client_writes(per_class: dict[str, dict[str, int]], name: str) -> int:
    return per_class.get(name, {}).get("writes", 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--regions", type=int, default=4, choices=range(1, len(REGIONS) + 1))
    parser.add_argument("--hours", type=int, default=48)
    parser.add_argument("--per-hour", type=int, default=2, help="log files per account, Region and hour")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    result = run(args.accounts, args.regions, args.hours, args.per_hour, args.seed)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    function, proof = result["function"], result["proof"]
    print(f"{result['history']['log_files']:,} log files and {result['history']['digests']:,} digests, shuffled, "
          f"in {function['seconds']} s: {function['writes']:,} writes; busiest key {function['busiest_key']['pk']} "
          f"({function['busiest_key']['writes']} writes, {function['busiest_key']['share_of_all_writes']:.3%})")
    print(f"registries: PROOF#STREAMS {function['registry_writes']['PROOF#STREAMS']} writes for "
          f"{function['registry_writes']['streams']} streams, ACCOUNTS {function['registry_writes']['ACCOUNTS']} "
          f"for {function['registry_writes']['accounts']} accounts (before: {function['before_this_change']})")
    print(f"proof: {proof['digests_verified']} digests verified, {proof['files_proven']}/{proof['files_listed']} "
          f"files proven, {proof['still_awaited']} awaited, {proof['findings']} findings; verify from stored: "
          f"{result['verify_from_stored']['queries']} queries, {result['verify_from_stored']['digest_reads']} "
          f"digest reads -> {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")


if __name__ == "__main__":
    main()
