"""`opsworks-trail verify --events`: every stored event re-derived from a log file a verified digest lists.

The chain an auditor follows: CloudTrail's signed digest -> the SHA-256 it lists for a log file -> the
records of that file -> the events the table holds. For a range of a trail bucket, per account and Region:
the log files the verified digests list and the ledger says held selected records (plus any file a stored
event names) are read again, hashed, and their records selected and normalized by the pipeline itself
(the function's code, with a sink that writes nothing); the result is compared with the table.

Findings, each naming the event id and the file:
- missing: an event of a verified file that the table lacks;
- altered: a stored event that differs from its record (the fields named; what the store adds itself,
  `ingested_at`, `source_object`, `source_files`, `expires_at`, is not compared), or whose document does
  not decode;
- unbacked: a stored event that no verified file holds: added to the table (its file, verified, does not
  hold it; or it names no file), from a file no digest covers, or from a file deleted since it was read.
And about files: a listed file deleted since it was read (`file-deleted`), one whose content now differs
from the digest's hash (`file-altered`) or that cannot be read (`file-unreadable`).

Stored events are enumerated with Queries on the `by_account` index (per account, per time), never a Scan.
The result of each run is recorded per account and Region (`PROOF#<account>#<region>` / `EVENTS#<time>`),
so the report can say how many of the events it shows were re-derived.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from core.errors import IngestError
from core.event import Event
from core.ingest.catalog import Catalog
from core.ingest.digests import (
    BadDigest,
    Digest,
    DigestName,
    ListedLogFile,
    parse_digest,
    parse_digest_key,
    parse_log_key,
    parse_time,
    signature_problem,
)
from core.ingest.items import DOCUMENT, PACKED, SOURCE_FILES, SOURCE_RANK, event_items, restore
from core.ingest.pipeline import Pipeline
from core.ingest.proof import Fetch, ledger_of
from core.ingest.publickeys import PublicKeys
from core.ingest.selection import Selection
from core.ingest.sinks import CollectingSink, DryRunSink
from core.ingest.store import EventStore, Item
from core.keys import BY_ACCOUNT, EVENTS_PROOF_PREFIX, event_pk, events_proof_sk, key_part, stream_pk
from core.model import BinaryStream, ObjectRef, Status, utc_now

Lister = Callable[[str, str], Iterable[ObjectRef]]
Opener = Callable[[ObjectRef], BinaryStream]

NOT_COMPARED = frozenset({"ingested_at", "source_object"})
"""Fields of the event the store sets itself (when; which of the files holding the event it names)."""
NOT_COMPARED_ATTRIBUTES = frozenset({"expires_at", SOURCE_FILES, SOURCE_RANK, DOCUMENT, PACKED})
"""Item attributes beside the document not compared: the TTL (the function's RETENTION_DAYS), the files
holding the event (checked on their own) and the document (compared decoded, field by field)."""
MAX_RECORDED_IDS = 1000
"""Event ids of findings kept on a run's record (the report counts the rest of the range as proven)."""
MAX_REREAD_BYTES = 2 << 30
_LOWEST, _AFTER = "0", "#\uffff"
_DECODE_FAULTS = (ValueError, TypeError, KeyError, zlib.error, UnicodeDecodeError)


@dataclass(frozen=True)
class EventFinding:
    kind: str
    """missing | altered | unbacked | file-deleted | file-altered | file-unreadable"""
    account: str
    region: str
    event_id: str
    """The event's id; empty for a finding about a file."""
    file: str
    detail: str

    def __str__(self) -> str:
        event = f"event {self.event_id} " if self.event_id else ""
        return f"{self.kind}: {event}({self.file or 'no file'}): {self.detail}"


@dataclass
class StreamProof:
    """One account and Region."""

    account: str
    region: str
    digests: int = 0
    files_listed: int = 0
    files_without_events: int = 0
    """Listed files the ledger says held no selected record: not read again."""
    files_read: int = 0
    events_derived: int = 0
    """Events re-derived from the verified files read."""
    events_stored: int = 0
    """Stored events of the range (the by_account index)."""
    events_proven: int = 0
    """Stored events of the range held by a verified file, equal to what it says."""
    events_outside: int = 0
    """Stored events of the range from files outside the verified period (delivered before its first or after
    its last digest, or to another bucket): not proven by this run, not a finding."""
    first: str = ""
    last: str = ""
    findings: list[EventFinding] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.findings:
            return "FINDINGS"
        return "not provable" if not self.digests else "proven"

    def covers(self, start: str, end: str) -> None:
        self.first = min(self.first or start, start)
        self.last = max(self.last, end)

    def note(self, kind: str, event_id: str, file: str, detail: str) -> None:
        self.findings.append(EventFinding(kind, self.account, self.region, event_id, file, detail))

    def as_dict(self) -> dict[str, Any]:
        return {"account": self.account, "region": self.region, "status": self.status,
                "digests_verified": self.digests, "first": self.first or None, "last": self.last or None,
                "log_files": {"listed": self.files_listed, "read": self.files_read,
                              "without_events": self.files_without_events},
                "events": {"derived": self.events_derived, "stored": self.events_stored,
                           "proven": self.events_proven, "outside": self.events_outside},
                "findings": [{"kind": f.kind, "event_id": f.event_id or None, "file": f.file or None,
                              "detail": f.detail} for f in self.findings]}


@dataclass
class EventProofReport:
    location: str
    since: str | None
    until: str | None
    run_at: str
    streams: dict[tuple[str, str], StreamProof] = field(default_factory=dict)
    recorded: str = ""
    """Why the result was not recorded in the table, when it was not."""

    def stream(self, account: str, region: str) -> StreamProof:
        return self.streams.setdefault((account, region), StreamProof(account, region))

    def sorted(self) -> list[StreamProof]:
        return [self.streams[k] for k in sorted(self.streams)]

    @property
    def findings(self) -> list[EventFinding]:
        return [f for s in self.sorted() for f in s.findings]

    def total(self, name: str) -> int:
        return sum(int(getattr(s, name)) for s in self.streams.values())

    def as_dict(self) -> dict[str, Any]:
        return {"location": self.location, "since": self.since, "until": self.until, "run_at": self.run_at,
                "findings": len(self.findings), "streams": [s.as_dict() for s in self.sorted()]}


class RecordingBucket:
    """The verifier's listing and digest fetches, remembered: the events check needs the bucket's keys (a
    file gone is deleted) and the digests, and reads neither twice."""

    def __init__(self, list_objects: Lister, fetch: Fetch) -> None:
        self._list, self._fetch = list_objects, fetch
        self.present: set[tuple[str | None, str]] = set()
        self.digest_keys: list[tuple[str, str]] = []
        self.fetched: dict[tuple[str | None, str], tuple[bytes, Mapping[str, str]]] = {}

    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectRef]:
        for ref in self._list(bucket, prefix):
            self.present.add((bucket, ref.key))
            if parse_digest_key(ref.key) is not None:
                self.digest_keys.append((bucket, ref.key))
            yield ref

    def fetch(self, ref: ObjectRef) -> tuple[bytes, Mapping[str, str]]:
        key = (ref.bucket, ref.key)
        if key not in self.fetched:
            self.fetched[key] = self._fetch(ref)
        return self.fetched[key]


