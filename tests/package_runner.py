"""Runs a Lambda handler the way the Python runtime does, in a child interpreter: tests/package_plugin.py.

    python -P package_runner.py INVOCATIONS.json RESULTS.json

INVOCATIONS.json: {"handler": "module.function", "invocations": [{"name": ..., "event": {...}}, ...]}.
The handler's module is imported once (the init phase), then called with each event in order; RESULTS.json
gets, per invocation, the response or the error (type and message) Lambda would report. An import that
fails is Lambda's Runtime.ImportModuleError for every invocation. Standard library only: it runs beside
the package, where nothing else is installed but boto3.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any


class Context:
    """The LambdaContext attributes the handler and Powertools read."""

    function_name = "opsworks-trail-ingest"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:111122223333:function:opsworks-trail-ingest"
    log_group_name = "/aws/lambda/opsworks-trail-ingest"
    log_stream_name = "local"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + 300

    def get_remaining_time_in_millis(self) -> int:
        return int((self._deadline - time.monotonic()) * 1000)


def error(kind: str, message: str) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message}}


def main(invocations_path: str, results_path: str) -> int:
    spec = json.loads(Path(invocations_path).read_text(encoding="utf-8"))
    module_name, _, function_name = spec["handler"].rpartition(".")
    results: list[dict[str, Any]] = []
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
    except Exception as exc:
        message = f"Unable to import module '{module_name}': {type(exc).__name__}: {exc}"
        results = [{"name": i["name"], **error("Runtime.ImportModuleError", message)} for i in spec["invocations"]]
    else:
        for invocation in spec["invocations"]:
            try:
                results.append({"name": invocation["name"], "response": handler(invocation["event"], Context())})
            except Exception as exc:  # what Lambda reports as errorType / errorMessage
                results.append({"name": invocation["name"], **error(type(exc).__name__, str(exc))})
    Path(results_path).write_text(json.dumps(results, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:]))
