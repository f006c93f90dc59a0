"""What `import handlers.ingest` (the Lambda init phase) loads: what only some invocations need is left out."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"


def test_the_handler_import_leaves_out_the_xray_sdk_the_batch_module_and_the_exact_parser() -> None:
    probe = ("import sys, handlers.ingest; "
             "print(' '.join(m for m in ('aws_xray_sdk', 'asyncio', 'aws_lambda_powertools.utilities.batch', "
             "'ijson') if m in sys.modules))")
    env = dict(os.environ, PYTHONPATH=str(SRC), AWS_DEFAULT_REGION="us-east-1")

    loaded = subprocess.run([sys.executable, "-c", probe], env=env, check=True, capture_output=True, text=True)

    assert loaded.stdout.split() == []