@dataclass
class EventProof:
    store: EventStore
    open: Opener
    keys: PublicKeys
    selection: Selection
    catalog: Catalog | None = None
    max_decompressed_bytes: int = MAX_REREAD_BYTES
    every_file: bool = False
    """Read every listed file again, not only those the ledger says held selected records: the ledger is in
    the table too, so this is what catches an event deleted together with its file's count."""

    def run(self, bucket: str, bucket_seen: RecordingBucket, prefix: str = "", *, since: datetime | None = None,
            until: datetime | None = None, account: str | None = None, region: str | None = None,
            record: bool = True) -> EventProofReport:
        """Prove the stored events of the range from the digests `bucket_seen` listed (listing it now if the
        verifier did not)."""
        if not bucket_seen.present:
            for _ in bucket_seen.list(bucket, prefix):
                pass
        report = EventProofReport(f"s3://{bucket}/{prefix}", _iso(since), _iso(until), utc_now())
        listed: dict[tuple[str, str], tuple[ListedLogFile, StreamProof]] = {}
        for name, digest in self._trusted(bucket_seen, since, until, account, region):
            stream = report.stream(name.account, name.region)
            stream.digests += 1
            stream.covers(digest.start, digest.end)
            for f in digest.log_files:
                if (f.bucket, f.key) not in listed:
                    listed[(f.bucket, f.key)] = (f, stream)
                    stream.files_listed += 1
        if not listed:
            return report
        stored = self._stored_events(report, since, until)
        derived, files = self._reread(bucket, bucket_seen, listed, stored, report)
        self._compare(derived, stored, files, report)
        if record:
            self.record(report)
        return report

    # -- the digests the verifier trusts -----------------------------------------------------------------

    def _trusted(self, bucket_seen: RecordingBucket, since: datetime | None, until: datetime | None,
                 account: str | None, region: str | None) -> Iterator[tuple[DigestName, Digest]]:
        """Digests of the range (ending in [since, until + 1 h], as `verify` selects them) that CloudTrail
        signed; the chain and the rest are `verify`'s findings."""
        for bucket, key in sorted(bucket_seen.digest_keys):
            name = parse_digest_key(key)
            if name is None or (account and name.account != account) or (region and name.region != region):
                continue
            end = parse_time(name.end)
            if (since and end < since) or (until and end > until + timedelta(hours=1)):
                continue
            try:
                body, metadata = bucket_seen.fetch(ObjectRef(bucket, key))
                digest = parse_digest(bucket, key, body, metadata)
            except (BadDigest, IngestError):
                continue  # verify names it (unreadable, gone); an untrusted list proves nothing
            if signature_problem(digest, self.keys.key_for(digest.fingerprint, name.region, digest.end)) is None:
                yield name, digest

    # -- the table -----------------------------------------------------------------------------------------

    def _stored_events(self, report: EventProofReport, since: datetime | None,
                       until: datetime | None) -> dict[str, _Stored]:
        """The stored events of the range, by pk: a Query on by_account per account (never a Scan), each
        event routed to its Region's stream; events of Regions without digests are not provable here."""
        found: dict[str, _Stored] = {}
        for account in sorted({a for a, _ in report.streams}):
            regions = sorted(r for a, r in report.streams if a == account)
            items = self.store.query(
                IndexName=BY_ACCOUNT.name, KeyConditionExpression="#k = :k AND #s BETWEEN :lo AND :hi",
                ExpressionAttributeNames={"#k": BY_ACCOUNT.key, "#s": BY_ACCOUNT.sort_key},
                ExpressionAttributeValues={":k": {"S": key_part(account)}, ":lo": {"S": _iso(since) or _LOWEST},
                                           ":hi": {"S": (_iso(until) or "9999") + _AFTER}})
            for item in items:
                entry = _Stored.of(item)
                where = entry.event.get("region") if entry.event is not None else regions[0]
                stream = report.streams.get((account, str(where)))
                if stream is None:
                    continue
                entry.stream = stream
                stream.events_stored += 1
                found[str(item["pk"])] = entry
        return found

    # -- the files -------------------------------------------------------------------------------------------

    def _reread(self, bucket: str, bucket_seen: RecordingBucket,
                listed: dict[tuple[str, str], tuple[ListedLogFile, StreamProof]], stored: dict[str, _Stored],
                report: EventProofReport) -> tuple[dict[str, list[tuple[str, Event, StreamProof]]], _Files]:
        """Read again the listed files that held selected records (the ledger says so, or a stored event
        names them, or the ledger has no count), each checked against the digest's hash."""
        ledger = ledger_of(self.store, (f for f, _ in listed.values()))
        named = {uri for entry in stored.values() for uri in entry.files}
        pipeline = Pipeline(open=self.open, selection=self.selection, sink=CollectingSink(DryRunSink(True)),
                            max_decompressed_bytes=self.max_decompressed_bytes, catalog=self.catalog)
        derived: dict[str, list[tuple[str, Event, StreamProof]]] = {}
        files = _Files()
        for (file_bucket, key), (f, stream) in sorted(listed.items()):
            uri = f"s3://{file_bucket}/{key}"
            files.listed[uri] = stream
            entry = ledger.get((file_bucket, key))
            held = entry is None or entry.get("status") != "ingested" or entry.get("matched") is None \
                or int(entry["matched"]) > 0
            if not held and uri not in named and not self.every_file:
                stream.files_without_events += 1
                continue
            if file_bucket == bucket and (bucket, key) not in bucket_seen.present:
                files.deleted.add(uri)
                stream.note("file-deleted", "", uri, "listed by a verified digest, read at "
                            f"{entry.get('at') if entry else 'no recorded time'}, and no longer in the bucket")
                continue
            outcome = pipeline.ingest(ObjectRef(file_bucket, key))
            if outcome.sha256 is None:
                files.bad.add(uri)
                stream.note("file-unreadable", "", uri, outcome.reason or str(outcome.status))
                continue
            if outcome.sha256 != f.sha256.lower():
                files.bad.add(uri)
                stream.note("file-altered", "", uri, f"its content now has SHA-256 {outcome.sha256}, the "
                            f"verified digest lists {f.sha256}")
                continue
            if outcome.status is Status.FAILED:
                stream.note("file-unreadable", "", uri, f"part of it cannot be made events: {outcome.reason}")
            files.read.add(uri)
            stream.files_read += 1
            for event in outcome.items:
                derived.setdefault(event_pk(event["event_id"]), []).append((uri, event, stream))
        return derived, files

    # -- the comparison -----------------------------------------------------------------------------------

    def _compare(self, derived: dict[str, list[tuple[str, Event, StreamProof]]], stored: dict[str, _Stored],
                 files: _Files, report: EventProofReport) -> None:
        elsewhere = self.store.get_events(pk for pk in derived if pk not in stored)  # outside the time range
        for pk, holders in sorted(derived.items()):
            uri, event, stream = holders[0]
            stream.events_derived += 1
            entry = stored.get(pk) or (_Stored.of(elsewhere[pk]) if pk in elsewhere else None)
            if entry is None:
                held_by = ", ".join(sorted({u for u, _, _ in holders}))
                stream.note("missing", event["event_id"], uri, f"in {held_by}, not in the table")
                continue
            differs = differing_fields(event, entry)
            if differs:
                stream.note("altered", event["event_id"], uri, "the stored event differs from its record in: "
                            + ", ".join(differs))
            elif pk in stored:
                stream.events_proven += 1
        for pk, entry in sorted(stored.items()):
            if pk in derived or entry.stream is None:
                continue
            if entry.event is None:
                entry.stream.note("altered", entry.event_id, entry.files[0] if entry.files else "",
                                  f"its stored document does not decode: {entry.error}")
                continue
            problem = files.unbacked(entry)
            if problem is None:
                entry.stream.events_outside += 1
            else:
                uri, detail = problem
                entry.stream.note("unbacked", entry.event_id, uri, detail)

    # -- the record ---------------------------------------------------------------------------------------

    def record(self, report: EventProofReport) -> None:
        """One item per account and Region and run, in the account-Region's proof partition (written once a
        run: no hot key): what the report reads back."""
        for s in report.sorted():
            ids = sorted({f.event_id for f in s.findings if f.event_id})
            self.store.put_item({
                "pk": stream_pk(s.account, s.region), "sk": events_proof_sk(report.run_at),
                "account": s.account, "region": s.region, "run_at": report.run_at, "status": s.status,
                "since": report.since, "until": report.until or report.run_at, "first": s.first or None,
                "last": s.last or None, "digests": s.digests, "files_listed": s.files_listed,
                "files_read": s.files_read, "events_derived": s.events_derived, "events_stored": s.events_stored,
                "events_proven": s.events_proven, "events_outside": s.events_outside,
                "findings": len(s.findings), "finding_event_ids": ids[:MAX_RECORDED_IDS],
                "finding_event_ids_complete": len(ids) <= MAX_RECORDED_IDS})


