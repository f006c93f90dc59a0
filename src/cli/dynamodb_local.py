"""DynamoDB Local for developers and for the test suite, without Docker.

AWS ships DynamoDB Local as a Java program. The copy used here comes from the npm package
``amplify-dynamodb-simulator``, downloaded once by :mod:`cli.npm_install` (pinned, tarball integrity
checked); this module launches and stops it. It needs ``java`` (11 or newer) on ``PATH`` (or
``JAVA_HOME``) and, for the one-time download, ``npm``.

Python use::

    from cli.dynamodb_local import DynamoDBLocal, client_kwargs

    with DynamoDBLocal() as ddb:                       # free loopback port, in memory
        client = boto3.client("dynamodb", **client_kwargs(ddb.endpoint_url))

Command line (what the Makefile calls)::

    python -m cli.dynamodb_local install    # download once into $OPSWORKS_TRAIL_CACHE/dynamodb-local
    python -m cli.dynamodb_local serve --port 8000     # foreground until Ctrl-C

Behaviour worth knowing:

- The server runs ``-inMemory -sharedDb``: data disappear when it stops, and every client sees the
  same tables whatever its credentials or region.
- DynamoDB Local listens on all interfaces (it has no bind-address option); clients here always
  use ``127.0.0.1``.
- TTL settings work (``UpdateTimeToLive`` / ``DescribeTimeToLive``). Deletion of expired items does not
  match AWS: measured on 1.25.1, a sweep runs about every 10 s on tables without GSIs, and never removes
  anything from a table with a GSI (such as the events table). Tests must not wait for expiry.
- On Linux the server gets ``PR_SET_PDEATHSIG`` (SIGKILL): it dies with the Python process that
  started it, even when that one is killed with SIGKILL, so it cannot outlive a test session. Start
  it from the main thread (the signal follows the starting thread).
"""

from __future__ import annotations

import argparse
import atexit
import ctypes
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any, TypedDict

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from cli.npm_install import (
    DEFAULT_CACHE_DIR,
    JAR,
    LIB,
    NPM_PACKAGE,
    DynamoDBLocalUnavailable,
    ensure_installed,
    tail,
)

__all__ = [
    "DEFAULT_CACHE_DIR",
    "NPM_PACKAGE",
    "ClientKwargs",
    "DynamoDBLocal",
    "DynamoDBLocalUnavailable",
    "client_kwargs",
    "main",
]

log = logging.getLogger(__name__)

_LOCAL_REGION = "us-east-1"
_LOCAL_SECRET = "local"
_PR_SET_PDEATHSIG = 1
_BIND_ERRORS = ("BindException", "Address already in use")


class ClientKwargs(TypedDict):
    """Keyword arguments for ``boto3.client("dynamodb", **kwargs)`` against DynamoDB Local."""

    endpoint_url: str
    region_name: str
    aws_access_key_id: str
    aws_secret_access_key: str


def client_kwargs(endpoint_url: str) -> ClientKwargs:
    """Return client arguments for ``endpoint_url`` with dummy credentials and region.

    Explicit credentials keep a developer's real AWS profile out of local runs.
    """
    return ClientKwargs(
        endpoint_url=endpoint_url,
        region_name=_LOCAL_REGION,
        aws_access_key_id=_LOCAL_SECRET,
        aws_secret_access_key=_LOCAL_SECRET,
    )


# ----------------------------------------------------------------------------------------- server


def _find_java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise DynamoDBLocalUnavailable("java is not on PATH (nor in JAVA_HOME); DynamoDB Local needs Java 11+")
    return java


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _port_is_free(port: int) -> bool:
    # DynamoDB Local binds every interface, so test the wildcard address; like Jetty, use SO_REUSEADDR
    # so that connections in TIME_WAIT from a previous server do not count as "in use".
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("", port))
        except OSError:
            return False
        return True


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGKILL when its parent dies (Linux only).

    SIGKILL rather than SIGTERM: the data are in memory anyway, and Jetty's graceful stop takes ~2 s.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    prctl = libc.prctl

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

    return preexec


