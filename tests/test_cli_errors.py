"""Ordinary mistakes, run as a user runs them (a subprocess): each ends in seconds, non-zero, with one line
naming the cause and the fix, and no traceback unless --debug."""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
TIME_LIMIT_S = 10.0


def clean_env(**extra: str) -> dict[str, str]:
    """A user's shell with nothing AWS configured (no profile files, no instance metadata)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TABLE_NAME"))}
    env.update(AWS_CONFIG_FILE="/nonexistent/config", AWS_SHARED_CREDENTIALS_FILE="/nonexistent/credentials",
               AWS_EC2_METADATA_DISABLED="true", PYTHONPATH=str(REPO / "src"))
    env.update(extra)
    return env


WITH_CREDENTIALS = {"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def run_cli(*argv: str, env: dict[str, str]) -> tuple[int, str, str, float]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "cli.main", *argv], env=env, capture_output=True,
                          text=True,
                          timeout=60, cwd=REPO, check=False)
    return done.returncode, done.stdout, done.stderr, time.monotonic() - started


def assert_one_line_failure(code: int, err: str, seconds: float, expected_code: int, *words: str) -> None:
    assert code == expected_code, err
    assert seconds < TIME_LIMIT_S
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("opsworks-trail: ")
    for word in words:
        assert word in lines[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class FakeAws:
    """A loopback HTTP server answering every request with one canned response (status, content type, body)."""

    def __init__(self, status: int, content_type: str, body: str) -> None:
        answer = (status, content_type, body.encode())

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(answer[0])
                self.send_header("Content-Type", answer[1])
                self.send_header("Content-Length", str(len(answer[2])))
                self.end_headers()
                self.wfile.write(answer[2])

            do_GET = do_POST = do_PUT = do_HEAD = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_aws() -> Iterator[Any]:
    servers: list[FakeAws] = []

    def start(status: int, content_type: str, body: str) -> FakeAws:
        servers.append(FakeAws(status, content_type, body))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def s3_xml(root: str, **fields: str) -> str:
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in fields.items())
    namespace = ' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"' if root != "Error" else ""
    return f'<?xml version="1.0" encoding="UTF-8"?><{root}{namespace}>{inner}</{root}>'


# -- configuration missing ----------------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [["query", "--table", "t", "--stack", "s"], ["report", "--table", "t"],
                                  ["failures", "--table", "t"], ["ingest", "--table", "t", "events"]])
def test_no_region_says_set_aws_region_or_pass_region(argv: list[str]) -> None:
    code, _, err, seconds = run_cli(*argv, env=clean_env(AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="y"))

    assert_one_line_failure(code, err, seconds, 3, "set AWS_REGION or pass --region")


@pytest.mark.parametrize("argv", [["query", "--table", "t", "--failed"], ["ingest", "--table", "t", "events"],
                                  ["retry-failures", "--table", "t"]])
def test_no_credentials_stop_at_once_naming_the_ways_to_give_them(argv: list[str]) -> None:
    code, _, err, seconds = run_cli(*argv, "--endpoint-url", f"http://127.0.0.1:{free_port()}",
                                    env=clean_env(AWS_REGION="us-east-1"))

    assert_one_line_failure(code, err, seconds, 3, "no AWS credentials", "AWS_PROFILE")


def test_no_table_name_says_how_to_give_one() -> None:
    code, _, err, seconds = run_cli("query", "--failed", env=clean_env(**WITH_CREDENTIALS))

    assert_one_line_failure(code, err, seconds, 3, "--table", "TABLE_NAME")


def test_local_without_a_running_dynamodb_local_says_how_to_start_it(tmp_path: Path) -> None:
    from cli.dynamodb_local import running_local_endpoint
    from cli.errors import CliError

    with pytest.raises(CliError, match="opsworks-trail local start") as raised:
        running_local_endpoint(tmp_path)
    assert raised.value.code == 3


# -- endpoint not running -----------------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [["query", "--stack", "s"], ["report"], ["failures"], ["retry-failures"],
                                  ["ingest", "events"]])
def test_an_endpoint_not_listening_stops_at_once_and_names_it(argv: list[str]) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"

    code, _, err, seconds = run_cli(*argv, "--table", "t", "--endpoint-url", endpoint,
                                    env=clean_env(**WITH_CREDENTIALS))

    assert_one_line_failure(code, err, seconds, 5, f"cannot reach {endpoint}", "opsworks-trail local start")


# -- table missing, access denied (DynamoDB) ------------------------------------------------------------------

@pytest.mark.dynamodb_local
@pytest.mark.parametrize("argv", [["query", "--stack", "s"], ["report"], ["failures"], ["retry-failures"],
                                  ["ingest", "events"]])
def test_a_table_that_does_not_exist_is_named_with_its_endpoint_and_the_fix(
        argv: list[str], dynamodb_local_endpoint: str) -> None:
    code, _, err, seconds = run_cli(*argv, "--table", "no-such-table", "--endpoint-url", dynamodb_local_endpoint,
                                    env=clean_env(**WITH_CREDENTIALS))

    assert_one_line_failure(code, err, seconds, 6, f"table no-such-table does not exist at {dynamodb_local_endpoint}",
                            "--table")


@pytest.mark.parametrize("argv", [["query", "--stack", "s"], ["ingest", "events"]])
def test_access_denied_to_the_table_stops_at_once(argv: list[str], fake_aws: Any) -> None:
    body = json.dumps({"__type": "com.amazonaws.dynamodb.v20120810#AccessDeniedException",
                       "message": "User: arn:aws:iam::1:user/u is not authorized to perform: dynamodb:Query"})
    server = fake_aws(400, "application/x-amz-json-1.0", body)

    code, _, err, seconds = run_cli(*argv, "--table", "t", "--endpoint-url", server.url,
                                    env=clean_env(**WITH_CREDENTIALS))

    assert_one_line_failure(code, err, seconds, 4, "access denied to table t", "not authorized")


# -- S3 and local paths -------------------------------------------------------------------------------------

def test_an_empty_s3_prefix_exits_7_naming_the_path(fake_aws: Any) -> None:
    server = fake_aws(200, "application/xml", s3_xml("ListBucketResult", Name="trail", Prefix="AWSLogs/",
                                                     KeyCount="0", MaxKeys="1000", IsTruncated="false"))

    code, _, err, seconds = run_cli("ingest", "--dry-run", "s3://trail/AWSLogs/",
                                    env=clean_env(AWS_ENDPOINT_URL_S3=server.url, **WITH_CREDENTIALS))

    assert_one_line_failure(code, err, seconds, 7, "no object under s3://trail/AWSLogs/")


def test_a_bucket_that_does_not_exist_stops_at_once(fake_aws: Any) -> None:
    server = fake_aws(404, "application/xml", s3_xml("Error", Code="NoSuchBucket", Message="no such bucket"))

    code, _, err, seconds = run_cli("ingest", "--dry-run", "s3://nope/x",
                                    env=clean_env(AWS_ENDPOINT_URL_S3=server.url, **WITH_CREDENTIALS))

    assert_one_line_failure(code, err, seconds, 6, "bucket nope does not exist")


def test_access_denied_to_the_bucket_stops_at_once(fake_aws: Any) -> None:
    server = fake_aws(403, "application/xml", s3_xml("Error", Code="AccessDenied", Message="Access Denied"))

    code, _, err, seconds = run_cli("ingest", "--dry-run", "s3://trail/AWSLogs/",
                                    env=clean_env(AWS_ENDPOINT_URL_S3=server.url, **WITH_CREDENTIALS))

    assert_one_line_failure(code, err, seconds, 4, "access denied to bucket trail")


def test_an_empty_folder_exits_7_naming_it(tmp_path: Path) -> None:
    code, _, err, seconds = run_cli("ingest", "--dry-run", str(tmp_path), env=clean_env())

    assert_one_line_failure(code, err, seconds, 7, f"no object under {tmp_path}")


def test_a_folder_of_no_log_files_exits_7_saying_none_is_a_log_file(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a trail")

    code, _, err, seconds = run_cli("ingest", "--dry-run", "--no-progress", str(tmp_path), env=clean_env())

    assert code == 7 and seconds < TIME_LIMIT_S and "Traceback" not in err
    assert "none a log file" in err.strip().splitlines()[-1]


@pytest.mark.dynamodb_local
def test_a_failing_local_file_is_listed_and_said_not_to_be_recorded(
        tmp_path: Path, dynamodb_local_table: tuple[Any, str], dynamodb_local_endpoint: str) -> None:
    _, table = dynamodb_local_table
    broken = tmp_path / "111122223333_CloudTrail_us-east-1_20240601T0000Z_x.json.gz"
    broken.write_bytes(gzip.compress(b'{"Records": [')[:-6])

    code, _, err, _ = run_cli("ingest", "--no-progress", "--table", table, "--endpoint-url",
                              dynamodb_local_endpoint, str(broken), env=clean_env(**WITH_CREDENTIALS))

    assert code == 1
    assert f"failed: {broken}" in err
    assert "not recorded" in err
    _, out, _, _ = run_cli("failures", "--table", table, "--endpoint-url", dynamodb_local_endpoint,
                           env=clean_env(**WITH_CREDENTIALS))
    assert "local file" in out


def test_debug_shows_the_traceback_and_still_the_line() -> None:
    code, _, err, _ = run_cli("query", "--debug", "--table", "t", "--failed",
                              env=clean_env(AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="y"))

    assert code == 3
    assert "Traceback" in err
    assert err.strip().splitlines()[-1] == "opsworks-trail: no AWS Region: set AWS_REGION or pass --region"