@dataclass
class _Stored:
    """A stored event item, its event decoded (None when the document does not decode), the files it names."""

    item: Item
    event: Event | None
    error: str
    files: list[str]
    stream: StreamProof | None = None

    @property
    def event_id(self) -> str:
        return str(self.item.get("event_id", str(self.item.get("pk", "")).removeprefix("EVENT#")))

    @classmethod
    def of(cls, item: Item) -> _Stored:
        named = sorted(str(uri) for uri in item.get(SOURCE_FILES) or ())
        try:
            event: Event | None = restore(item)
        except _DECODE_FAULTS as exc:
            return cls(item, None, f"{type(exc).__name__}: {exc}", named)
        source = event.get("source_object") if event else None
        if isinstance(source, dict) and source.get("bucket") and source.get("key"):
            first = f"s3://{source['bucket']}/{source['key']}"
            named = [first, *(uri for uri in named if uri != first)]
        return cls(item, event, "", named)


@dataclass
class _Files:
    listed: dict[str, StreamProof] = field(default_factory=dict)
    read: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)
    bad: set[str] = field(default_factory=set)

    def unbacked(self, entry: _Stored) -> tuple[str, str] | None:
        """Why a stored event no verified file holds is unbacked (the file to name, the reason); None when
        its files lie outside what this run verified (another range's, not yet digested)."""
        if not entry.files:
            return "", "added to the table: no verified file holds it, and it names no log file"
        for uri in entry.files:
            if uri in self.deleted:
                return uri, "its log file was deleted since it was read, and no present verified file holds it"
        for uri in entry.files:
            if uri in self.bad:
                return uri, "its log file no longer matches the verified digest, and no verified file holds it"
        for uri in entry.files:
            if uri in self.read:
                return uri, "added to the table: its log file, verified, does not hold it"
        assert entry.stream is not None
        for uri in entry.files:
            name = parse_log_key(uri.split("/", 3)[-1]) if uri.startswith("s3://") else None
            if name is not None and entry.stream.first <= name.delivered <= entry.stream.last:
                return uri, "from a file no verified digest lists (delivered in the verified period)"
        if all(parse_log_key(uri.split("/", 3)[-1]) is None for uri in entry.files):
            return entry.files[0], "added to the table: it names no CloudTrail log file"
        return None


