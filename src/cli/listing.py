"""Listing a trail bucket at scale: in parallel by CloudTrail's own prefixes, streamed, resumable.

CloudTrail writes `[prefix/]AWSLogs/[o-org/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/file`. One
ListObjectsV2 call returns at most 1,000 keys, and botocore spends tens of microseconds parsing each,
so a single paginator over an organization's bucket takes a day. Here:

- **plan**: the accounts and Regions are found with Delimiter='/' calls (a few per account), then each
  Region gets one prefix per day within --since / --until (no call spent outside the range). Folders
  outside the layout are listed whole, so nothing under the prefix is missed; digest and Insights
  folders are left out when only log files are wanted;
- **list**: the day prefixes are shared out to worker processes (one per core, each with its own client
  and a few threads), which page through them, keep the keys the filter selects, and send back one
  chunk per page through a bounded queue: memory stays flat whatever the count;
- **resume**: the keys of one prefix arrive in order, so the progress is the prefixes fully handed over
  plus, for the others, the last key handed over (the next run lists them with StartAfter). It is
  saved to a small JSON file (`ListingState`) while the caller consumes chunks.

The command lines call this (`backfill` with --queue-url or --dry-run, `ingest s3://`); the function
never lists.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import multiprocessing
import os
import queue
import re
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from core.errors import IngestError, SourceError, TransientError
from core.ingest.digests import is_digest_key
from core.ingest.logfile import classify_key
from core.ingest.sources import s3_error
from core.model import ObjectRef, Skip

DIGEST_SERVICE = "CloudTrail-Digest"
SKIPPED_SERVICES = frozenset({DIGEST_SERVICE, "CloudTrail-Insight"})
"""The account-level folders that hold no log file: left out when only log files are wanted."""
THREADS_PER_PROCESS = 4
"""Calls in flight per worker process: a call waits ~20 ms on S3 and its parsing costs about as much."""
DISCOVERY_THREADS = 16

_DELIVERED = re.compile(r"_(\d{8})T\d{4}(?:\d\d)?Z[_.]")
"""A log file's `_YYYYMMDDTHHMMZ_` or a digest file's `_YYYYMMDDTHHMMSSZ.json.gz` (its end time)."""
_ORG = re.compile(r"o-[a-z0-9]{10,32}")
_ACCOUNT = re.compile(r"\d{12}")
_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d+")
_YEAR, _MONTH, _DAY = re.compile(r"\d{4}"), re.compile(r"\d{2}"), re.compile(r"\d{2}")


# -- which keys are kept ---------------------------------------------------------------------------


def delivery_day(key: str) -> date | None:
    """The UTC day CloudTrail delivered a file, from its name; None for a key not named as CloudTrail does."""
    match = _DELIVERED.search(key, key.rfind("/") + 1)
    if not match:
        return None
    digits = match.group(1)
    try:  # not strptime: this runs for every key listed, and costs a tenth of what strptime does
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None


@dataclass
class ListingCounts:
    """What the listing saw and why keys were passed over."""

    listed: int = 0
    not_log_files: int = 0
    outside_dates: int = 0
    undated: int = 0
    digests: int = 0
    """Digest files handed over beside the log files (a backfill's, so the function verifies them)."""

    def add(self, other: ListingCounts) -> None:
        self.listed += other.listed
        self.digests += other.digests
        self.not_log_files += other.not_log_files
        self.outside_dates += other.outside_dates
        self.undated += other.undated


@dataclass(frozen=True)
class KeyFilter:
    """Which listed keys are handed over, by name only (no object is read): log files (unless
    `log_files_only` is off) delivered within [since, until] (whole UTC days, inclusive)."""

    since: date | None = None
    until: date | None = None
    log_files_only: bool = True
    digests: bool = False
    """Hand over CloudTrail's digest files too, up to the day after `until` (the digest of a day's last
    hour is delivered after midnight)."""

    def keeps(self, key: str, size: int | None, counts: ListingCounts) -> bool:
        counts.listed += 1
        digest = False
        if self.log_files_only and isinstance(classify_key(key, size), Skip):
            digest = self.digests and is_digest_key(key)
            if not digest:
                counts.not_log_files += 1
                return False
        if self.since or self.until:
            day = delivery_day(key)
            if day is None:
                counts.undated += 1
                return False
            last = self.until + timedelta(days=1) if self.until and digest else self.until
            if (self.since and day < self.since) or (last and day > last):
                counts.outside_dates += 1
                return False
        counts.digests += digest
        return True


def select(refs: Iterable[ObjectRef], since: date | None, until: date | None,
           counts: ListingCounts) -> Iterator[ObjectRef]:
    """The log files among refs whose delivery day is within [since, until], by key name only."""
    keep = KeyFilter(since, until)
    return (ref for ref in refs if keep.keeps(ref.key, ref.size, counts))


# -- the plan: prefixes from the trail's layout -----------------------------------------------------


@dataclass(frozen=True)
class Task:
    """One prefix to list. `direct`: only the keys right in the folder (Delimiter='/'), its subfolders
    being planned on their own. The prefix is the task's identity in the resume state."""

    prefix: str
    direct: bool = False
    start_after: str = ""


@dataclass(frozen=True)
class _Node:
    """A piece of the plan found by discovery: a Region's days (first..last), or a task as it is."""

    prefix: str
    first: date | None = None
    last: date | None = None
    direct: bool = False

    def tasks(self) -> Iterator[Task]:
        if self.first is None or self.last is None:
            yield Task(self.prefix, self.direct)
            return
        day = self.first
        while day <= self.last:
            yield Task(f"{self.prefix}{day:%Y/%m/%d}/")
            day += timedelta(days=1)


@dataclass(frozen=True)
class _Place:
    """Where a folder sits in CloudTrail's layout, and so what the planner does with it."""

    action: str  # "descend" (list its subfolders), "whole" (list it all), "skip", "region" (plan days)
    region_root: str = ""
    dates: tuple[int, ...] = ()  # the year, month, day the folder names below its Region


def place(folder: str, skip_services: frozenset[str]) -> _Place:
    """A folder (ending in '/') against `[...]AWSLogs/[o-org/]ACCOUNT/SERVICE/REGION/YYYY/MM/DD/`."""
    parts = folder.split("/")[:-1]
    if "AWSLogs" not in parts:
        return _Place("descend")
    base = len(parts) - parts[::-1].index("AWSLogs")
    rest = parts[base:]
    if rest and _ORG.fullmatch(rest[0]):
        base, rest = base + 1, rest[1:]
    if not rest:
        return _Place("descend")
    if not _ACCOUNT.fullmatch(rest[0]):
        return _Place("whole")
    if len(rest) == 1:
        return _Place("descend")
    if rest[1] in skip_services:
        return _Place("skip")
    if rest[1] != "CloudTrail":  # digests too: 24 a day, so one listing of the folder beats a call a day
        return _Place("whole")
    if len(rest) == 2:
        return _Place("descend")
    dated = rest[3:]
    patterns = (_YEAR, _MONTH, _DAY)
    if not _REGION.fullmatch(rest[2]) or len(dated) > 3 or not all(
            p.fullmatch(d) for p, d in zip(patterns, dated, strict=False)):
        return _Place("whole")
    root = "/".join(parts[:base + 3]) + "/"
    try:
        numbers = tuple(int(d) for d in dated)
        _span(numbers)  # a month 13 or a day 32 is no date: list that folder whole
    except (ValueError, OverflowError):
        return _Place("whole")
    return _Place("region", root, numbers)


def _span(dates: tuple[int, ...]) -> tuple[date, date]:
    """The days a Region's subfolder covers: a year, a month or one day."""
    if not dates:
        return date.min, date.max
    if len(dates) == 1:
        return date(dates[0], 1, 1), date(dates[0], 12, 31)
    if len(dates) == 2:
        first = date(dates[0], dates[1], 1)
        return first, (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    day = date(*dates)
    return day, day


def days_node(root: str, dates: tuple[int, ...], since: date | None, until: date | None) -> _Node | None:
    """The days of [since, until] under a Region's folder (or one of its year / month / day folders)."""
    first, last = _span(dates)
    first, last = max(first, since or date.min), min(last, until or date.max)
    return _Node(root, first, last) if first <= last else None


class Lister(Protocol):
    def list_objects_v2(self, **kwargs: Any) -> dict[str, Any]: ...


def children(client: Lister, bucket: str, prefix: str) -> tuple[list[str], bool]:
    """The subfolders right under a prefix (Delimiter='/'), and whether keys sit right in it."""
    folders: list[str] = []
    has_keys = False
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "Delimiter": "/"}
    while True:
        page = _call(client, bucket, prefix, kwargs)
        folders += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        has_keys = has_keys or bool(page.get("Contents"))
        if not page.get("IsTruncated"):
            return folders, has_keys
        kwargs["ContinuationToken"] = page["NextContinuationToken"]


def plan(client: Lister, bucket: str, prefix: str, since: date | None, until: date | None, *,
         skip_services: frozenset[str] = frozenset(), threads: int = DISCOVERY_THREADS) -> list[_Node]:
    """The plan's pieces, sorted by prefix (so the tasks they expand to are in key order).

    Discovery descends level by level, each level's folders listed at once: about one call per account
    and one per account's CloudTrail folder. With a first day, each Region's days are planned without a
    call; open-ended, the day folders present are found (a call per Region, year and month in the range).
    The list grows with accounts x Regions (x days when open-ended), never with keys.
    """
    open_ended = since is None or until is None
    until = until or datetime.now(UTC).date()
    nodes: list[_Node] = []
    level: list[str] = []

    def visit(folder: str) -> None:
        where = place(folder, skip_services)
        if where.action == "descend":
            level.append(folder)
        elif where.action == "whole":
            nodes.append(_Node(folder))
        elif where.action == "region" and (node := days_node(where.region_root, where.dates, since, until)):
            if open_ended and len(where.dates) < 3:
                level.append(folder)
            else:
                nodes.append(node)

    if prefix == "" or prefix.endswith("/"):
        visit(prefix)
    else:
        level.append(prefix)  # a partial name: what starts with it is found by listing
    with ThreadPoolExecutor(max_workers=threads) as pool:
        while level:
            found, level = list(zip(level, pool.map(lambda f: children(client, bucket, f), level), strict=True)), []
            for folder, (subfolders, has_keys) in found:
                if has_keys:
                    nodes.append(_Node(folder, direct=True))
                for sub in subfolders:
                    visit(sub)
    return sorted(nodes, key=lambda n: (n.prefix, not n.direct))


def tasks(nodes: Iterable[_Node]) -> Iterator[Task]:
    """The plan's prefixes, in key order, one a day per Region."""
    for node in nodes:
        yield from node.tasks()


# -- resume ----------------------------------------------------------------------------------------


@dataclass
class ListingState:
    """How far a listing was handed over: every prefix up to `done_through` (in key order) and those in
    `done`; for a prefix partly handed over, its last key in `after`. Small: the prefixes in flight."""

    done_through: str = ""
    done: set[str] = field(default_factory=set)
    after: dict[str, str] = field(default_factory=dict)
    plan_id: str = ""

    def start(self, task: Task) -> Task | None:
        """The task still to do (None if it is done), starting after what was handed over."""
        if (self.done_through and task.prefix <= self.done_through) or task.prefix in self.done:
            return None
        after = self.after.get(task.prefix, "")
        return Task(task.prefix, task.direct, max(after, task.start_after)) if after else task

    def to_json(self) -> str:
        return json.dumps({"plan": self.plan_id, "done_through": self.done_through, "done": sorted(self.done),
                           "after": self.after}, indent=1)

    @classmethod
    def load(cls, path: Path, plan_id: str) -> ListingState:
        """The state a previous run saved; a clear error when it is not one, or belongs to another listing."""
        try:
            data = json.loads(path.read_text())
            state = cls(str(data["done_through"]), set(data["done"]), dict(data["after"]), str(data["plan"]))
        except FileNotFoundError:
            raise ResumeError(f"{path}: no saved listing to resume (was the run started with the same options?)"
                              ) from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ResumeError(f"{path}: not a listing state: {exc}") from exc
        if state.plan_id != plan_id:
            raise ResumeError(f"{path}: saved for another listing ({state.plan_id}), not {plan_id}")
        return state

    def save_to(self, path: Path) -> Callable[[ListingState], None]:
        return lambda state: state.save(path)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(self.to_json())
        temporary.replace(path)  # a crash mid-write never leaves half a state


class ResumeError(Exception):
    """A resume state that cannot be used: the message names the file and the reason."""


class _Tracker:
    """Moves the state on as chunks are handed over; `done_through` advances over the prefixes dispatched in
    key order, so `done` holds only those finished ahead of a slower one."""

    def __init__(self, state: ListingState) -> None:
        self.state = state
        self.dispatched: list[str] = []  # in key order; the head is the oldest not yet done
        self.lock = threading.Lock()

    def dispatch(self, prefix: str) -> None:
        with self.lock:
            self.dispatched.append(prefix)

    def skipped(self, prefix: str) -> None:
        """A prefix the state already counts as done (or --start-after passes): done for the watermark."""
        with self.lock:
            self.dispatched.append(prefix)
            self.state.done.add(prefix)
            self._advance()

    def handed_over(self, chunk: Chunk) -> None:
        with self.lock:
            if chunk.finished:
                self.state.after.pop(chunk.prefix, None)
                self.state.done.add(chunk.prefix)
                self._advance()
            elif chunk.last_key:
                self.state.after[chunk.prefix] = chunk.last_key

    def _advance(self) -> None:
        head = 0
        while head < len(self.dispatched) and self.dispatched[head] in self.state.done:
            self.state.done.discard(self.dispatched[head])
            self.state.done_through = max(self.state.done_through, self.dispatched[head])  # never back
            head += 1
        del self.dispatched[:head]


# -- listing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chunk:
    """One page of one prefix: the keys kept (key, size, etag), what was passed over, and where the page
    ended (`last_key`, the StartAfter of the rest); `finished` when the prefix has no more."""

    bucket: str
    prefix: str
    entries: list[tuple[str, int | None, str | None]]
    counts: ListingCounts
    last_key: str
    finished: bool

    def refs(self) -> list[ObjectRef]:
        return [ObjectRef(self.bucket, key, size, etag) for key, size, etag in self.entries]


@dataclass(frozen=True)
class _Failed:
    prefix: str
    reason: str
    permanent: bool


@dataclass(frozen=True)
class _WorkerDone:
    pass


_STOP = None


def list_task(client: Lister, bucket: str, task: Task, keep: KeyFilter) -> Iterator[Chunk]:
    """The pages of one prefix as chunks, in key order."""
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": task.prefix}
    if task.direct:
        kwargs["Delimiter"] = "/"
    if task.start_after:
        kwargs["StartAfter"] = task.start_after
    last_key = task.start_after
    while True:
        page = _call(client, bucket, task.prefix, kwargs)
        counts = ListingCounts()
        entries = []
        for obj in page.get("Contents", ()):
            key, size = obj["Key"], obj.get("Size")
            if keep.keeps(key, size, counts):
                etag = obj.get("ETag")
                entries.append((key, size, etag.strip('"') if etag else None))
            last_key = key
        more = bool(page.get("IsTruncated"))
        yield Chunk(bucket, task.prefix, entries, counts, last_key, not more)
        if not more:
            return
        kwargs["ContinuationToken"] = page["NextContinuationToken"]


def _call(client: Lister, bucket: str, prefix: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    try:
        return client.list_objects_v2(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        raise s3_error(exc, ObjectRef(bucket, prefix)) from exc


def _work(client: Lister, bucket: str, keep: KeyFilter, todo: Any, results: Any, threads: int, stop: Any) -> None:
    """A worker's threads: take prefixes until told to stop, put their chunks (or the failure) on `results`."""

    def loop() -> None:
        while (task := todo.get()) is not _STOP:
            try:
                for chunk in list_task(client, bucket, task, keep):
                    if not _put(results, chunk, stop):
                        return
            except IngestError as exc:
                _put(results, _Failed(task.prefix, exc.reason, exc.permanent), stop)
                return

    pool = [threading.Thread(target=loop, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    _put(results, _WorkerDone(), stop)


@dataclass(frozen=True)
class Parallelism:
    """Worker processes (0: threads of this process only) and calls in flight in each."""

    processes: int
    threads: int = THREADS_PER_PROCESS

    @classmethod
    def for_machine(cls) -> Parallelism:
        """One process per core on Linux (parsing the listing costs CPU; the workers are forked so they share
        the loaded models), threads only elsewhere (macOS advises against fork) or on one core."""
        cores = os.cpu_count() or 1
        return cls(cores if sys.platform == "linux" and cores > 1 else 0)


def stream(worker_client: Lister, bucket: str, todo: Iterable[Task], keep: KeyFilter, *,
           parallelism: Parallelism, state: ListingState | None = None,
           save: Callable[[ListingState], None] | None = None, save_every: float = 2.0) -> Generator[Chunk]:
    """The chunks of every task, as the workers list them (each prefix's chunks in order).

    `worker_client` is the workers' client: each forked process has its own copy (made before the fork and
    not used before it, so no connection is shared), its threads share it.

    A chunk counts as handed over when the next one is asked for; `save` gets the state every
    `save_every` seconds and when the stream stops early (an error, the caller stopping). At most a few
    chunks per worker thread are held at once, whatever the listing's size.
    """
    state = state if state is not None else ListingState()
    tracker = _Tracker(state)
    workers = max(parallelism.processes, 1)
    slots = workers * parallelism.threads
    stop: Any
    if parallelism.processes:
        context = multiprocessing.get_context("fork")
        stop = context.Event()
        jobs: Any = context.Queue(maxsize=slots)
        results: Any = context.Queue(maxsize=2 * slots)
        processes = [context.Process(target=_work, daemon=True,
                                     args=(worker_client, bucket, keep, jobs, results, parallelism.threads, stop))
                     for _ in range(parallelism.processes)]
        gc.freeze()  # the collector in a child would write to every object inherited, copying their pages
        for process in processes:
            process.start()
        gc.unfreeze()
    else:
        stop = threading.Event()
        jobs, results, processes = queue.Queue(maxsize=slots), queue.Queue(maxsize=2 * slots), []
        threading.Thread(target=_work, daemon=True,
                         args=(worker_client, bucket, keep, jobs, results, parallelism.threads, stop)).start()

    feed_failed: list[BaseException] = []

    def feed() -> None:
        try:
            for task in todo:
                if stop.is_set():
                    return
                started = state.start(task)
                if started is None:
                    tracker.skipped(task.prefix)
                    continue
                tracker.dispatch(task.prefix)
                _put(jobs, started, stop)
        except Exception as exc:  # planning failed (the bucket, the credentials): raised where chunks are read
            feed_failed.append(exc)
        finally:
            for _ in range(slots):
                _put(jobs, _STOP, stop)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    finished_workers = 0
    last_save = time.monotonic()
    completed = False
    try:
        while finished_workers < workers:
            if feed_failed:
                raise feed_failed[0]
            message = _get(results, processes)
            if isinstance(message, _WorkerDone):
                finished_workers += 1
                continue
            if isinstance(message, _Failed):
                error = SourceError if message.permanent else TransientError
                raise error(f"listing s3://{bucket}/{message.prefix} failed: {message.reason}")
            yield message
            tracker.handed_over(message)
            if save and time.monotonic() - last_save > save_every:
                save(state)
                last_save = time.monotonic()
        feeder.join()
        if feed_failed:
            raise feed_failed[0]
        completed = True
    finally:
        stop.set()
        if not completed:
            if save:
                save(state)
            for process in processes:
                process.terminate()
            for pipe in (jobs, results) if processes else ():
                pipe.cancel_join_thread()  # what is left in them is dropped: exiting must not wait to flush it
        for process in processes:
            process.join()


def _put(target: Any, item: Any, stop: Any) -> bool:
    """Put, giving up (False) when the stream is stopped: nobody will take it then."""
    while not stop.is_set():
        try:
            target.put(item, timeout=0.2)
            return True
        except queue.Full:
            continue
    return False


def _get(results: Any, processes: list[Any]) -> Any:
    """The next message; a worker process that died (killed, out of memory) stops the listing, not hangs it."""
    while True:
        try:
            return results.get(timeout=1.0)
        except queue.Empty:
            dead = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
            if dead:
                raise TransientError(f"a listing process ended with exit code {dead[0]}") from None


# -- the listing a command runs --------------------------------------------------------------------


@dataclass(frozen=True)
class Listing:
    """What to list: a bucket prefix, the days, and which keys to hand over."""

    bucket: str
    prefix: str = ""
    since: date | None = None
    until: date | None = None
    log_files_only: bool = True
    digests: bool = False
    """With log_files_only: hand over digest files too (KeyFilter.digests)."""
    start_after: str = ""
    planned_above: int = 1000
    """A prefix with no more keys than this is listed as one (a call or two): planning costs calls too."""

    @property
    def plan_id(self) -> str:
        """Names the listing in its state file: a state is only resumed by the same listing."""
        return (f"s3://{self.bucket}/{self.prefix} {self.since or '-'}..{self.until or '-'}"
                f"{'' if self.log_files_only else ' all keys'}{' with digests' if self.digests else ''}")

    @property
    def key_filter(self) -> KeyFilter:
        return KeyFilter(self.since, self.until, self.log_files_only, self.digests)

    def tasks(self, client: Lister) -> Iterator[Task]:
        """The prefixes to list, in key order, after --start-after if given."""
        if self.planned_above:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix, "MaxKeys": self.planned_above}
            if self.start_after:
                kwargs["StartAfter"] = self.start_after
            if not _call(client, self.bucket, self.prefix, kwargs).get("IsTruncated"):
                yield Task(self.prefix, start_after=self.start_after)
                return
        skip = (SKIPPED_SERVICES - {DIGEST_SERVICE} if self.digests else SKIPPED_SERVICES) if self.log_files_only \
            else frozenset()
        for task in tasks(plan(client, self.bucket, self.prefix, self.since, self.until, skip_services=skip)):
            if not self.start_after or self.start_after < task.prefix:
                yield task
            elif self.start_after.startswith(task.prefix):
                yield Task(task.prefix, task.direct, self.start_after)

    def chunks(self, client: Lister, worker_client: Lister, *, parallelism: Parallelism,
               state: ListingState | None = None, save: Callable[[ListingState], None] | None = None,
               ) -> Generator[Chunk]:
        """The chunks kept, planned with `client`, listed with `worker_client` (see `stream`)."""
        state = state if state is not None else ListingState(plan_id=self.plan_id)
        return stream(worker_client, self.bucket, self.tasks(client), self.key_filter, parallelism=parallelism,
                      state=state, save=save)


# -- clients ---------------------------------------------------------------------------------------


@cache
def _listing_session() -> Any:
    """One botocore session for listing clients, created before the workers fork so they share its loaded
    models. It keeps timestamps as text: LastModified is never used, and parsing it was more than half of
    botocore's cost per key (~35 us a key instead of ~80-100 here)."""
    session = botocore.session.get_session()
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=str)
    return boto3.session.Session(botocore_session=session)


def listing_client(region_name: str | None = None) -> Any:
    """An S3 client for ListObjectsV2 (standard retries; a connection per thread in flight)."""
    config = Config(retries={"mode": "standard", "max_attempts": 10}, max_pool_connections=DISCOVERY_THREADS)
    return _listing_session().client("s3", region_name=region_name, config=config)


def state_path(listing: Listing, command: str) -> Path:
    """Where a command keeps a listing's progress by default: the user's cache, named by the listing."""
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    name = hashlib.sha256(listing.plan_id.encode()).hexdigest()[:16]
    return cache_home / "opsworks-trail" / command / f"{name}.json"


def refs_under(client: Lister, bucket: str, prefix: str) -> Iterator[ObjectRef]:
    """Every object under a prefix (digests and all), listed by the trail's prefixes with threads: for a
    command that reads what it lists in the same process (verify, ingest): reading costs far more CPU than
    listing, and processes forked while its reader threads run would inherit their locks."""
    chunks = Listing(bucket, prefix, log_files_only=False).chunks(client, client,
                                                                  parallelism=Parallelism(0, 2 * THREADS_PER_PROCESS))
    with contextlib.closing(chunks):
        for chunk in chunks:
            yield from chunk.refs()
