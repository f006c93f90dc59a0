"""The built function package, run as Lambda runs it, ends every input as the source tree ends it (issue 11).

The package is made by make/lambda's recipe (the target `sam build` runs) for this machine's architecture,
and run in a fresh Python 3.12 holding only boto3 and its dependencies, its folder read-only and
PYTHONDONTWRITEBYTECODE=1, against a moto server (S3) and DynamoDB Local, with tracing on. The same
runner runs the source tree in the development environment against a table of its own. Inputs: every
events/ sample, and trail files taking each of the reader's paths (CloudTrail's compact layout,
pretty-printed, spaced, keys in another order, a nested look-alike record; gzip and plain; with and
without OpsWorks records) plus generated ones mixing those traits.
"""

from __future__ import annotations

import gzip
import json
import random
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeDeserializer
from workshop.invoke import SAMPLE_BUCKET, function_spec
from workshop.synthetic import OPSWORKS_SOURCES, SampleManifest, upload_to_s3
from workshop.template import load_template, table_definition_from_template

from cli.dynamodb_local import client_kwargs
from conftest import EVENTS_DIR, REPO
from core.ingest.triggers import encode_key
from core.model import utc_now
from lambda_package import lambda_environment
from lambda_requirements import RUNTIME_PROVIDED, canonical
from package_plugin import Run, imports_of, run_handler

pytestmark = pytest.mark.dynamodb_local

FUNCTION = function_spec(load_template())
SAMPLES = sorted(p.name for p in EVENTS_DIR.glob("*.json"))
READER_BUCKET = "opsworks-trail-reader-paths"
Record = dict[str, Any]


# -- trail files for each reader path -----------------------------------------------------------------------


def compact(records: list[Record]) -> str:
    """CloudTrail's own layout: the reader's fast path."""
    return json.dumps({"Records": records}, separators=(",", ":"))


def pretty(records: list[Record]) -> str:
    return json.dumps({"Records": records}, indent=2)


def spaced(records: list[Record]) -> str:
    """One line, with Python's default `, ` and `: ` separators."""
    return json.dumps({"Records": records})


def reordered(records: list[Record]) -> str:
    """Compact, each record's keys in reverse order (eventSource before eventVersion, ...)."""
    return compact([dict(reversed(list(record.items()))) for record in records])


def nested(records: list[Record]) -> str:
    """Compact, with a record holding a record-like object in its parameters: never a record of its own."""
    host = dict(records[0], eventSource="ec2.amazonaws.com", eventName="CreateTags",
                eventID=str(uuid.uuid5(uuid.NAMESPACE_URL, f"nested/{records[0]['eventID']}")))
    host["requestParameters"] = {"tagSet": {"items": [{"eventVersion": "1.09", "eventSource": OPSWORKS_SOURCES[0],
                                                        "eventName": "DeleteStack", "eventID": str(uuid.uuid4())}]}}
    middle = len(records) // 2
    return compact([*records[:middle], host, *records[middle:]])


LAYOUTS: dict[str, Callable[[list[Record]], str]] = {
    "compact": compact, "pretty": pretty, "spaced": spaced, "reordered": reordered, "nested": nested}
NAMED_FILES = [f"{layout}-{packing}-{content}" for layout in LAYOUTS for packing in ("gzip", "plain")
               for content in ("opsworks", "none")]
GENERATED_FILES = [f"generated-{i}" for i in range(8)]


@dataclass(frozen=True)
class Pools:
    opsworks: list[Record]
    lookalikes: list[Record]
    """Other services' records naming OpsWorks somewhere: never selected."""
    others: list[Record]


@dataclass(frozen=True)
class TrailFile:
    label: str
    key: str
    body: bytes
    expected: frozenset[str]
    """The eventIDs of its OpsWorks records: what must be stored from it."""


def pools_of(root: Path) -> Pools:
    opsworks, lookalikes, others = [], [], []
    for path in sorted(root.rglob("*_CloudTrail_*.json.gz")):
        for record in json.loads(gzip.decompress(path.read_bytes()))["Records"]:
            if record.get("eventSource") in OPSWORKS_SOURCES:
                opsworks.append(record)
            elif "opsworks" in json.dumps(record):
                lookalikes.append(record)
            else:
                others.append(record)
    assert opsworks and lookalikes and others
    return Pools(opsworks, lookalikes, others)