def differing_fields(expected: Event, stored: _Stored) -> list[str]:
    """The fields in which a stored event differs from what the store would write for its record: the item's
    key and index attributes, then the document's fields (one level into maps: `actor.name`)."""
    if stored.event is None:
        return [f"document (does not decode: {stored.error})"]
    main = event_items(expected)[0]
    names = (set(main) | set(stored.item)) - NOT_COMPARED_ATTRIBUTES
    differs = [name for name in sorted(names) if main.get(name) != stored.item.get(name)]
    want, have = restore(main), stored.event
    for name in sorted((set(want) | set(have)) - NOT_COMPARED):
        a, b = want.get(name), have.get(name)  # type: ignore[misc]
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            differs += [f"{name}.{part}" for part in sorted(set(a) | set(b)) if a.get(part) != b.get(part)]
        else:
            differs.append(name)
    return differs


# -- what the report reads back ------------------------------------------------------------------------------

@dataclass(frozen=True)
class EventsProven:
    """The latest `verify --events` run of one account and Region, as recorded."""

    account: str
    region: str
    run_at: str
    since: str | None
    until: str
    status: str
    events_proven: int
    findings: int
    finding_event_ids: frozenset[str]
    complete: bool

    def covers(self, event: Event) -> bool:
        """The run re-derived this event: in its range, of its account and Region, not among its findings."""
        return (event.get("account_id") == self.account and event.get("region") == self.region
                and (self.since is None or event["event_time"] >= self.since)
                and event["event_time"] <= self.until and self.complete
                and event["event_id"] not in self.finding_event_ids)


