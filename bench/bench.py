"""Issue 7 benchmark: the trail reader against the naive handler and against decompression alone.

Everything is timed in ONE run on the same generated files, interleaved (each repetition runs every
method once) so a noisy machine slows all of them alike; the table shows medians. The pipeline runs
through the CLI code path in-process (`cli.main.main(["ingest", "--dry-run", "--json", ...])`: all
the work but the writes, no interpreter start-up). Peak memory and import time are measured in fresh
subprocesses; the import-time target on the built Lambda package as Lambda runs it (bench/package_imports.py).

    make bench            # full: 64 MB files, a 1 GiB file, 5 repetitions; writes bench/results.json
    make bench QUICK=1    # small files for development; writes bench-data/results-quick.json
    .venv/bin/python bench/bench.py --per-file [--quick]   # only the per-file cost (issue 21), a minute or two
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))  # workshop/ (the sample data), which is not installed

from isal import igzip, isal_zlib  # noqa: E402
from workshop.synthetic import write_large_trail_file  # noqa: E402

from cli.ingest import default_workers  # noqa: E402
from cli.main import main as cli_main  # noqa: E402
from core.model import ObjectRef  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
import package_imports  # noqa: E402

MB = 1 << 20
SOURCES = ("opsworks.amazonaws.com", "opsworks-cm.amazonaws.com")
MAX_BYTES = str(2 << 30)  # the default cap (512 MiB) would refuse the 1 GiB file
TARGETS = {"skip_vs_naive": 15.0, "skip_vs_floor": 1.3, "match_vs_naive": 6.0, "peak_rss_mb": 128.0,
           "import_ratio": 1.3, "folder_vs_floor": 1.3}
FOLDER_FILES = 24


# -- the methods ------------------------------------------------------------------------------------


def naive(path: Path) -> int:
    """The handler this project replaces, written faithfully: the whole object in memory, then a loop."""
    data = path.read_bytes()
    records = json.loads(gzip.decompress(data))["Records"]
    matched = 0
    for record in records:
        if record.get("eventSource") in SOURCES:
            matched += 1
    return matched


def floor(module: Any, read_size: int) -> Callable[[Path], int]:
    """Streaming decompression alone: read, inflate, drop the output."""
    def run(path: Path) -> int:
        inflater = module.decompressobj(wbits=31)
        total = 0
        with path.open("rb") as stream:
            while block := stream.read(read_size):
                total += len(inflater.decompress(block))
        return total
    return run


def floor_readinto(read_size: int, chunk_size: int) -> Callable[[Path], int]:
    """Streaming decompression alone through isal's public gzip reader into one reused buffer: no output
    object per step, the fastest public way measured (and how the pipeline inflates)."""
    def run(path: Path) -> int:
        buffer, total = bytearray(chunk_size), 0
        with path.open("rb", buffering=read_size) as stream:
            reader = igzip.IGzipFile(fileobj=stream)
            while size := reader.readinto(buffer):
                total += size
        return total
    return run


def floor_hashed(read_size: int, chunk_size: int) -> Callable[[Path], int]:
    """The floor of the skip path now that it keeps the ledger: inflate into a reused buffer and SHA-256
    the same bytes (what CloudTrail's digests list), nothing else."""
    def run(path: Path) -> int:
        buffer, total, sha256 = bytearray(chunk_size), 0, hashlib.sha256()
        with path.open("rb") as stream:
            reader = isal_zlib._GzipReader(stream, read_size)
            while size := reader.readinto(buffer):
                sha256.update(memoryview(buffer)[:size])
                total += size
        return total
    return run


def pipeline(path: Path, *extra: str) -> int:
    """`opsworks-trail ingest --dry-run --json FILE`, in-process; returns `matched`."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli_main(["ingest", "--dry-run", "--json", "--no-progress", "--max-bytes", MAX_BYTES, *extra,
                         str(path)])
    summary = json.loads(out.getvalue())
    if code or summary["failed_files"]:
        raise SystemExit(f"the pipeline failed on {path}: {summary['failures']}")
    return int(summary["matched"])


def pipeline_hashed(path: Path) -> int:
    """The pipeline as the function runs it on a file, the SHA-256 for the ledger included: everything but
    the writes (a dry run hashes nothing, so this one is built in-process with a sink that hashes)."""
    from core.ingest.pipeline import Pipeline
    from core.ingest.selection import Selection
    from core.ingest.sinks import DryRunSink
    from core.ingest.sources import LocalSource

    run = Pipeline(open=LocalSource().open, selection=Selection(frozenset(SOURCES)),
                   sink=DryRunSink(keeps_ledger=True), max_decompressed_bytes=int(MAX_BYTES))
    outcome = run.ingest(ObjectRef(None, str(path)))
    if outcome.status != "ingested" or outcome.sha256 is None:
        raise SystemExit(f"the pipeline failed on {path}: {outcome.reason}")
    return outcome.matched


def pipeline_counting(path: Path) -> int:
    """The same with --count-records: what counting every record costs (not a target)."""
    return pipeline(path, "--count-records")


def command_over_folder(*extra: str) -> Callable[[Path], int]:
    """`opsworks-trail ingest --dry-run --json FOLDER` in-process (start-up excluded), with the workers it
    chooses (or `--workers N`); CPU is counted over all its threads by time.process_time()."""
    def run(folder: Path) -> int:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = cli_main(["ingest", "--dry-run", "--json", "--no-progress", "--max-bytes", MAX_BYTES, *extra,
                             str(folder)])
        summary = json.loads(out.getvalue())
        if code or summary["failed_files"] or summary["files"] != FOLDER_FILES:
            raise SystemExit(f"the command failed on {folder}: {summary}")
        return int(summary["files"])
    return run


def floor_over_folder(read_size: int, chunk_size: int) -> Callable[[Path], int]:
    """The inflate floor of the same files, one after the other in this thread."""
    one = floor_readinto(read_size, chunk_size)
    return lambda folder: sum(one(path) for path in sorted(folder.iterdir()))


def folder_of_copies(directory: Path, source: Path, count: int = FOLDER_FILES) -> Path:
    """`count` hard links to one generated file in a folder of their own: the command's per-file cost over
    a folder, as a trail copied to disk is read (the same bytes each time, as a benchmark wants)."""
    folder = directory / f"folder-{count}x-{source.name.removesuffix('.json.gz')}"
    folder.mkdir(exist_ok=True)
    for i in range(count):
        link = folder / f"{i:02d}-{source.name}"
        if not link.exists():
            os.link(source, link)
    return folder


# -- data -------------------------------------------------------------------------------------------


def dataset(directory: Path, name: str, size: int, fraction: float, seed: int = 11) -> tuple[Path, dict[str, Any]]:
    """A generated trail file, reused when one with the same parameters is already there."""
    path, meta = directory / f"{name}.json.gz", directory / f"{name}.meta.json"
    params = {"uncompressed_bytes": size, "opsworks_fraction": fraction, "seed": seed}
    if path.exists() and meta.exists():
        known = json.loads(meta.read_text())
        if known.get("params") == params:
            return path, known["stats"]
    print(f"generating {path} ({size / MB:,.0f} MB, {fraction:.0%} OpsWorks) ...", file=sys.stderr)
    stats = write_large_trail_file(path, uncompressed_bytes=size, opsworks_fraction=fraction, seed=seed)
    info = {"params": params, "stats": {k: getattr(stats, k) for k in
                                         ("records", "opsworks_records", "uncompressed_bytes", "compressed_bytes")}}
    meta.write_text(json.dumps(info, indent=2))
    return path, info["stats"]


# -- measurements -----------------------------------------------------------------------------------


def timed(methods: dict[str, tuple[Callable[[Path], int], Path]], repeat: int) -> dict[str, dict[str, Any]]:
    """Interleaved repetitions; wall and CPU seconds of each, and the result of the last run."""
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in methods}
    results: dict[str, int] = {}
    for _ in range(repeat):
        for name, (method, path) in methods.items():
            wall, cpu = time.perf_counter(), time.process_time()
            results[name] = method(path)
            runs[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    return {name: {"wall_median": statistics.median(w for w, _ in r), "wall_min": min(w for w, _ in r),
                   "cpu_median": statistics.median(c for _, c in r), "runs": len(r), "result": results[name]}
            for name, r in runs.items()}


def peak_rss_mb(args: list[str]) -> float:
    """Peak RSS (MB) of one child running `args`, through a wrapper whose only child it is."""
    probe = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL);"
             " print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", probe, *args], check=True, capture_output=True, text=True)
    return int(out.stdout.strip()) / 1024  # ru_maxrss is in KiB on Linux


def import_times(repeat: int) -> dict[str, Any]:
    """Median import time (ms) from the source tree in the development venv, in fresh interpreters, alternating
    the two, interpreter start-up excluded. Shown beside the target, which is measured on the built package
    (package_imports.py)."""
    env = dict(os.environ, AWS_DEFAULT_REGION="us-east-1", PYTHONPATH=str(ROOT / "src"))
    snippets = {
        "boto3_and_clients": "import boto3; boto3.client('s3'); boto3.client('dynamodb')",
        "handler": "import handlers.ingest",
    }
    samples: dict[str, list[float]] = {k: [] for k in snippets}
    for _ in range(repeat):
        for name, code in snippets.items():
            timer = f"import time; t = time.perf_counter(); {code}; print(time.perf_counter() - t)"
            out = subprocess.run([sys.executable, "-c", timer], env=env, check=True, capture_output=True, text=True)
            samples[name].append(float(out.stdout.strip()) * 1000)
    medians = {k: statistics.median(v) for k, v in samples.items()}
    return {"median_ms": medians, "samples_ms": samples,
            "ratio": medians["handler"] / medians["boto3_and_clients"]}


# -- report -----------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small files, fewer repetitions")
    parser.add_argument("--repeat", type=int, help="repetitions (default 5, quick 3)")
    parser.add_argument("--data", type=Path, default=ROOT / "bench-data")
    parser.add_argument("--basis", choices=["cpu", "wall"], default="cpu",
                        help="what the ratios compare: CPU seconds of this process (default: steadier on a "
                             "shared machine) or wall-clock seconds; the table shows both")
    parser.add_argument("--out", type=Path, help="results file (default bench/results.json; quick: bench-data/)")
    parser.add_argument("--per-file", action="store_true",
                        help="only the per-file cost: the command over a folder of 24 files against the inflate "
                             "floor (default workers, 1, 4), and the function's path with the ledger's SHA-256 "
                             "against inflate + SHA-256; writes bench/results-per-file.json (quick: bench-data/)")
    args = parser.parse_args()
    if args.per_file:
        return per_file(args)
    size, big = (8 * MB, 128 * MB) if args.quick else (64 * MB, 1 << 30)
    repeat = args.repeat or (3 if args.quick else 5)
    out = args.out or (args.data / "results-quick.json" if args.quick else ROOT / "bench" / "results.json")
    args.data.mkdir(parents=True, exist_ok=True)
    tag = f"{size // MB}mb"
    skip, skip_stats = dataset(args.data, f"skip-{tag}", size, 0.0)
    match, match_stats = dataset(args.data, f"match-{tag}", size, 0.01)
    large, large_stats = dataset(args.data, f"large-{big // MB}mb", big, 0.01)

    read = 64 << 10
    methods = {
        "naive/skip": (naive, skip), "naive/match": (naive, match),
        "floor-isal/skip": (floor(isal_zlib, read), skip),
        "floor-isal-1MiB/skip": (floor(isal_zlib, MB), skip),
        "floor-isal-readinto/skip": (floor_readinto(read, 512 << 10), skip),
        "floor-hashed-readinto/skip": (floor_hashed(read, 512 << 10), skip),
        "floor-zlib/skip": (floor(zlib, read), skip),
        "floor-isal/match": (floor(isal_zlib, read), match),
        "floor-isal-readinto/match": (floor_readinto(read, 512 << 10), match),
        "pipeline/skip": (pipeline, skip), "pipeline/match": (pipeline, match),
        "pipeline-count/skip": (pipeline_counting, skip),
        "pipeline-hashed/skip": (pipeline_hashed, skip),
        **folder_methods(folder_of_copies(args.data, skip)),
    }
    print(f"timing {len(methods)} methods x {repeat} interleaved runs ...", file=sys.stderr)
    times = timed(methods, repeat)

    cli = [str(Path(sys.executable).with_name("opsworks-trail")), "ingest", "--dry-run", "--json", "--no-progress"]
    tiny = args.data / "tiny.json"
    tiny.write_text('{"Records":[]}')
    print("peak memory ...", file=sys.stderr)
    baseline_rss = peak_rss_mb([*cli, str(tiny)])
    started = time.perf_counter()
    large_rss = peak_rss_mb([*cli, "--max-bytes", MAX_BYTES, str(large)])
    large_seconds = time.perf_counter() - started
    print("import time ...", file=sys.stderr)
    imports = import_times(7 if not args.quick else 3)
    package = package_imports.measure(args.data, 15 if not args.quick else 5)

    basis = f"{args.basis}_median"
    # The fastest isal configuration measured for each file: the floor the ratios compare with.
    floors = {kind: min((name for name in times if name.startswith("floor-isal") and name.endswith(f"/{kind}")),
                        key=lambda name: times[name][basis]) for kind in ("skip", "match")}

    def ratio(a: str, b: str) -> float:
        return float(times[a][basis] / times[b][basis])

    checks = {
        "skip_vs_naive": (ratio("naive/skip", "pipeline/skip"), ">=", TARGETS["skip_vs_naive"]),
        "skip_vs_floor": (ratio("pipeline/skip", floors["skip"]), "<=", TARGETS["skip_vs_floor"]),
        "skip_vs_floor_zlib": (ratio("pipeline/skip", "floor-zlib/skip"), "<=", TARGETS["skip_vs_floor"]),
        # issue 14: the skip path hashes every byte for the ledger; its floor inflates and hashes them
        "skip_hashed_vs_floor_sha256": (ratio("pipeline-hashed/skip", "floor-hashed-readinto/skip"), "<=",
                                        TARGETS["skip_vs_floor"]),
        # issue 21: the command over a folder of 24 files, with the workers it chooses, against inflating them
        "folder_vs_floor": (ratio("command/folder", "floor-readinto/folder"), "<=", TARGETS["folder_vs_floor"]),
        "match_vs_naive": (ratio("naive/match", "pipeline/match"), ">=", TARGETS["match_vs_naive"]),
        "match_found_all": (float(times["pipeline/match"]["result"]), "==", float(match_stats["opsworks_records"])),
        "peak_rss_mb": (large_rss, "<=", TARGETS["peak_rss_mb"]),
        "import_ratio": (package["ratio"], "<=", TARGETS["import_ratio"]),
    }
    passed = {k: (v >= t if op == ">=" else v <= t if op == "<=" else v == t) for k, (v, op, t) in checks.items()}

    sizes = {"skip": skip_stats["uncompressed_bytes"], "match": match_stats["uncompressed_bytes"]}
    print(f"\n{'method/file':26s} {'wall s':>7s} {'min s':>6s} {'cpu s':>6s} {'MB/s':>6s} "
          f"{'vs naive':>13s} {'vs isal floor':>13s}  result")
    print(f"{'':26s} {'median':>7s} {'':>6s} {'median':>6s} {'(cpu)':>6s} {'cpu / wall':>13s} {'cpu / wall':>13s}")
    for name, t in times.items():
        kind = name.split("/")[1]
        if kind == "folder":
            continue
        naive_t, floor_t = times[f"naive/{kind}"], times[floors[kind]]
        mbps = sizes[kind] / MB / t["cpu_median"]
        vs_naive = (f"{naive_t['cpu_median'] / t['cpu_median']:.1f}x / "
                    f"{naive_t['wall_median'] / t['wall_median']:.1f}x")
        vs_floor = (f"{t['cpu_median'] / floor_t['cpu_median']:.2f}x / "
                    f"{t['wall_median'] / floor_t['wall_median']:.2f}x")
        print(f"{name:26s} {t['wall_median']:7.3f} {t['wall_min']:6.3f} {t['cpu_median']:6.3f} {mbps:6.0f} "
              f"{vs_naive:>13s} {vs_floor:>13s}  {t['result']:,}")
    print(f"\nfiles: skip {skip_stats['records']:,} records, 0 OpsWorks; match {match_stats['records']:,} records, "
          f"{match_stats['opsworks_records']:,} OpsWorks; {sizes['skip'] / MB:.0f} MB uncompressed, "
          f"{skip_stats['compressed_bytes'] / MB:.1f} MB gzip")
    print(f"peak RSS: {large_rss:.1f} MB reading {large_stats['uncompressed_bytes'] / MB:,.0f} MB "
          f"({large_stats['opsworks_records']:,} OpsWorks) in {large_seconds:.1f} s as a subprocess; "
          f"the same CLI on an empty file: {baseline_rss:.1f} MB")
    print(folder_table(times))
    m = imports["median_ms"]
    print(package_imports.summary(package))
    print(f"import from the source tree (development venv, not the target): handler {m['handler']:.0f} ms, "
          f"boto3 + S3 and DynamoDB clients {m['boto3_and_clients']:.0f} ms, {imports['ratio']:.2f}x "
          f"(median of {len(imports['samples_ms']['handler'])} fresh interpreters, wall)")
    print(f"counting every record (--count-records, not a target): "
          f"{ratio('pipeline-count/skip', floors['skip']):.2f}x the floor on the skip file")
    print(f"\ntargets (ratios of {args.basis} medians; floor = {floors['skip']}, the fastest isal measured):")
    for key, (value, op, target) in checks.items():
        print(f"  {'PASS' if passed[key] else 'FAIL'}  {key:20s} {value:10.2f} {op} {target:g}")
    if args.quick:
        print("  (quick mode: small files; the targets are defined for 64 MB and 1 GiB)")

    result = {
        "quick": args.quick, "repeat": repeat, "ratio_basis": basis,
        "timing": "medians of interleaved runs, in-process; cpu = time.process_time() of the bench process",
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": os.cpu_count(), "processor": _cpu_model(), "load_average": os.getloadavg()},
        "files": {"skip": skip_stats, "match": match_stats, "large": large_stats},
        "floors": floors, "times": times, "peak_rss_mb": {"large": large_rss, "empty_file_baseline": baseline_rss,
                                        "large_seconds": large_seconds},
        "imports": imports, "package_imports": package,
        "checks": {k: {"value": v, "op": op, "target": t, "pass": passed[k]} for k, (v, op, t) in checks.items()},
    }
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 0


def folder_methods(folder: Path) -> dict[str, tuple[Callable[[Path], int], Path]]:
    return {"floor-readinto/folder": (floor_over_folder(64 << 10, 512 << 10), folder),
            "command/folder": (command_over_folder(), folder),
            "command-workers-1/folder": (command_over_folder("--workers", "1"), folder),
            "command-workers-4/folder": (command_over_folder("--workers", "4"), folder)}


def folder_table(times: dict[str, dict[str, Any]]) -> str:
    floor_t = times["floor-readinto/folder"]
    lines = [f"\nthe command over a folder of {FOLDER_FILES} files (in-process, start-up excluded; default workers "
             f"on {os.cpu_count()} cores: {default_workers([])}):"]
    for name in ("command/folder", "command-workers-1/folder", "command-workers-4/folder"):
        t = times[name]
        lines.append(f"  {name:26s} cpu {t['cpu_median']:6.3f} s ({t['cpu_median'] / floor_t['cpu_median']:.2f}x the "
                     f"floor), wall {t['wall_median']:6.3f} s ({t['wall_median'] / floor_t['wall_median']:.2f}x)")
    lines.append(f"  {'floor (inflate, one thread)':26s} cpu {floor_t['cpu_median']:6.3f} s")
    return "\n".join(lines)


def per_file(args: argparse.Namespace) -> int:
    """The two per-file measures alone (issue 21), interleaved as the full run does, in a minute or two."""
    size = 8 * MB if args.quick else 64 * MB
    repeat = args.repeat or (3 if args.quick else 5)
    out = args.out or (args.data / "results-per-file-quick.json" if args.quick
                       else ROOT / "bench" / "results-per-file.json")
    args.data.mkdir(parents=True, exist_ok=True)
    skip, stats = dataset(args.data, f"skip-{size // MB}mb", size, 0.0)
    methods = {"floor-hashed-readinto/skip": (floor_hashed(64 << 10, 512 << 10), skip),
               "pipeline-hashed/skip": (pipeline_hashed, skip), **folder_methods(folder_of_copies(args.data, skip))}
    print(f"timing {len(methods)} methods x {repeat} interleaved runs ...", file=sys.stderr)
    times = timed(methods, repeat)
    basis = f"{args.basis}_median"
    checks = {
        "folder_vs_floor": (times["command/folder"][basis] / times["floor-readinto/folder"][basis],
                            TARGETS["folder_vs_floor"]),
        "skip_hashed_vs_floor_sha256": (times["pipeline-hashed/skip"][basis] /
                                        times["floor-hashed-readinto/skip"][basis], TARGETS["skip_vs_floor"]),
    }
    print(folder_table(times))
    h, f = times["pipeline-hashed/skip"], times["floor-hashed-readinto/skip"]
    print(f"\nthe function's path with the ledger's SHA-256 ({size // MB} MB): cpu {h['cpu_median']:.3f} s against "
          f"inflate + SHA-256 {f['cpu_median']:.3f} s")
    print(f"\ntargets (ratios of {args.basis} medians, one run):")
    for key, (value, target) in checks.items():
        print(f"  {'PASS' if value <= target else 'FAIL'}  {key:28s} {value:6.2f} <= {target:g}")
    out.write_text(json.dumps({
        "quick": args.quick, "repeat": repeat, "ratio_basis": basis, "file": stats, "folder_files": FOLDER_FILES,
        "default_workers": default_workers([]), "times": times,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load_average": os.getloadavg()},
        "checks": {k: {"value": v, "op": "<=", "target": t, "pass": v <= t} for k, (v, t) in checks.items()},
    }, indent=2) + "\n")
    print(f"written: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 0


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


if __name__ == "__main__":
    raise SystemExit(main())
