"""Cold-import time of the built Lambda package against boto3 plus its S3 and DynamoDB clients (issue 11).

Both are measured as Lambda runs them: Python 3.12 with only boto3 installed, the package folder read-only,
PYTHONDONTWRITEBYTECODE=1, each in a fresh interpreter (start-up excluded), alternating. The ratio compares
CPU-time medians (steadier on a shared machine; an import waits on nothing else); wall time is shown too. The package is
built by make/lambda's recipe for this machine's architecture; the same package without its .pyc files is
measured too, to show what precompiling saves. `make bench` reports it; alone:

    python bench/package_imports.py [--repeat N] [--data bench-data]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from lambda_package import (  # noqa: E402
    build,
    lambda_environment,
    local_arch,
    make_read_only,
    make_writable,
    runtime_venv,
    sizes,
)

SNIPPETS = {
    "boto3_and_clients": "import boto3; boto3.client('s3'); boto3.client('dynamodb')",
    "handler": "import handlers.ingest",
}


def prepare(data: Path) -> tuple[Path, Path, Path]:
    """(runtime interpreter, package, the package without .pyc), built afresh; the runtime is reused."""
    package, bare = data / "lambda-package", data / "lambda-package-no-pyc"
    for folder in (package, bare):
        if folder.exists():
            make_writable(folder)
            shutil.rmtree(folder)
    print(f"building {package.relative_to(ROOT) if package.is_relative_to(ROOT) else package} "
          "(make/lambda, this machine's architecture) ...", file=sys.stderr)
    build(package, arch=local_arch())
    shutil.copytree(package, bare, ignore=shutil.ignore_patterns("__pycache__"))
    for folder in (package, bare):
        make_read_only(folder)
    python = data / "lambda-runtime" / "bin" / "python"
    if not python.exists():
        runtime_venv(data / "lambda-runtime")
    return python, package, bare


def measure(data: Path, repeat: int) -> dict[str, Any]:
    python, package, bare = prepare(data.resolve())
    runs = {"boto3_and_clients": package, "handler": package, "handler_without_pyc": bare}
    samples: dict[str, list[float]] = {name: [] for name in runs}
    wall: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, code in runs.items():
            snippet = SNIPPETS[name.removesuffix("_without_pyc")]
            timer = (f"import time; w, c = time.perf_counter(), time.process_time(); {snippet}; "
                     "print(time.process_time() - c, time.perf_counter() - w)")
            out = subprocess.run([str(python), "-P", "-c", timer], cwd=code, check=True, capture_output=True,
                                 text=True, env=lambda_environment(code, TABLE_NAME="events"))
            cpu, elapsed = (float(value) * 1000 for value in out.stdout.split())
            samples[name].append(cpu)
            wall[name].append(elapsed)
    for folder in (package, bare):
        make_writable(folder)  # so that `make clean` can remove them
    medians = {name: statistics.median(values) for name, values in samples.items()}
    unzipped, zipped = sizes(package)
    return {"median_ms": medians, "samples_ms": samples, "basis": "cpu",
            "wall_median_ms": {name: statistics.median(values) for name, values in wall.items()},
            "ratio": medians["handler"] / medians["boto3_and_clients"],
            "ratio_without_pyc": medians["handler_without_pyc"] / medians["boto3_and_clients"],
            "package_bytes": {"unzipped": unzipped, "zipped": zipped}, "arch": local_arch(),
            "setting": "Python 3.12 with boto3 only, package read-only, PYTHONDONTWRITEBYTECODE=1"}


def summary(result: dict[str, Any]) -> str:
    m, w, size = result["median_ms"], result["wall_median_ms"], result["package_bytes"]
    return (f"package import ({result['arch']}; {result['setting']}; CPU ms, wall in brackets, median of "
            f"{len(result['samples_ms']['handler'])} fresh interpreters):\n"
            f"  handler {m['handler']:.0f} ({w['handler']:.0f}), boto3 + S3 and DynamoDB clients "
            f"{m['boto3_and_clients']:.0f} ({w['boto3_and_clients']:.0f}): {result['ratio']:.2f}x; "
            f"without the .pyc files {m['handler_without_pyc']:.0f} ({w['handler_without_pyc']:.0f}): "
            f"{result['ratio_without_pyc']:.2f}x\n"
            f"  package {size['unzipped'] / 2**20:.1f} MB unzipped, {size['zipped'] / 2**20:.1f} MB zipped")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=11)
    parser.add_argument("--data", type=Path, default=ROOT / "bench-data")
    args = parser.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    result = measure(args.data, args.repeat)
    print(summary(result))
    return 0 if result["ratio"] <= 1.3 else 1


if __name__ == "__main__":
    raise SystemExit(main())
