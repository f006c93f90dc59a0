"""Digest files in the function: verified, chained, compared with the ledger, recorded, in any order.

When a digest arrives (live, or handed over by a backfill) its signature is checked against CloudTrail's
key, its link to the previous digest of its chain, and each log file it lists against the ledger (the
SHA-256 the pipeline recorded when it read the file). A bad signature, a broken chain or a hash that
differs is an integrity finding: recorded on the digest's item, returned in the Outcome (the handler
counts it as IntegrityFindings, which an alarm watches), never skipped.

Nothing depends on the order things arrive (a backfill hands over digests and log files in any order):
- a listed log file not read yet is *awaited*: its place is kept on the digest's record (`awaiting`) and a
  marker on the file's state item (EventStore.await_file in core.ingest.store, one atomic conditional step). The file's
  ingest takes the markers in the same atomic write as its ledger entry and settles each verdict
  (`settle_awaiting`): a conditional update on the record, so each place is settled exactly once, by
  whichever side came second, whatever the concurrency;
- a digest whose previous digest is not recorded yet leaves its claim (a link item) where the previous
  one finds it; each side writes its own item first and reads the other's after, so one of them (or both:
  the verdict is written once, conditionally) judges the link.
What is still awaited an hour on is a gap (`opsworks-trail verify` says missing; the live alarm counts it
as MissingLogFiles when the next digest of the chain arrives).

Items (keys derived from the digest's bucket and key, so a redelivery overwrites nothing; the formats are
in core.keys): a digest record per digest and the chain links, in its account-Region's partition; a stream
head there and the proof streams registry, written once per account-Region (no key is written by every
digest).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from boto3.dynamodb.types import Binary
from botocore.exceptions import BotoCoreError, ClientError

from core.errors import SourceError
from core.ingest.digests import (
    BadDigest,
    Digest,
    DigestName,
    ListedLogFile,
    is_digest_key,
    link_problem,
    parse_digest,
    parse_digest_key,
    parse_time,
    signature_problem,
)
from core.ingest.publickeys import PublicKeys
from core.ingest.sources import s3_error
from core.ingest.store import EventStore, Item
from core.keys import (
    AWAITING,
    digest_sk,
    file_key,
    link_key,
    stream_head_key,
    stream_pk,
    stream_registry_key,
)
from core.model import ObjectRef, Outcome, Status, utc_now

GRACE = timedelta(minutes=30)
"""How long after a digest was recorded its awaited files may still arrive before the live alarm counts them."""

Fetch = Callable[[ObjectRef], tuple[bytes, Mapping[str, str]]]
"""An object's bytes and its user metadata (where S3 keeps a digest's signature)."""

PROVEN, ALTERED, UNHASHED, AWAITED = "proven", "altered", "unhashed", "awaited"


def digest_record_key(bucket: str, key: str, name: DigestName) -> Item:
    return {"pk": stream_pk(name.account, name.region), "sk": digest_sk(name.end, bucket, key)}


def digest_id(bucket: str, key: str) -> str:
    """A short name of a digest, for its marker on a file state item (an attribute name in a map)."""
    return "d" + hashlib.sha256(f"{bucket}/{key}".encode()).hexdigest()[:24]


def file_state_key(bucket: str, key: str) -> Item:
    """The file state item the pipeline writes (core.ingest.store): the ledger entry of a log file."""
    return dict(file_key(bucket, key))


def pack_files(files: Iterable[ListedLogFile]) -> Binary:
    """A digest's list of log files, compressed: an hour of a busy trail lists hundreds."""
    return Binary(zlib.compress(json.dumps([[f.bucket, f.key, f.sha256] for f in files]).encode(), 6))


def unpack_files(value: Any) -> list[ListedLogFile]:
    return [ListedLogFile(*entry) for entry in json.loads(zlib.decompress(bytes(value)))]


def ledger_of(store: EventStore, files: Iterable[ListedLogFile]) -> dict[tuple[str, str], Item]:
    """The ledger entries of these files that exist (ingested or failed), by (bucket, key)."""
    keys = [file_state_key(f.bucket, f.key) for f in files]
    return {(str(item["bucket"]), str(item["key"])): item for item in store.get_items(keys) if "bucket" in item}


def file_verdict(listed_sha256: str, entry: Mapping[str, Any] | None) -> str:
    """A listed file against its ledger entry: proven, altered, unhashed (read before the ledger kept
    hashes) or awaited (not read yet, or its ingest failed)."""
    if entry is None or entry.get("status") != "ingested":
        return AWAITED
    if not entry.get("sha256"):
        return UNHASHED
    return PROVEN if str(entry["sha256"]).lower() == listed_sha256.lower() else ALTERED


def altered_finding(bucket: str, key: str, digest_key: str) -> str:
    return f"s3://{bucket}/{key}: altered: its SHA-256 is not the one the digest {digest_key} lists"


