"""Where the skip path's time goes: the reader against decompression alone, one pass at a time.

`make bench` compares the whole pipeline with the isal floor; this splits the gap. Each variant runs
in this process on the generated skip file (no OpsWorks record), interleaved, CPU-time medians:
the floor (isal's gzip reader into one reused buffer), the reader's own inflation, inflation plus
each pass over every chunk (the search for a quoted source name, the search for `\\u` escapes), the
reader itself, and the reader parsing every record (what --count-records costs). `--sizes` adds the
reader with other read/chunk sizes.

    .venv/bin/python bench/passes.py [--file bench-data/skip-64mb.json.gz] [--repeat 9] [--sizes]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from isal import igzip  # noqa: E402

from core.ingest import logfile, trailfile  # noqa: E402
from core.ingest.logfile import Chunk, decompressed_chunks  # noqa: E402
from core.ingest.selection import Selection  # noqa: E402
from core.ingest.trailfile import RecordScan  # noqa: E402

NO_CAP = 1 << 40
SELECTION = Selection(frozenset({"opsworks.amazonaws.com", "opsworks-cm.amazonaws.com"}))
PROBE = b'"opsworks'
ESCAPE = b"\\u"


def variants(raw: bytes, sizes: bool) -> dict[str, Callable[[], object]]:
    """The measured variants, each a function of no arguments over the same compressed bytes."""
    find = trailfile._find

    def floor() -> None:
        buffer, reader = bytearray(512 << 10), igzip.IGzipFile(fileobj=io.BytesIO(raw))
        while reader.readinto(buffer):
            pass

    def inflate_then(work: Callable[[Chunk], object]) -> Callable[[], None]:
        def run() -> None:
            for chunk in decompressed_chunks(io.BytesIO(raw), NO_CAP):
                work(chunk)
        return run

    def search(needle: bytes) -> Callable[[Chunk], None]:
        def run(chunk: Chunk) -> None:
            pos = find(chunk, needle)
            while pos >= 0:
                pos = find(chunk, needle, pos + 1)
        return run

    def reader(read_size: int | None = None, chunk_size: int | None = None,
               count_records: bool = False) -> Callable[[], None]:
        def run() -> None:
            saved = logfile.READ_SIZE, logfile.CHUNK_SIZE
            logfile.READ_SIZE, logfile.CHUNK_SIZE = read_size or saved[0], chunk_size or saved[1]
            try:
                scan = RecordScan(SELECTION.sources, count_records=count_records)

                def opened() -> Iterator[Chunk]:
                    return decompressed_chunks(io.BytesIO(raw), NO_CAP)

                for _ in scan.trail_records(opened(), opened):
                    pass
            finally:
                logfile.READ_SIZE, logfile.CHUNK_SIZE = saved
        return run

    measured: dict[str, Callable[[], object]] = {
        "floor (isal reader, reused buffer)": floor,
        "inflate (decompressed_chunks)": inflate_then(lambda chunk: None),
        f"  + find {PROBE.decode()!r}": inflate_then(search(PROBE)),
        f"  + find {ESCAPE.decode()!r}": inflate_then(search(ESCAPE)),
        "reader (RecordScan)": reader(),
        "reader, parsing every record": reader(count_records=True),
    }
    if sizes:
        for read_size, chunk_size in ((32 << 10, 256 << 10), (128 << 10, 1 << 20), (64 << 10, 1 << 20),
                                      (128 << 10, 512 << 10)):
            measured[f"reader {read_size >> 10} KiB / {chunk_size >> 10} KiB"] = reader(read_size, chunk_size)
    return measured


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", type=Path, default=ROOT / "bench-data" / "skip-64mb.json.gz")
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--sizes", action="store_true", help="also the reader with other read/chunk sizes")
    args = parser.parse_args()
    if not args.file.exists():
        raise SystemExit(f"{args.file} is missing: `make bench` generates it")
    raw = args.file.read_bytes()
    measured = variants(raw, args.sizes)
    runs: dict[str, list[float]] = {name: [] for name in measured}
    for _ in range(args.repeat):
        for name, run in measured.items():
            started = time.process_time()
            run()
            runs[name].append(time.process_time() - started)
    floor = statistics.median(runs["floor (isal reader, reused buffer)"])
    inflate = statistics.median(runs["inflate (decompressed_chunks)"])
    print(f"{args.file.name}: {len(raw) / (1 << 20):.1f} MB gzip; CPU ms, median of {args.repeat}; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'variant':36s} {'median':>7s} {'min':>7s} {'+ vs inflate':>12s} {'vs floor':>8s}")
    for name, times in runs.items():
        median = statistics.median(times)
        print(f"{name:36s} {median * 1000:7.1f} {min(times) * 1000:7.1f} {(median - inflate) * 1000:+12.1f} "
              f"{median / floor:7.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