def trail_file(label: str, pools: Pools) -> TrailFile:
    """A named file (layout-packing-content) or a generated one (random layout traits, seeded by its label)."""
    rng = random.Random(label)
    if label.startswith("generated-"):
        separators = rng.choice([(",", ":"), (", ", ": "), (",", ": "), (", ", ":")])
        indent = rng.choice([None, None, 1, 4, "\t"])
        shuffle_keys, gzipped = rng.random() < 0.5, rng.random() < 0.5
        opsworks = rng.randint(0, 3)
        look_alike = rng.random() < 0.4

        def layout(records: list[Record]) -> str:
            if shuffle_keys:
                records = [dict(rng.sample(list(r.items()), len(r))) for r in records]
            text = json.dumps({"Records": records}, separators=separators, indent=indent)
            return nested(records) if look_alike and indent is None and separators == (",", ":") else text
    else:
        name, packing, content = label.split("-")
        layout, gzipped, opsworks = LAYOUTS[name], packing == "gzip", 3 if content == "opsworks" else 0
    records = [*rng.sample(pools.others, 12), *rng.sample(pools.lookalikes, 2), *rng.sample(pools.opsworks, opsworks)]
    rng.shuffle(records)
    records = [dict(r, eventID=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{label}/{r['eventID']}"))) for r in records]
    body = layout(records).encode()
    key = (f"AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/09/111122223333_CloudTrail_us-east-1_"
           f"20240509T1200Z_{label}.json" + (".gz" if gzipped else ""))
    expected = frozenset(r["eventID"] for r in records if r["eventSource"] in OPSWORKS_SOURCES)
    return TrailFile(label, key, gzip.compress(body, mtime=0) if gzipped else body, expected)


# -- one run of each side over every input -------------------------------------------------------------------


@dataclass
class Side:
    run: Run
    items: list[dict[str, Any]]
    traces: list[str]

    def result(self, name: str) -> dict[str, Any]:
        return self.run.by_name()[name]

    def task(self, label: str) -> dict[str, Any]:
        answer = self.result("reader-paths")
        assert "response" in answer, f"the reader-paths invocation failed: {answer}\n{self.run.output[-3000:]}"
        results = {result["taskId"]: result for result in answer["response"]["results"]}
        assert label in results, f"no result for task {label}: {answer}"
        return results[label]

    def stored_ids(self, key: str) -> set[str]:
        from core.ingest.items import restore

        events = [restore(item) for item in self.items if item["sk"] == "EVENT"]
        return {event["event_id"] for event in events if event.get("source_object", {}).get("key") == key}


@dataclass
class World:
    started: str
    files: dict[str, TrailFile]
    package: Side
    tree: Side


@pytest.fixture(scope="module")
def world(lambda_package: Path, lambda_runtime: Path, moto_endpoint: str, dynamodb_local_endpoint: str,
          sample_bucket: tuple[Path, SampleManifest]) -> World:
    started = utc_now()
    s3 = boto3.client("s3", **client_kwargs(moto_endpoint))
    s3.create_bucket(Bucket=SAMPLE_BUCKET)  # the bucket the events/ samples name (seed 7, 120 files)
    upload_to_s3(sample_bucket[0], s3, SAMPLE_BUCKET)
    s3.create_bucket(Bucket=READER_BUCKET)
    pools = pools_of(sample_bucket[0])
    files = {label: trail_file(label, pools) for label in [*NAMED_FILES, *GENERATED_FILES]}
    for file in files.values():
        s3.put_object(Bucket=READER_BUCKET, Key=file.key, Body=file.body)
    tasks = [{"taskId": f.label, "s3Key": encode_key(f.key), "s3VersionId": None, "s3Bucket": READER_BUCKET}
             for f in files.values()]
    invocations = [*({"name": f"events/{name}", "event": json.loads((EVENTS_DIR / name).read_text())}
                     for name in SAMPLES),
                   {"name": "reader-paths", "event": {"invocationSchemaVersion": "2.0", "invocationId": "reader-paths",
                                                      "job": {"id": "reader-paths", "userArguments": {}},
                                                      "tasks": tasks}}]

    def side(python: Path, code: Path) -> Side:
        ddb = boto3.client("dynamodb", **client_kwargs(dynamodb_local_endpoint))
        table = f"opsworks-trail-package-{uuid.uuid4().hex[:12]}"
        ddb.create_table(TableName=table, **table_definition_from_template())
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as xray:
            xray.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)  # read only after the run
            xray.bind(("127.0.0.1", 0))
            environment = lambda_environment(
                code, **FUNCTION.environment, TABLE_NAME=table, AWS_ENDPOINT_URL_S3=moto_endpoint,
                AWS_ENDPOINT_URL_DYNAMODB=dynamodb_local_endpoint,
                AWS_XRAY_DAEMON_ADDRESS=f"127.0.0.1:{xray.getsockname()[1]}",
                AWS_XRAY_CONTEXT_MISSING="LOG_ERROR",
                _X_AMZN_TRACE_ID="Root=1-6650f1a2-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1")
            run = run_handler(python, code, FUNCTION.handler, invocations, environment)
            traces = _received(xray)
        return Side(run, _scan(ddb, table), traces)

    return World(started, files, package=side(lambda_runtime, lambda_package),
                 tree=side(Path(sys.executable), REPO / "src"))


def _scan(client: Any, table: str) -> list[dict[str, Any]]:
    deserializer = TypeDeserializer()
    items = [{k: deserializer.deserialize(v) for k, v in item.items()}
             for page in client.get_paginator("scan").paginate(TableName=table) for item in page["Items"]]
    return sorted(items, key=lambda item: (item["pk"], item["sk"]))


def _received(xray: socket.socket) -> list[str]:
    xray.setblocking(False)
    datagrams = []
    while True:
        try:
            datagrams.append(xray.recv(65536).decode())
        except BlockingIOError:
            return datagrams


_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def masked(value: Any, since: str) -> Any:
    """`value` with the times of this run (ingested_at, a file marker's `at`) replaced: all else must match."""
    if isinstance(value, str):
        return _TIME.sub(lambda m: "<time of the run>" if m.group() >= since else m.group(), value)
    if isinstance(value, dict):
        return {k: masked(v, since) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v, since) for v in value]
    return value