def settle(store: EventStore, record_key: Item, place: int, verdict: str, finding: str = "",
           altered_key: str = "") -> bool:
    """One awaited file's verdict onto its digest's record, exactly once: conditional on its place being
    still awaited, so the file's ingest and the digest (or two redeliveries) never count it twice."""
    names = {"#aw": AWAITING}
    values: Item = {":i": {place}, ":iv": place}
    if verdict == ALTERED:
        names.update({"#al": "altered", "#f": "findings"})
        values.update({":k": [altered_key], ":f": [finding], ":nil": []})
        expression = ("DELETE #aw :i SET #al = list_append(if_not_exists(#al, :nil), :k), "
                      "#f = list_append(if_not_exists(#f, :nil), :f)")
    else:
        names["#n"] = verdict
        values[":one"] = 1
        expression = "DELETE #aw :i ADD #n :one"
    return store.update_if(record_key, expression, "contains(#aw, :iv)", names=names, values=values)


def settle_awaiting(store: EventStore, awaiting: Mapping[str, Item], outcome: Outcome) -> None:
    """A log file just recorded as ingested settles the digests that listed it before it was read (the
    markers its ledger write took); an altered file is a finding of this file's Outcome too."""
    for marker in awaiting.values():
        ref = outcome.ref
        verdict = file_verdict(str(marker["sha256"]), {"status": "ingested", "sha256": outcome.sha256})
        finding = altered_finding(str(ref.bucket), ref.key, str(marker.get("digest", "")))
        record_key = {"pk": marker["pk"], "sk": marker["sk"]}
        if settle(store, record_key, int(marker["i"]), verdict, finding, ref.key) and verdict == ALTERED:
            outcome.findings.append(finding)