class DynamoDBLocal:
    """A DynamoDB Local server process, as a context manager.

    ``with DynamoDBLocal() as ddb:`` installs if needed, starts ``java`` on a free port (or ``port``),
    waits until it answers ``ListTables`` (at most ``startup_timeout`` seconds) and stops it on exit:
    SIGTERM, then SIGKILL after ``stop_timeout`` seconds. The server's output goes to
    ``<cache_dir>/logs/dynamodb-local-<port>.log``. Raises :class:`DynamoDBLocalUnavailable` when it
    cannot start.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        cache_dir: Path = DEFAULT_CACHE_DIR,
        startup_timeout: float = 30.0,
        stop_timeout: float = 5.0,
        db_path: Path | None = None,
        detached: bool = False,
    ) -> None:
        self._db_path = db_path
        self._detached = detached
        self._requested_port = port
        self._cache_dir = cache_dir
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._port: int | None = None
        self.log_path: Path | None = None
        #: Seconds from ``start()`` until the server answered (install time excluded).
        self.startup_seconds: float | None = None

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>`` of the running server."""
        if self._port is None or self._process is None:
            raise RuntimeError("DynamoDB Local is not running; use it as a context manager or call start()")
        return f"http://127.0.0.1:{self._port}"

    @property
    def pid(self) -> int | None:
        """Process id of the java server, while it runs."""
        return None if self._process is None else self._process.pid

    def __enter__(self) -> DynamoDBLocal:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> str:
        """Install if needed, start the server, wait until it answers; return the endpoint URL."""
        if self._process is not None:
            return self.endpoint_url
        emulator_dir = ensure_installed(self._cache_dir)
        java = _find_java()
        attempts = 1 if self._requested_port is not None else 3
        for attempt in range(1, attempts + 1):
            port = self._requested_port if self._requested_port is not None else _free_port()
            if not _port_is_free(port):
                if attempt < attempts:
                    continue
                raise DynamoDBLocalUnavailable(f"port {port} is already in use")
            try:
                self._launch(java, emulator_dir, port)
                return self.endpoint_url
            except _PortTaken:
                self.stop()
                if attempt == attempts:
                    raise DynamoDBLocalUnavailable(f"port {port} is already in use") from None
            except BaseException:
                self.stop()
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _launch(self, java: str, emulator_dir: Path, port: int) -> None:
        logs = self._cache_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.log_path = logs / f"dynamodb-local-{port}.log"
        self._log_file = self.log_path.open("wb")
        command = [
            java,
            f"-Djava.library.path={LIB}",
            "-jar",
            JAR,
            *(["-dbPath", str(self._db_path)] if self._db_path else ["-inMemory"]),
            "-sharedDb",
            "-disableTelemetry",
            "-port",
            str(port),
        ]
        started = time.monotonic()
        try:
            self._process = subprocess.Popen(
                command,
                cwd=emulator_dir,
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                preexec_fn=None if self._detached else _die_with_parent(),  # only a prctl call
                start_new_session=self._detached,
            )
        except OSError as error:
            raise DynamoDBLocalUnavailable(f"cannot run {java}: {error}") from error
        self._port = port
        if not self._detached:
            atexit.register(self.stop)
        self._wait_until_ready(started)
        self.startup_seconds = time.monotonic() - started
        log.info("DynamoDB Local pid %s ready at %s in %.1f s", self.pid, self.endpoint_url, self.startup_seconds)

    def _wait_until_ready(self, started: float) -> None:
        client = boto3.client(
            "dynamodb",
            **client_kwargs(self.endpoint_url),
            config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=2),
        )
        deadline = started + self._startup_timeout
        while True:
            process = self._process
            assert process is not None
            log_text = self._read_log()
            if any(marker in log_text for marker in _BIND_ERRORS):
                # Without this check a poll could be answered by whoever owns the port.
                raise _PortTaken()
            code = process.poll()
            if code is not None:
                raise DynamoDBLocalUnavailable(
                    f"DynamoDB Local exited with code {code} while starting; log {self.log_path}:\n{tail(log_text)}"
                )
            try:
                client.list_tables(Limit=1)
                return
            except (BotoCoreError, ClientError):
                pass
            if time.monotonic() > deadline:
                raise DynamoDBLocalUnavailable(
                    f"DynamoDB Local did not answer on {self.endpoint_url} within "
                    f"{self._startup_timeout:.0f} s; log {self.log_path}:\n{tail(log_text)}"
                )
            time.sleep(0.1)

    def _read_log(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait(self) -> int:
        """Block until the server exits; return its exit code."""
        if self._process is None:
            raise RuntimeError("DynamoDB Local is not running")
        return self._process.wait()

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and close its log. Safe to call twice."""
        process, self._process = self._process, None
        if process is not None:
            atexit.unregister(self.stop)
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=self._stop_timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        self._port = None


class _PortTaken(Exception):
    """The chosen port was taken between picking it and java binding it."""


# ------------------------------------------------------------------------------ persistent server

PERSISTENT_PORT = 8000
"""The port `opsworks-trail local start` tries first (another free one when it is taken)."""


def _state_file(cache_dir: Path) -> Path:
    return cache_dir / "server.json"


def data_dir(cache_dir: Path | None = None) -> Path:
    """Where the persistent server keeps its tables (one SQLite file, thanks to -sharedDb)."""
    cache_dir = cache_dir or DEFAULT_CACHE_DIR
    return cache_dir / "data"


def persistent_server(cache_dir: Path | None = None) -> dict[str, Any] | None:
    """The persistent server's {pid, port, endpoint_url, data} if it is running, else None. `cache_dir`
    (here and below) holds its state file and data folder."""
    cache_dir = cache_dir or DEFAULT_CACHE_DIR
    try:
        state: dict[str, Any] = json.loads(_state_file(cache_dir).read_text(encoding="utf-8"))
        cmdline = Path(f"/proc/{int(state['pid'])}/cmdline").read_bytes()
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state if JAR.encode() in cmdline and b"-dbPath" in cmdline else None


def start_persistent(port: int = PERSISTENT_PORT, cache_dir: Path | None = None, *,
                     jar_cache_dir: Path = DEFAULT_CACHE_DIR) -> tuple[dict[str, Any], bool]:
    """Start DynamoDB Local in the background with its data on disk under the cache, unless it already
    runs; returns its state and whether it was started now. It outlives this process: `stop_persistent`."""
    cache_dir = cache_dir or DEFAULT_CACHE_DIR
    running = persistent_server(cache_dir)
    if running:
        return running, False
    data = data_dir(cache_dir)
    data.mkdir(parents=True, exist_ok=True)
    server = DynamoDBLocal(port if port and _port_is_free(port) else None, cache_dir=jar_cache_dir,
                           db_path=data.resolve(), detached=True)
    server.start()
    state = {"pid": server.pid, "port": server._port, "endpoint_url": server.endpoint_url, "data": str(data),
             "log": str(server.log_path)}
    if server._log_file is not None:  # the child holds its own copy of the descriptor
        server._log_file.close()
    _state_file(cache_dir).write_text(json.dumps(state), encoding="utf-8")
    return state, True


def stop_persistent(cache_dir: Path | None = None, timeout: float = 10.0) -> dict[str, Any] | None:
    """Stop the persistent server (its data stay on disk); returns the state it had, or None."""
    cache_dir = cache_dir or DEFAULT_CACHE_DIR
    state = persistent_server(cache_dir)
    if state is None:
        _state_file(cache_dir).unlink(missing_ok=True)
        return None
    pid = int(state["pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while persistent_server(cache_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    if persistent_server(cache_dir):
        os.kill(pid, signal.SIGKILL)
    _state_file(cache_dir).unlink(missing_ok=True)
    return state


def running_local_endpoint(cache_dir: Path | None = None) -> str:
    """The persistent server's endpoint, or a one-line error saying how to start it."""
    cache_dir = cache_dir or DEFAULT_CACHE_DIR
    from cli.errors import CliError, Exit

    state = persistent_server(cache_dir)
    if state is None:
        raise CliError("DynamoDB Local is not running: start it with `opsworks-trail local start` "
                       "(in a checkout, `make demo` starts and loads it)", Exit.CONFIG)
    return str(state["endpoint_url"])


# -------------------------------------------------------------------------------------------- CLI


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """``install`` or ``serve``; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="python -m cli.dynamodb_local",
                                     description="DynamoDB Local without Docker.")
    parser.add_argument(
        "--cache-dir", type=Path, default=DEFAULT_CACHE_DIR, help="where the jar lives (default: %(default)s)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("install", help=f"download DynamoDB Local ({NPM_PACKAGE}) once, then exit")
    serve = commands.add_parser("serve", help="run DynamoDB Local in the foreground until Ctrl-C")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default: %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.command == "serve" else logging.WARNING, format="%(message)s")

    try:
        if args.command == "install":
            started = time.monotonic()
            emulator_dir = ensure_installed(args.cache_dir)
            print(f"DynamoDB Local is in {emulator_dir} ({time.monotonic() - started:.1f} s)")
            return 0
        for signum in (signal.SIGINT, signal.SIGTERM):  # SIGINT may be ignored when started in background
            signal.signal(signum, _raise_keyboard_interrupt)
        with DynamoDBLocal(args.port, cache_dir=args.cache_dir) as ddb:
            print(f"DynamoDB Local is listening on {ddb.endpoint_url} (in memory; Ctrl-C stops it)")
            print(f"  log: {ddb.log_path}")
            print(f"  try: aws dynamodb list-tables --endpoint-url {ddb.endpoint_url} --region {_LOCAL_REGION}")
            sys.stdout.flush()
            code = ddb.wait()
            print(f"DynamoDB Local exited with code {code}", file=sys.stderr)
            return 1
    except DynamoDBLocalUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("DynamoDB Local stopped")
        return 0


if __name__ == "__main__":
    sys.exit(main())
