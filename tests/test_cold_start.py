"""The Lambda init phase, measured on the built package as Lambda runs it (read-only, no bytecode written):
what `import handlers.ingest` loads, and that nothing is compiled from source on a cold start."""

from __future__ import annotations

import subprocess
from pathlib import Path

from lambda_package import lambda_environment
from package_plugin import imports_of

#: Counts the modules compiled from source: a package without valid .pyc files compiles every module on
#: every cold start, since /var/task is read-only and nothing compiled is kept.
COUNT_COMPILES = """
import importlib.machinery, sys
compiled = []
_source_to_code = importlib.machinery.SourceFileLoader.source_to_code
def counted(self, data, path, *args, **kwargs):
    compiled.append(path)
    return _source_to_code(self, data, path, *args, **kwargs)
importlib.machinery.SourceFileLoader.source_to_code = counted
"""


def probe(python: Path, package: Path, code: str) -> list[str]:
    done = subprocess.run([str(python), "-P", "-c", COUNT_COMPILES + code], cwd=package,
                          env=lambda_environment(package, TABLE_NAME="events"), capture_output=True, text=True,
                          check=True)
    return done.stdout.split()


def test_the_handler_import_leaves_out_the_xray_sdk_the_batch_module_and_the_exact_parser(
        lambda_package: Path, lambda_runtime: Path) -> None:
    loaded = probe(lambda_runtime, lambda_package,
                   "import handlers.ingest; print(' '.join(m for m in ('aws_xray_sdk', 'asyncio', "
                   "'aws_lambda_powertools.utilities.batch', 'ijson') if m in sys.modules))")

    assert loaded == []


def test_a_cold_start_compiles_nothing_from_source_even_what_is_imported_later(
        lambda_package: Path, lambda_runtime: Path) -> None:
    shipped = imports_of(lambda_package / "handlers", lambda_package / "core")
    later = sorted({statement.partition(":")[0] for statement in shipped} | {"aws_xray_sdk.core"})
    compiled = probe(lambda_runtime, lambda_package,
                     "import importlib, handlers.ingest\n"
                     f"for m in {later!r}: importlib.import_module(m)\n"
                     "print(*compiled)")

    assert compiled == []


def test_the_precompiled_modules_are_valid_whatever_the_file_times(lambda_package: Path) -> None:
    """unchecked-hash .pyc: Lambda's unzipped files carry whatever times the zip gave them."""
    pycs = list(lambda_package.rglob("*.cpython-312.pyc"))
    flags = {int.from_bytes(pyc.read_bytes()[4:8], "little") for pyc in pycs}

    assert len(pycs) > 100
    assert flags == {0b01}  # hash-based, source not checked (PEP 552)
