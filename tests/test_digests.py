"""Digest files: key names, parsing, signature and chain, public keys and their fingerprints."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from workshop.sample_digests import DigestSigner, chained_digests, digest_key, make_digest

from conftest import needs_shared
from core.ingest.digests import (
    BadDigest,
    BadPublicKey,
    Digest,
    chain_problem,
    checked_key,
    fingerprint_of,
    parse_digest,
    parse_digest_key,
    parse_log_key,
    signature_problem,
)
from core.ingest.publickeys import CloudTrailPublicKeys, KeyRing, keys_from_files, keys_from_list

BUCKET = "trail-bucket"
ACCOUNT = "111122223333"
START = datetime(2024, 5, 1, 10, 1, 31, tzinfo=UTC)
# The example of the AWS CLI's list-public-keys documentation: a real CloudTrail key and its fingerprint.
CLI_DOC_KEY = {"PublicKeyList": [{
    "ValidityStartTime": 1453076702.0, "ValidityEndTime": 1455668702.0,
    "Value": "MIIBCgKCAQEAlSS3cl92HDycr/MTj0moOhas8habjrraXw+KzlWF0axSI2tcF+3iJ9BKQAVSKxGwxwu3m0wG3J+kUl1xboEcEPHYo"
             "IYMbgfSw7KGnuDKwkLzsQWhUJ0cIbOHASox1vv/5fNXkrHhGbDCHeVXm804c83nvHUEFYThr1PfyP/8HwrCtR3FX5OANtQCP61C1nJtS"
             "SkC8JSQUOrIP4CuwJjc+4WGDk+BGH5m9iuiAKkipEHWmUl8/P7XpfpWQuk4h8g3pXZOrNXr08lbh4d39svj7UqdhvOXoBISp9t/EXYue"
             "PGEtBdrKD9Dz+VHwyUPtBQvYr9BnkF88qBnaPNhS44rzwIDAQAB",
    "Fingerprint": "7f3f401420072e50a65a141430817ab3"}]}


@pytest.fixture(scope="module")
def signer() -> DigestSigner:
    return DigestSigner()


def signed(signer: DigestSigner, end: datetime = START, files: list[tuple[str, str]] | None = None,
           previous: Any = None, **kwargs: Any) -> Any:
    key = digest_key("", None, ACCOUNT, "us-east-1", end)
    return make_digest(signer, BUCKET, key, ACCOUNT, end - timedelta(hours=1), end,
                       files if files is not None else [("AWSLogs/x.json.gz", "ab" * 32)], previous, **kwargs)


def parsed(d: Any, *, bucket: str = BUCKET, key: str | None = None, body: bytes | None = None,
           metadata: dict[str, str] | None = None) -> Digest:
    return parse_digest(bucket, key or d.key, body if body is not None else d.body,
                        metadata if metadata is not None else d.metadata)


# -- key names ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("key", "expected"), [
    ("AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/111122223333_CloudTrail-Digest_us-east-2_"
     "your-trail-name_us-east-2_20150817T150131Z.json.gz",
     ("", None, "111122223333", "us-east-2", "your-trail-name", "2015-08-17T15:01:31Z", False)),
    ("my trail+logs/AWSLogs/o-abc123/444455556666/CloudTrail-Digest/eu-west-1/2024/05/01/444455556666_"
     "CloudTrail-Digest_eu-west-1_org_trail.v2_us-east-1_20240501T000131Z_backfill.json.gz",
     ("my trail+logs/", "o-abc123", "444455556666", "eu-west-1", "org_trail.v2", "2024-05-01T00:01:31Z", True)),
])
def test_digest_keys_name_their_stream_and_end_time(key: str, expected: tuple[Any, ...]) -> None:
    name = parse_digest_key(key)
    assert name is not None
    assert (name.prefix, name.organization_id, name.account, name.region, name.trail, name.end,
            name.backfill) == expected


@pytest.mark.parametrize("key", [
    "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/01/111122223333_CloudTrail_us-east-1_20240501T1005Z_ab.json.gz",
    "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/05/01/notes.json.gz",
    "AWSLogs/111122223333/CloudTrail-Digest/",
])
def test_other_keys_are_no_digest(key: str) -> None:
    assert parse_digest_key(key) is None


def test_log_keys_name_account_region_and_delivery() -> None:
    name = parse_log_key("p/AWSLogs/o-abc123/111122223333/CloudTrail/us-west-2/2024/05/02/"
                         "111122223333_CloudTrail_us-west-2_20240502T1215Z_Yx9.json.gz")
    assert name is not None
    assert (name.prefix, name.organization_id, name.account, name.region, name.delivered) == (
        "p/", "o-abc123", "111122223333", "us-west-2", "2024-05-02T12:15:00Z")


def test_the_documented_sample_digests_parse(tmp_path: Path) -> None:
    folder = needs_shared("corpus/cloudtrail-docs-examples")
    for path in sorted(folder.glob("*digest.json")):
        fields = json.loads(path.read_text())
        body = gzip.compress(path.read_bytes())
        digest = parse_digest(fields["digestS3Bucket"], fields["digestS3Object"], body, {"signature": "00"})
        assert parse_digest_key(digest.key) is not None
        assert [f.key for f in digest.log_files] == [f["s3Object"] for f in fields["logFiles"]]
        assert digest.previous == (fields["previousDigestS3Bucket"], fields["previousDigestS3Object"])


# -- signature ------------------------------------------------------------------------------------------

def test_a_signed_digest_verifies(signer: DigestSigner) -> None:
    assert signature_problem(parsed(signed(signer)), signer.public_key()) is None


def test_a_forged_signature_is_named(signer: DigestSigner) -> None:
    d = signed(signer)
    forged = dict(d.metadata, signature=DigestSigner().sign(b"something else"))
    problem = signature_problem(parsed(d, metadata=forged), signer.public_key())
    assert problem and "does not verify" in problem


def test_a_digest_signed_by_another_key_is_named(signer: DigestSigner) -> None:
    impostor = DigestSigner()
    claims_real = signed(impostor, fingerprint=signer.fingerprint)
    problem = signature_problem(parsed(claims_real), signer.public_key())
    assert problem and "does not verify" in problem
    own = signed(impostor)
    ring = KeyRing([signer.public_key()])
    problem = signature_problem(parsed(own), ring.key_for(impostor.fingerprint, "us-east-1", "x"))
    assert problem and impostor.fingerprint in problem and "no CloudTrail public key" in problem


def test_an_edited_digest_no_longer_verifies(signer: DigestSigner) -> None:
    d = signed(signer)
    fields = json.loads(gzip.decompress(d.body))
    fields["logFiles"][0]["hashValue"] = "cd" * 32
    edited = gzip.compress(json.dumps(fields, separators=(",", ":")).encode())
    problem = signature_problem(parsed(d, body=edited), signer.public_key())
    assert problem and "does not verify" in problem


def test_a_moved_digest_is_named(signer: DigestSigner) -> None:
    problem = signature_problem(parsed(signed(signer), bucket="copy-bucket"), signer.public_key())
    assert problem and problem.startswith("moved")


def test_a_digest_without_signature_metadata_is_named(signer: DigestSigner) -> None:
    problem = signature_problem(parsed(signed(signer), metadata={}), signer.public_key())
    assert problem and "x-amz-meta-signature" in problem


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(data=st.data())
def test_any_changed_byte_of_a_digest_is_caught(signer: DigestSigner, data: st.DataObject) -> None:
    d = signed(signer, files=[(f"AWSLogs/f{i}.json.gz", f"{i:064x}") for i in range(3)])
    content = bytearray(gzip.decompress(d.body))
    at = data.draw(st.integers(0, len(content) - 1))
    content[at] ^= data.draw(st.integers(1, 255))
    body = gzip.compress(bytes(content))
    try:
        digest = parsed(d, body=body)
    except BadDigest:
        return  # no longer a digest at all: refused, never trusted
    assert signature_problem(digest, signer.public_key()) is not None


@pytest.mark.parametrize(("body", "why"), [
    (b"not gzip", "not gzip"),
    (gzip.compress(b"{nope"), "not JSON"),
    (gzip.compress(b"[1]"), "JSON object"),
    (gzip.compress(b'{"digestStartTime": "x"}'), "no digestEndTime"),
    (gzip.compress(b"{}")[:-6], "truncated"),
])
def test_unreadable_digests_are_refused_with_the_reason(body: bytes, why: str) -> None:
    with pytest.raises(BadDigest, match=why):
        parse_digest(BUCKET, "k", body, {})


# -- chain ----------------------------------------------------------------------------------------------

def test_a_chain_links_each_digest_to_the_previous_signature_and_hash(signer: DigestSigner) -> None:
    first = signed(signer)
    second = signed(signer, START + timedelta(hours=1), previous=first)
    digest = parsed(second)
    assert digest.previous == (BUCKET, first.key)
    assert chain_problem(digest, first.metadata["signature"], first.sha256) is None
    assert "previousDigestSignature" in (chain_problem(digest, "00" * 256, first.sha256) or "")
    assert "previousDigestHashValue" in (chain_problem(digest, first.metadata["signature"], "0" * 64) or "")


@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(deliveries=st.lists(st.tuples(st.sampled_from(["111122223333", "444455556666"]),
                                     st.sampled_from(["us-east-1", "eu-west-1"]), st.integers(0, 72 * 12)),
                           min_size=1, max_size=25, unique=True))
def test_generated_chains_verify_link_by_link(signer: DigestSigner, deliveries: list[tuple[str, str, int]]) -> None:
    logs = {}
    for account, region, five_minutes in deliveries:
        t = START + timedelta(minutes=5 * five_minutes)
        key = (f"AWSLogs/{account}/CloudTrail/{region}/{t:%Y/%m/%d}/"
               f"{account}_CloudTrail_{region}_{t:%Y%m%dT%H%MZ}_{five_minutes}.json.gz")
        logs[key] = gzip.compress(json.dumps({"Records": [{"n": five_minutes}]}).encode())
    digests = chained_digests(signer, BUCKET, logs)
    by_key = {d.key: d for d in digests}
    listed = []
    for d in digests:
        digest = parsed(d)
        assert signature_problem(digest, signer.public_key()) is None
        if digest.previous:
            before = by_key[digest.previous[1]]
            assert chain_problem(digest, before.metadata["signature"], before.sha256) is None
            assert parse_time_of(before.key) < parse_time_of(d.key)
        listed += [f.key for f in digest.log_files]
    assert sorted(listed) == sorted(logs)


def parse_time_of(key: str) -> str:
    name = parse_digest_key(key)
    assert name is not None
    return name.end


# -- public keys ----------------------------------------------------------------------------------------

def test_the_cli_documented_key_has_the_fingerprint_cloudtrail_gives_it(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(CLI_DOC_KEY))
    ring = keys_from_files([path])
    key = ring.key_for("7f3f401420072e50a65a141430817ab3", "us-east-1", "2016-01-20T00:00:00Z")
    assert key is not None and key.valid_from == "2016-01-18T00:25:02Z"


def test_a_key_whose_fingerprint_is_not_its_own_is_refused(signer: DigestSigner) -> None:
    with pytest.raises(BadPublicKey, match="fingerprint"):
        checked_key("0" * 32, signer.der)
    wrong = json.loads(json.dumps(signer.listing()))
    wrong["PublicKeyList"][0]["Fingerprint"] = DigestSigner().fingerprint
    with pytest.raises(BadPublicKey):
        keys_from_list(wrong)


@pytest.mark.parametrize(("text", "why"), [("{", "not JSON"), ('{"Keys": []}', "no PublicKeyList")])
def test_a_file_that_is_no_key_listing_is_refused_by_name(tmp_path: Path, text: str, why: str) -> None:
    path = tmp_path / "keys.json"
    path.write_text(text)
    with pytest.raises(BadPublicKey, match=why):
        keys_from_files([path])


def test_list_public_keys_is_asked_once_and_its_keys_cached(signer: DigestSigner) -> None:
    client = boto3.client("cloudtrail", region_name="eu-west-1")
    stubber = Stubber(client)
    stubber.add_response("list_public_keys", {"PublicKeyList": [{"Value": signer.der,
                                                                 "Fingerprint": signer.fingerprint}]},
                         {"StartTime": ANY, "EndTime": ANY})
    regions: list[str] = []

    def client_for(region: str) -> Any:
        regions.append(region)
        return client

    keys = CloudTrailPublicKeys(client_for)
    with stubber:
        for _ in range(3):
            assert keys.key_for(signer.fingerprint, "eu-west-1", "2024-05-01T10:01:31Z") == signer.public_key()
        stubber.assert_no_pending_responses()
    assert regions == ["eu-west-1"]
    assert fingerprint_of(signer.der) == signer.fingerprint