class S3Objects:
    """Digest objects with their metadata, from S3 through a client the caller created."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def fetch(self, ref: ObjectRef) -> tuple[bytes, Mapping[str, str]]:
        try:
            response = self.client.get_object(Bucket=ref.bucket, Key=ref.key)
            return response["Body"].read(), response.get("Metadata", {})
        except (ClientError, BotoCoreError) as exc:
            raise s3_error(exc, ref) from exc


@dataclass
class DigestCheck:
    """Digests checked as they arrive (the pipeline's DigestFiles; NoDigestCheck is the other)."""

    fetch: Fetch
    keys: PublicKeys
    store: EventStore
    grace: timedelta = GRACE

    def claims(self, key: str) -> bool:
        return is_digest_key(key)

    def check(self, ref: ObjectRef) -> Outcome:
        name = parse_digest_key(ref.key)
        if name is None or ref.bucket is None:
            raise SourceError(f"{ref.uri}: not a CloudTrail digest in a bucket")
        record_key = digest_record_key(ref.bucket, ref.key, name)
        known = self.store.get_item(record_key)
        if known is not None:  # a redelivery: finish what an interrupted check may have left, store nothing new
            outcome = Outcome(ref, Status.SKIPPED, f"digest already verified at {known.get('recorded_at')}")
            self._follow_up(known, outcome)
            return outcome
        body, metadata = self.fetch(ref)
        outcome = Outcome(ref, Status.INGESTED)
        record: Item = dict(record_key, bucket=ref.bucket, key=ref.key, trail=name.trail, prefix=name.prefix,
                            account=name.account, region=name.region, end=name.end, backfill=name.backfill,
                            recorded_at=utc_now(), listed=0, proven=0, unhashed=0, altered=[])
        if name.organization_id:
            record["organization_id"] = name.organization_id
        trusted = False
        try:
            digest = parse_digest(ref.bucket, ref.key, body, metadata)
        except BadDigest as exc:
            outcome.findings.append(f"unreadable digest: {exc}")
        else:
            trusted = self._verify(digest, name, record, outcome)
        record["status"] = "verified" if trusted else "failed"
        record["findings"] = list(outcome.findings)
        found = self.store.put_new(record)
        if found is not None:  # another invocation recorded it first: its verdict stands
            return Outcome(ref, Status.SKIPPED, f"digest already verified at {found.get('recorded_at')}")
        self.store.register_once(stream_head_key(name.account, name.region),
                                 stream_registry_key(name.account, name.region))
        awaited = self._follow_up(record, outcome)
        outcome.reason = (f"digest: {len(outcome.findings)} integrity finding(s); first: {outcome.findings[0]}"
                          if outcome.findings else
                          f"digest verified: {record['listed']} log file(s) listed, {awaited} not ingested yet")
        return outcome

    def _verify(self, digest: Digest, name: DigestName, record: Item, outcome: Outcome) -> bool:
        """Check the signature and the files read so far; True when CloudTrail signed the digest."""
        record.update(start=digest.start, signature=digest.signature, content_sha256=digest.content_sha256,
                      listed=len(digest.log_files), files=pack_files(digest.log_files))
        problem = signature_problem(digest, self.keys.key_for(digest.fingerprint, name.region, digest.end))
        if problem:
            outcome.findings.append(f"{digest.uri}: {problem}")
            return False  # an untrusted list proves nothing about the files it names
        if digest.previous and not name.backfill:
            record.update(previous_bucket=digest.previous[0], previous_key=digest.previous[1],
                          previous_signature=digest.previous_signature or "",
                          previous_hash=digest.previous_hash or "")
        ledger = ledger_of(self.store, digest.log_files)
        awaiting: set[int] = set()
        for place, f in enumerate(digest.log_files):
            verdict = file_verdict(f.sha256, ledger.get((f.bucket, f.key)))
            if verdict == AWAITED:
                awaiting.add(place)
            elif verdict == ALTERED:
                record["altered"].append(f.key)
                outcome.findings.append(altered_finding(f.bucket, f.key, digest.key))
            else:
                record[verdict] += 1
        if awaiting:
            record[AWAITING] = awaiting
        return True

    def _follow_up(self, record: Item, outcome: Outcome) -> int:
        """After the record is written: mark the awaited files, judge the chain links both ways. Each step
        is idempotent, so a redelivery completes an interrupted one. Returns the files still awaited."""
        if record.get("status") != "verified":
            return 0
        still = self._await_files(record, outcome)
        self._link_back(record, outcome)
        self._link_forward(record, outcome)
        return still

    def _await_files(self, record: Item, outcome: Outcome) -> int:
        places = sorted(int(p) for p in record.get(AWAITING) or ())
        if not places:
            return 0
        files = unpack_files(record["files"])
        record_key = {"pk": record["pk"], "sk": record["sk"]}
        name = digest_id(str(record["bucket"]), str(record["key"]))
        still = 0
        for place in places:
            f = files[place]
            marker = dict(record_key, i=place, sha256=f.sha256, digest=record["key"])
            entry = self.store.await_file(f.bucket, f.key, name, marker)
            if entry is None:
                still += 1
                continue
            verdict = file_verdict(f.sha256, entry)  # read meanwhile: settled here, once
            finding = altered_finding(f.bucket, f.key, str(record["key"]))
            if settle(self.store, record_key, place, verdict, finding, f.key) and verdict == ALTERED:
                outcome.findings.append(finding)
        return still

    def _link_back(self, record: Item, outcome: Outcome) -> None:
        """This digest's claim about the previous one: left where the previous finds it, then judged here
        if the previous is recorded (and its still-awaited files counted for the live alarm)."""
        bucket, key = str(record.get("previous_bucket", "")), str(record.get("previous_key", ""))
        previous_name = parse_digest_key(key) if key else None
        if previous_name is None or "chain" in record or bucket != record["bucket"]:
            return  # first of a chain, judged already, or in another bucket (its own check covers it)
        link = dict(link_key(previous_name.account, previous_name.region, bucket, key), next_pk=record["pk"],
                    next_sk=record["sk"], next_key=record["key"], previous_signature=record["previous_signature"],
                    previous_hash=record["previous_hash"])
        self.store.put_new(link)
        previous = self.store.get_item(digest_record_key(bucket, key, previous_name))
        if previous is None or previous.get("status") != "verified":
            return
        self._judge(link, previous, outcome)
        awaited = previous.get(AWAITING) or ()
        recorded = parse_time(str(previous["recorded_at"]))
        if awaited and datetime.now(UTC) - recorded >= self.grace:
            outcome.missing_files += len(awaited)

    def _link_forward(self, record: Item, outcome: Outcome) -> None:
        """The next digest's claim about this one, if it came first."""
        name = parse_digest_key(str(record["key"]))
        if name is None:
            return
        link = self.store.get_item(link_key(name.account, name.region, str(record["bucket"]), str(record["key"])))
        if link is None:
            return
        following = self.store.get_item({"pk": link["next_pk"], "sk": link["next_sk"]})
        if following is not None and "chain" not in following:
            self._judge(link, record, outcome)

    def _judge(self, link: Item, previous: Item, outcome: Outcome) -> None:
        """The link's verdict on the next digest's record, written once whoever judges it."""
        problem = link_problem(str(link["previous_signature"]), str(link["previous_hash"]),
                               str(previous.get("signature", "")), str(previous.get("content_sha256", "")))
        finding = f"s3://{previous['bucket']}/{link['next_key']}: {problem} ({previous['key']})" if problem else ""
        expression = "SET #c = :c" + (", #f = list_append(if_not_exists(#f, :nil), :f)" if problem else "")
        values: Item = {":c": "broken" if problem else "ok"}
        names = {"#c": "chain"}
        if problem:
            values.update({":f": [finding], ":nil": []})
            names["#f"] = "findings"
        written = self.store.update_if({"pk": link["next_pk"], "sk": link["next_sk"]}, expression,
                                       "attribute_exists(pk) AND attribute_not_exists(#c)", names=names,
                                       values=values)
        if written and problem:
            outcome.findings.append(finding)
