"""`opsworks-trail ingest --dry-run` over the generated bucket: what its summary reports."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from cli.main import main


def ingest(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["ingest", "--dry-run", "--json", "--no-progress", *args])
    return code, json.loads(capsys.readouterr().out)


def inflated_size(root: Path, keys: list[str]) -> int:
    return sum(len(gzip.decompress((root / key).read_bytes())) for key in keys)


def test_the_summary_reports_matches_and_bytes_read_but_no_record_count_by_default(
        capsys: pytest.CaptureFixture[str], sample_bucket: tuple[Path, Any]) -> None:
    root, manifest = sample_bucket

    code, summary = ingest(capsys, str(root))

    assert code == 0
    assert summary["matched"] == manifest.opsworks_records
    assert summary["records"] is None
    assert summary["bytes_read"] == inflated_size(root, manifest.log_keys)
    assert summary["failed_files"] == 0


def test_count_records_counts_every_record_of_every_file(capsys: pytest.CaptureFixture[str],
                                                         sample_bucket: tuple[Path, Any]) -> None:
    root, manifest = sample_bucket

    code, summary = ingest(capsys, "--count-records", str(root))

    assert code == 0
    assert summary["records"] == manifest.records
    assert summary["matched"] == manifest.opsworks_records


def test_the_text_summary_says_how_much_was_read(capsys: pytest.CaptureFixture[str],
                                                 sample_bucket: tuple[Path, Any]) -> None:
    root, manifest = sample_bucket
    megabytes = inflated_size(root, manifest.log_keys) / 1e6

    code = main(["ingest", "--dry-run", "--no-progress", "--count-records", str(root)])

    assert code == 0
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"{megabytes:,.1f} MB read ({manifest.records:,} records), {manifest.opsworks_records} matched" in line
