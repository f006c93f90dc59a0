"""The digest check is in the function, yet its cryptography library is loaded by the first digest, not
by the init phase every cold start pays."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"


def test_the_handler_import_leaves_out_cryptography() -> None:
    probe = ("import sys, handlers.ingest, core.ingest.proof; "
             "print('cryptography' in sys.modules)")
    env = dict(os.environ, PYTHONPATH=str(SRC), AWS_DEFAULT_REGION="us-east-1")
    loaded = subprocess.run([sys.executable, "-c", probe], env=env, check=True, capture_output=True, text=True)
    assert loaded.stdout.strip() == "False"