def latest_event_proofs(store: EventStore, streams: Iterable[tuple[str, str]]) -> dict[tuple[str, str], EventsProven]:
    """The latest recorded run per account and Region (one Query each, newest first, one item)."""
    found: dict[tuple[str, str], EventsProven] = {}
    for account, region in streams:
        items = store.query(KeyConditionExpression="pk = :p AND begins_with(sk, :e)", ScanIndexForward=False,
                            Limit=1, ExpressionAttributeValues={":p": {"S": stream_pk(account, region)},
                                                                ":e": {"S": EVENTS_PROOF_PREFIX}})
        for item in items:
            found[(account, region)] = EventsProven(
                account, region, str(item["run_at"]), item.get("since"), str(item["until"]), str(item["status"]),
                int(item.get("events_proven", 0)), int(item.get("findings", 0)),
                frozenset(str(i) for i in item.get("finding_event_ids") or ()),
                bool(item.get("finding_event_ids_complete", True)))
            break
    return found


def _iso(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


@dataclass(frozen=True)
class EventsShown:
    """Of the events a report shows for one account and Region, how many the latest `verify --events` run
    re-derived from verified log files."""

    account: str
    region: str
    shown: int
    re_derived: int
    verified_at: str | None
    """When that run was; None when none has run over this account and Region."""
    status: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"account": self.account, "region": self.region, "shown": self.shown, "re_derived": self.re_derived,
                "verified_at": self.verified_at, "status": self.status}


def events_re_derived(events: Iterable[Event], proofs: Mapping[tuple[str, str], EventsProven]) -> list[EventsShown]:
    """Per account and Region of the shown events: how many lie in the range of its latest recorded run and
    are not among that run's findings."""
    shown: dict[tuple[str, str], list[int]] = {}
    for event in events:
        where = (str(event.get("account_id", "")), str(event.get("region", "")))
        counts = shown.setdefault(where, [0, 0])
        counts[0] += 1
        proof = proofs.get(where)
        counts[1] += bool(proof and proof.covers(event))
    return [EventsShown(account, region, n, derived, proofs[(account, region)].run_at if (account, region) in proofs
                        else None, proofs[(account, region)].status if (account, region) in proofs else None)
            for (account, region), (n, derived) in sorted(shown.items())]