def failures(result: dict[str, Any]) -> list[Any]:
    """What a reply reports as failed: an error, failed SQS messages, or Batch Operations tasks not done."""
    if "error" in result:
        return [result["error"]]
    response = result["response"]
    return [*response.get("batchItemFailures", []),
            *(r for r in response.get("results", []) if r["resultCode"] != "Succeeded")]


# -- the runtime and the package's imports --------------------------------------------------------------------


def test_the_runtime_environment_holds_boto3_and_its_dependencies_only_and_the_package_none_of_them(
        lambda_runtime: Path, lambda_package: Path) -> None:
    listing = "import importlib.metadata as m; print('\\n'.join(d.metadata['Name'] for d in m.distributions()))"
    held = subprocess.run([str(lambda_runtime), "-c", listing], capture_output=True, text=True, check=True)

    assert {canonical(name) for name in held.stdout.split()} == RUNTIME_PROVIDED
    bundled = {canonical(info.name.split("-")[0]) for info in lambda_package.glob("*.dist-info")}
    assert bundled and not bundled & RUNTIME_PROVIDED


IMPORT_PROBE = """
import importlib, sys
failed = []
for statement in sys.argv[1:]:
    module, _, name = statement.partition(":")
    try:
        imported = importlib.import_module(module)
        if name and name != "*" and not hasattr(imported, name):
            importlib.import_module(f"{module}.{name}")
    except Exception as exc:
        failed.append(f"{statement}: {type(exc).__name__}: {exc}")
print("\\n".join(failed))
"""


def test_every_import_the_code_makes_anywhere_works_in_the_package(lambda_package: Path, lambda_runtime: Path) -> None:
    statements = sorted(imports_of(lambda_package / "handlers", lambda_package / "core"))
    assert {"boto3", "aws_lambda_powertools.utilities.batch:process_partial_response"} <= set(statements)

    done = subprocess.run([str(lambda_runtime), "-P", "-c", IMPORT_PROBE, *statements, "aws_xray_sdk.core"],
                          cwd=lambda_package, env=lambda_environment(lambda_package), capture_output=True, text=True,
                          check=True)

    assert done.stdout.strip() == "", f"not importable from the package:\n{done.stdout}"


# -- every input ends as in the source tree -------------------------------------------------------------------


@pytest.mark.parametrize("sample", SAMPLES)
def test_every_events_sample_ends_in_the_package_as_in_the_source_tree(sample: str, world: World) -> None:
    packaged, in_tree = world.package.result(f"events/{sample}"), world.tree.result(f"events/{sample}")

    assert failures(packaged) == [], world.package.run.output[-1500:]
    assert masked(packaged, world.started) == masked(in_tree, world.started)


@pytest.mark.parametrize("label", [*NAMED_FILES, *GENERATED_FILES])
def test_every_reader_path_ends_in_the_package_as_in_the_source_tree(label: str, world: World) -> None:
    file = world.files[label]
    packaged, in_tree = world.package.task(label), world.tree.task(label)

    assert packaged["resultCode"] == "Succeeded", packaged
    assert packaged["resultString"] == f"ingested: {len(file.expected)} events stored"
    assert packaged == in_tree
    assert world.package.stored_ids(file.key) == world.tree.stored_ids(file.key) == file.expected


def test_the_package_stores_exactly_what_the_source_tree_stores(world: World) -> None:
    assert len(world.package.items) > 100
    assert masked(world.package.items, world.started) == masked(world.tree.items, world.started)


def test_the_packaged_function_sends_its_traces_to_xray(world: World) -> None:
    documents = [json.loads(datagram.split("\n", 1)[1]) for datagram in world.package.traces]

    assert documents, f"no segment reached the X-Ray daemon address\n{world.package.run.output[-3000:]}"
    assert any(doc.get("name") == "## lambda_handler" for doc in documents)
