"""Realistic, deterministic sample data: a CloudTrail bucket on disk and large trail files.

Nothing here talks to AWS. :func:`write_sample_bucket` writes a local folder laid out exactly as a
trail writes its S3 bucket (log files, digest files, an Insights file, AWS Config's writability probe,
keys with a space and a ``+`` under a custom prefix) and returns a :class:`SampleManifest` that says
what a correct pipeline must find in it: which keys are log files, which are skipped and why, every
OpsWorks / OpsWorks CM event with the resources it names, and every secret value planted in the raw
records (all start with :data:`SECRET_MARKER`, so a test can assert none reaches a stored item or a log).

:func:`write_large_trail_file` streams one big ``{"Records":[...]}`` ``.json.gz`` in bounded memory
for benchmarks. Both are deterministic for a given seed: same seed, same bytes.

Command line::

    python -m workshop.synthetic bucket DIR [--seed N] [--files N] [--org] [--manifest PATH]
    python -m workshop.synthetic large FILE [--mb 64] [--opsworks-fraction 0.01] [--seed N]

Standard library only; :func:`upload_to_s3` takes a boto3 S3 client from the caller.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import string
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any

from workshop.sample_digests import demo_signer, write_signed_digests

__all__ = [
    "DEFAULT_ACCOUNTS",
    "DEFAULT_START",
    "LOOKALIKE_MARKER",
    "OPSWORKS_SOURCES",
    "RESOURCE_KEYS",
    "SECRET_MARKER",
    "ExpectedEvent",
    "LargeFileStats",
    "PlantedSecret",
    "SampleManifest",
    "load_manifest",
    "main",
    "resources_of",
    "upload_to_s3",
    "write_large_trail_file",
    "write_manifest",
    "write_sample_bucket",
]

Json = dict[str, Any]

#: Every planted secret value starts with this; no stored item or log line may contain it.
SECRET_MARKER = "SECRET-"
#: The string that negative look-alike records carry outside ``eventSource``.
LOOKALIKE_MARKER = "opsworks.amazonaws.com"
OPSWORKS_SOURCES = ("opsworks.amazonaws.com", "opsworks-cm.amazonaws.com")
DEFAULT_ACCOUNTS = ("111122223333", "444455556666")
#: Spans the OpsWorks Stacks end of life (2024-05-26), so events exist on both sides of it.
DEFAULT_START = datetime(2024, 5, 1, tzinfo=UTC)
REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
TRAIL_NAME = "management-events"
CUSTOM_PREFIX = "my trail+logs/"
OPSWORKS_EOL = datetime(2024, 5, 26, tzinfo=UTC)

#: Parameter names (as CloudTrail logs them, lowerCamelCase) naming an OpsWorks resource, and its type.
#: The manifest's ``resources`` are these keys found anywhere in requestParameters / responseElements
#: outside lists of maps (this matches ``ingest/catalog.json`` for every action the sample uses).
RESOURCE_KEYS: dict[str, str] = {
    "stackId": "stack",
    "stackIds": "stack",
    "layerId": "layer",
    "layerIds": "layer",
    "instanceId": "instance",
    "instanceIds": "instance",
    "appId": "app",
    "appIds": "app",
    "deploymentId": "deployment",
    "deploymentIds": "deployment",
    "commandId": "command",
    "commandIds": "command",
    "volumeId": "volume",
    "volumeIds": "volume",
    "raidArrayId": "raid-array",
    "raidArrayIds": "raid-array",
    "elasticIp": "elastic-ip",
    "elasticIps": "elastic-ip",
    "elasticLoadBalancerName": "elastic-load-balancer",
    "rdsDbInstanceArn": "rds-db-instance",
    "rdsDbInstanceArns": "rds-db-instance",
    "ecsClusterArn": "ecs-cluster",
    "ecsClusterArns": "ecs-cluster",
    "iamUserArn": "user-profile",
    "iamUserArns": "user-profile",
    "serverName": "server",
    "backupId": "backup",
    "nodeName": "node",
}

_ALNUM = string.ascii_letters + string.digits
_LOWER_ALNUM = string.ascii_lowercase + string.digits
_UPPER_ALNUM = string.ascii_uppercase + string.digits


# --------------------------------------------------------------------------------------------------
# Manifest types
# --------------------------------------------------------------------------------------------------


@dataclass
class ExpectedEvent:
    """One OpsWorks / OpsWorks CM event a correct pipeline must store exactly once."""

    event_id: str
    event_source: str
    event_name: str
    event_time: str
    account_id: str
    region: str
    keys: list[str]
    error_code: str | None
    read_only: bool | None
    resources: list[tuple[str, str]]


@dataclass
class PlantedSecret:
    """A secret value in a raw OpsWorks record, with where it sits (dotted path, list indexes as numbers)."""

    value: str
    event_id: str
    path: str


@dataclass
class SampleManifest:
    """What :func:`write_sample_bucket` wrote and what a pipeline should make of it.

    Keys are S3 object keys relative to the bucket root (not URL-encoded).
    ``skipped_keys`` maps each non-log key to its reason class: ``digest``, ``insight``,
    ``not-a-log-file`` or ``folder``. ``folder_keys`` exist only in S3 (zero-byte ``.../`` objects, see
    :func:`upload_to_s3`). ``opsworks_records`` counts OpsWorks records across all log files (a
    redelivered event counts twice); ``opsworks_events`` counts unique event ids.
    """

    seed: int
    organization_id: str | None
    accounts: list[str]
    log_keys: list[str]
    skipped_keys: dict[str, str]
    folder_keys: list[str]
    expected: dict[str, ExpectedEvent]
    secrets: list[PlantedSecret]
    duplicate_event_ids: list[str]
    lookalike_event_ids: list[str]
    files: int
    records: int
    opsworks_records: int
    opsworks_events: int

    bucket: str = "trail-bucket"
    """The bucket the digests name."""
    digest_metadata: dict[str, dict[str, str]] = field(default_factory=dict)
    """Each digest's S3 user metadata (its signature): set it when uploading (upload_to_s3)."""
    public_keys: dict[str, Any] = field(default_factory=dict)
    """The demo key that signed the digests, as `aws cloudtrail list-public-keys --output json` saves it."""

    def keys_with_opsworks(self) -> list[str]:
        """Log file keys holding at least one OpsWorks record, sorted."""
        return sorted({k for e in self.expected.values() for k in e.keys})


@dataclass
class LargeFileStats:
    """What :func:`write_large_trail_file` wrote."""

    records: int
    opsworks_records: int
    uncompressed_bytes: int
    compressed_bytes: int


def write_manifest(manifest: SampleManifest, path: Path) -> None:
    """Write the manifest as indented JSON (resources as ``[type, id]`` pairs)."""
    path.write_text(json.dumps(dataclasses.asdict(manifest), indent=1, sort_keys=True) + "\n")


def load_manifest(path: Path) -> SampleManifest:
    """Read a manifest written by :func:`write_manifest`."""
    raw = json.loads(path.read_text())
    raw["expected"] = {
        k: ExpectedEvent(**{**v, "resources": [(t, i) for t, i in v["resources"]]})
        for k, v in raw["expected"].items()
    }
    raw["secrets"] = [PlantedSecret(**s) for s in raw["secrets"]]
    return SampleManifest(**raw)


def resources_of(record: Json) -> list[tuple[str, str]]:
    """Sorted unique ``(type, id)`` pairs named by a record's request and response (see RESOURCE_KEYS)."""
    found: set[tuple[str, str]] = set()

    def walk(node: Any) -> None:
        if not isinstance(node, dict):
            return
        for key, value in node.items():
            kind = RESOURCE_KEYS.get(key)
            if kind is not None:
                for v in value if isinstance(value, list) else [value]:
                    if isinstance(v, str) and v:
                        found.add((kind, v))
            elif isinstance(value, dict):
                walk(value)

    walk(record.get("requestParameters"))
    walk(record.get("responseElements"))
    return sorted(found)


def _secrets_in(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, str) and SECRET_MARKER in node:
        yield path, node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _secrets_in(v, f"{path}.{k}" if path else k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _secrets_in(v, f"{path}.{i}")


# --------------------------------------------------------------------------------------------------
# Actors and record shapes
# --------------------------------------------------------------------------------------------------

_CLI_AGENTS = (
    "aws-cli/2.15.30 Python/3.11.8 Linux/5.10.213-201.855.amzn2.x86_64 exe/x86_64.amzn.2 prompt/off",
    "aws-cli/2.13.4 Python/3.11.4 Darwin/23.4.0 exe/x86_64 prompt/off",
)
_BOTO_AGENTS = (
    "Boto3/1.34.84 md/Botocore#1.34.84 ua/2.0 os/linux#5.10.213 md/arch#x86_64 lang/python#3.11.8 "
    "md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.84",
    "Boto3/1.28.57 Python/3.9.16 Linux/4.14.336-257.562.amzn2.x86_64 exec-env/AWS_Lambda_python3.9 "
    "Botocore/1.31.57",
)
_TERRAFORM_AGENTS = (
    "APN/1.0 HashiCorp/1.0 Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.46.0 "
    "(+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.26.1 os/linux lang/go#1.22.1 "
    "md/GOOS#linux md/GOARCH#amd64",
)
_BROWSER_AGENTS = (
    "console.amazonaws.com",
    "AWS Internal",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
)
_TLS = (
    ("TLSv1.3", "TLS_AES_128_GCM_SHA256"),
    ("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256"),
    ("TLSv1.3", "TLS_AES_256_GCM_SHA384"),
)


@dataclass(frozen=True)
class _Actor:
    """Who calls: enough to render a CloudTrail ``userIdentity`` plus where the call comes from."""

    kind: str  # IAMUser | AssumedRole | Root | AWSService | FederatedUser
    account: str
    name: str  # user name, role name, service principal, federated name
    principal: str = ""
    access_key: str = ""
    session: str = ""
    issuer_principal: str = ""
    invoked_by: str = ""
    agents: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()
    console: bool = False


def _fmt(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def _java_date(ts: datetime) -> str:
    """The "May 3, 2024, 11:03:45 PM" style some services log (the OpsWorks CM docs omit the 2nd comma)."""
    hour = ts.hour % 12 or 12
    return f"{ts:%b} {ts.day}, {ts.year} {hour}:{ts:%M:%S} {'AM' if ts.hour < 12 else 'PM'}"


class _Gen:
    """Seeded builders for identities, ids and records; one per generated bucket or file."""

    def __init__(self, rng: Random, accounts: Sequence[str], start: datetime, days: int) -> None:
        self.rng = rng
        self.accounts = list(accounts)
        self.start = start
        self.end = start + timedelta(days=days)
        self.actors: dict[str, list[_Actor]] = {a: self._actors_for(a) for a in self.accounts}

    # ids ------------------------------------------------------------------------------------------
    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def token(self, n: int, alphabet: str = _ALNUM) -> str:
        return "".join(self.rng.choices(alphabet, k=n))

    def secret(self) -> str:
        return SECRET_MARKER + self.token(24)

    def ip(self) -> str:
        net = self.rng.choice(("198.51.100", "203.0.113", "192.0.2"))
        return f"{net}.{self.rng.randint(1, 254)}"

    def s3_request_id(self) -> str:
        return self.token(16, _UPPER_ALNUM)

    def docs_style_id(self) -> str:
        """An id shaped like the OpsWorks CM doc examples': uuid layout, letters beyond hex."""
        return "-".join(self.token(n, _LOWER_ALNUM) for n in (8, 4, 4, 4, 12))

    # actors ---------------------------------------------------------------------------------------
    def _actors_for(self, account: str) -> list[_Actor]:
        def aid(prefix: str) -> str:
            return prefix + self.token(16 if prefix in ("AKIA", "ASIA") else 17, _UPPER_ALNUM)

        role_sso = "AWSReservedSSO_AdministratorAccess_" + self.token(16, "0123456789abcdef")
        ips = tuple(self.ip() for _ in range(3))
        return [
            _Actor(
                "IAMUser",
                account,
                "alice",
                aid("AIDA"),
                aid("ASIA"),
                agents=_BROWSER_AGENTS,
                ips=ips[:1],
                console=True,
            ),
            _Actor(
                "IAMUser", account, "ci-deployer", aid("AIDA"), aid("AKIA"), agents=_CLI_AGENTS, ips=ips[1:2]
            ),
            _Actor(
                "AssumedRole",
                account,
                "deploy-automation",
                aid("AROA"),
                aid("ASIA"),
                session="gitlab-runner-" + self.token(6, "0123456789"),
                issuer_principal="",
                agents=_CLI_AGENTS + _BOTO_AGENTS + _TERRAFORM_AGENTS,
                ips=(self.ip(),),
            ),
            _Actor(
                "AssumedRole",
                account,
                role_sso,
                aid("AROA"),
                aid("ASIA"),
                session="bob@example.com",
                agents=_BROWSER_AGENTS,
                ips=ips[2:],
                console=True,
            ),
            _Actor(
                "Root",
                account,
                "root",
                account,
                aid("ASIA"),
                agents=_BROWSER_AGENTS[:2],
                ips=ips[:1],
                console=True,
            ),
            _Actor(
                "FederatedUser",
                account,
                "carol",
                f"{account}:carol",
                aid("ASIA"),
                agents=_CLI_AGENTS,
                ips=(self.ip(),),
                issuer_principal=aid("AIDA"),
            ),
            _Actor(
                "AssumedRole",
                account,
                "reporting-lambda",
                aid("AROA"),
                aid("ASIA"),
                session="reporting-lambda",
                agents=_BOTO_AGENTS,
                ips=(f"10.0.{self.rng.randint(0, 255)}.{self.rng.randint(1, 254)}",),
            ),
        ]

    def actor(self, account: str, name: str) -> _Actor:
        return next(a for a in self.actors[account] if a.name == name or a.name.startswith(name))

    def service(self, account: str, principal: str) -> _Actor:
        return _Actor(
            "AWSService", account, principal, invoked_by=principal, agents=(principal,), ips=(principal,)
        )

    def service_role(self, account: str, role: str, service: str) -> _Actor:
        """A service acting through its service role (OpsWorks calling EC2 for the user)."""
        return _Actor(
            "AssumedRole",
            account,
            role,
            "AROA" + self.token(17, _UPPER_ALNUM),
            "ASIA" + self.token(16, _UPPER_ALNUM),
            session=service.split(".")[0].title(),
            invoked_by=service,
            agents=(service,),
            ips=(service,),
        )

    def identity(self, a: _Actor, ts: datetime) -> Json:
        created = _fmt(ts - timedelta(minutes=self.rng.randint(1, 55)))
        attrs = {"creationDate": created, "mfaAuthenticated": "true" if a.console else "false"}
        if a.kind == "AWSService":
            return {"type": "AWSService", "invokedBy": a.invoked_by}
        if a.kind == "IAMUser":
            ident: Json = {
                "type": "IAMUser",
                "principalId": a.principal,
                "arn": f"arn:aws:iam::{a.account}:user/{a.name}",
                "accountId": a.account,
                "accessKeyId": a.access_key,
                "userName": a.name,
            }
            if a.console:
                ident["sessionContext"] = {
                    "sessionIssuer": {},
                    "webIdFederationData": {},
                    "attributes": attrs,
                }
            return ident
        if a.kind == "Root":
            return {
                "type": "Root",
                "principalId": a.account,
                "arn": f"arn:aws:iam::{a.account}:root",
                "accountId": a.account,
                "accessKeyId": a.access_key,
                "sessionContext": {"sessionIssuer": {}, "webIdFederationData": {}, "attributes": attrs},
            }
        if a.kind == "FederatedUser":
            return {
                "type": "FederatedUser",
                "principalId": a.principal,
                "arn": f"arn:aws:sts::{a.account}:federated-user/{a.name}",
                "accountId": a.account,
                "accessKeyId": a.access_key,
                "sessionContext": {
                    "sessionIssuer": {
                        "type": "IAMUser",
                        "principalId": a.issuer_principal,
                        "arn": f"arn:aws:iam::{a.account}:user/federation-broker",
                        "accountId": a.account,
                        "userName": "federation-broker",
                    },
                    "webIdFederationData": {},
                    "attributes": attrs,
                },
            }
        # AssumedRole
        role_path = "aws-reserved/sso.amazonaws.com/" if a.name.startswith("AWSReservedSSO") else ""
        role_path = "service-role/" if a.invoked_by else role_path
        ident = {
            "type": "AssumedRole",
            "principalId": f"{a.principal}:{a.session}",
            "arn": f"arn:aws:sts::{a.account}:assumed-role/{a.name}/{a.session}",
            "accountId": a.account,
            "accessKeyId": a.access_key,
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": a.principal,
                    "arn": f"arn:aws:iam::{a.account}:role/{role_path}{a.name}",
                    "accountId": a.account,
                    "userName": a.name,
                },
                "webIdFederationData": {},
                "attributes": attrs,
            },
        }
        if a.invoked_by:
            ident["invokedBy"] = a.invoked_by
        return ident

    def record(
        self,
        actor: _Actor,
        ts: datetime,
        source: str,
        name: str,
        region: str,
        request: Json | None,
        response: Json | None = None,
        *,
        read_only: bool,
        error: tuple[str, str] | None = None,
        event_type: str = "AwsApiCall",
        additional: Json | None = None,
        resources: list[Json] | None = None,
        request_id: str | None = None,
        shared: bool = False,
        vpce: bool = False,
        version: str | None = None,
    ) -> Json:
        """A current-format (1.08 / 1.09) management event, keys in CloudTrail's order."""
        rng = self.rng
        rec: Json = {
            "eventVersion": version or rng.choice(("1.08", "1.08", "1.09")),
            "userIdentity": self.identity(actor, ts),
            "eventTime": _fmt(ts),
            "eventSource": source,
            "eventName": name,
            "awsRegion": region,
            "sourceIPAddress": rng.choice(actor.ips) if actor.ips else self.ip(),
            "userAgent": rng.choice(actor.agents) if actor.agents else rng.choice(_CLI_AGENTS),
        }
        if vpce:
            rec["sourceIPAddress"] = f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        if error is not None:
            rec["errorCode"], rec["errorMessage"] = error
        rec["requestParameters"] = request
        rec["responseElements"] = None if error is not None else response
        if additional is not None:
            rec["additionalEventData"] = additional
        rec["requestID"] = request_id or self.uuid()
        rec["eventID"] = self.uuid()
        rec["readOnly"] = read_only
        if resources is not None:
            rec["resources"] = resources
        rec["eventType"] = event_type
        rec["managementEvent"] = True
        rec["recipientAccountId"] = actor.account
        if shared:
            rec["sharedEventID"] = self.uuid()
        if vpce:
            rec["vpcEndpointId"] = "vpce-" + self.token(17, "0123456789abcdef")
        rec["eventCategory"] = "Management"
        if actor.kind != "AWSService" and not actor.invoked_by:
            tls, cipher = rng.choice(_TLS)
            host = f"{source.split('.')[0]}.{region}.amazonaws.com"
            rec["tlsDetails"] = {"tlsVersion": tls, "cipherSuite": cipher, "clientProvidedHostHeader": host}
        if actor.console:
            rec["sessionCredentialFromConsole"] = "true"
        return rec


# --------------------------------------------------------------------------------------------------
# Other services: the bulk of every trail, and the negative look-alikes
# --------------------------------------------------------------------------------------------------


def _filler(g: _Gen, account: str, region: str, ts: datetime) -> Json:
    """One realistic non-OpsWorks record (weighted like a quiet production account)."""
    rng = g.rng
    kind = rng.choices(range(14), weights=(14, 6, 10, 3, 5, 8, 5, 4, 8, 5, 3, 2, 12, 4))[0]
    acts = g.actors[account]
    person = rng.choice([a for a in acts if a.console])
    bot = rng.choice([a for a in acts if not a.console])
    bucket = rng.choice(("app-assets-prod", "terraform-state-" + account, "org-trail-logs", "backups-eu"))
    instance = "i-0" + g.token(16, "0123456789abcdef")
    if kind == 0:  # CloudTrail checking its bucket
        svc = g.service(account, "cloudtrail.amazonaws.com")
        return g.record(
            svc,
            ts,
            "s3.amazonaws.com",
            "GetBucketAcl",
            region,
            {"bucketName": bucket, "Host": f"{bucket}.s3.amazonaws.com", "acl": ""},
            None,
            read_only=True,
            request_id=g.s3_request_id(),
            shared=True,
            additional={
                "SignatureVersion": "SigV4",
                "CipherSuite": "ECDHE-RSA-AES128-GCM-SHA256",
                "bytesTransferredIn": 0,
                "AuthenticationMethod": "AuthHeader",
                "x-amz-id-2": g.token(76),
                "bytesTransferredOut": 540,
            },
            resources=[{"accountId": account, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}],
        )
    if kind == 1:
        return g.record(
            bot,
            ts,
            "s3.amazonaws.com",
            "ListBuckets",
            region,
            {"Host": f"s3.{region}.amazonaws.com"},
            None,
            read_only=True,
            request_id=g.s3_request_id(),
            additional={
                "SignatureVersion": "SigV4",
                "CipherSuite": "TLS_AES_128_GCM_SHA256",
                "bytesTransferredIn": 0,
                "AuthenticationMethod": "AuthHeader",
                "x-amz-id-2": g.token(76),
                "bytesTransferredOut": 2211,
            },
        )
    if kind == 2:
        return g.record(
            bot,
            ts,
            "ec2.amazonaws.com",
            "DescribeInstances",
            region,
            {
                "instancesSet": {},
                "filterSet": {
                    "items": [
                        {"name": "tag:Name", "valueSet": {"items": [{"value": "web-*"}]}},
                        {"name": "instance-state-name", "valueSet": {"items": [{"value": "running"}]}},
                    ]
                },
            },
            None,
            read_only=True,
            vpce=rng.random() < 0.2,
        )
    if kind == 3:
        return _run_instances(g, bot, ts, region, instance)
    if kind == 4:
        return g.record(
            person,
            ts,
            "ec2.amazonaws.com",
            "DescribeSecurityGroups",
            region,
            {"securityGroupSet": {}, "securityGroupIdSet": {}, "maxResults": 1000},
            None,
            read_only=True,
        )
    if kind == 5:
        svc = g.service(
            account, rng.choice(("lambda.amazonaws.com", "ec2.amazonaws.com", "ecs-tasks.amazonaws.com"))
        )
        role = rng.choice(("reporting-lambda", "web-instance-role", "ecs-task-role"))
        return g.record(
            svc,
            ts,
            "sts.amazonaws.com",
            "AssumeRole",
            region,
            {"roleArn": f"arn:aws:iam::{account}:role/{role}", "roleSessionName": g.token(12)},
            {
                "credentials": {
                    "accessKeyId": "ASIA" + g.token(16, _UPPER_ALNUM),
                    "sessionToken": "IQoJb3JpZ2luX2VjE" + g.token(300),
                    "expiration": _java_date(ts + timedelta(hours=1)),
                }
            },
            read_only=True,
            shared=True,
            resources=[
                {"accountId": account, "type": "AWS::IAM::Role", "ARN": f"arn:aws:iam::{account}:role/{role}"}
            ],
        )
    if kind == 6:
        return g.record(bot, ts, "sts.amazonaws.com", "GetCallerIdentity", region, None, None, read_only=True)
    if kind == 7:
        return g.record(
            person,
            ts,
            "iam.amazonaws.com",
            "ListRoles",
            "us-east-1",
            {"maxItems": 1000},
            None,
            read_only=True,
        )
    if kind == 8:
        key_id = g.uuid()
        svc_role = (
            g.service_role(account, "web-instance-role", "s3.amazonaws.com") if rng.random() < 0.5 else bot
        )
        return g.record(
            svc_role,
            ts,
            "kms.amazonaws.com",
            "Decrypt",
            region,
            {
                "encryptionAlgorithm": "SYMMETRIC_DEFAULT",
                "encryptionContext": {"aws:s3:arn": f"arn:aws:s3:::{bucket}/data/{g.token(10)}.parquet"},
            },
            None,
            read_only=True,
            resources=[
                {
                    "accountId": account,
                    "type": "AWS::KMS::Key",
                    "ARN": f"arn:aws:kms:{region}:{account}:key/{key_id}",
                }
            ],
        )
    if kind == 9:
        return g.record(
            person,
            ts,
            "cloudtrail.amazonaws.com",
            "LookupEvents",
            region,
            {"maxResults": 50, "lookupAttributes": [{"attributeKey": "ReadOnly", "attributeValue": "false"}]},
            None,
            read_only=True,
        )
    if kind == 10:
        user = rng.choice([a for a in acts if a.kind in ("IAMUser", "Root")])
        rec = g.record(
            user,
            ts,
            "signin.amazonaws.com",
            "ConsoleLogin",
            "us-east-1",
            None,
            {"ConsoleLogin": "Success"},
            read_only=False,
            event_type="AwsConsoleSignIn",
            additional={
                "LoginTo": "https://console.aws.amazon.com/console/home",
                "MobileVersion": "No",
                "MFAUsed": "Yes",
            },
        )
        rec["userIdentity"].pop("accessKeyId", None)
        rec["userIdentity"].pop("sessionContext", None)
        rec.pop("tlsDetails", None)
        rec.pop("sessionCredentialFromConsole", None)
        return rec
    if kind == 11:
        fed = g.actor(account, "carol")
        return g.record(
            fed,
            ts,
            "dynamodb.amazonaws.com",
            "DescribeTable",
            region,
            {"tableName": "orders"},
            None,
            read_only=True,
        )
    if kind == 12:  # the SSM agent: the noisiest caller of all
        inst_role = g.service_role(account, "web-instance-role", "ec2.amazonaws.com")
        inst_role = dataclasses.replace(
            inst_role,
            session=instance,
            invoked_by="",
            agents=("aws-sdk-go/1.44.260 (go1.20.5; linux; amd64) amazon-ssm-agent/3.3.40.0",),
            ips=(f"10.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}",),
        )
        return g.record(
            inst_role,
            ts,
            "ssm.amazonaws.com",
            "UpdateInstanceInformation",
            region,
            {
                "instanceId": instance,
                "agentVersion": "3.3.40.0",
                "agentStatus": "Active",
                "platformType": "Linux",
                "platformName": "Amazon Linux",
                "platformVersion": "2",
                "iPAddress": f"10.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                "computerName": f"ip-10-0-{rng.randint(0, 255)}-{rng.randint(1, 254)}.ec2.internal",
                "agentName": "amazon-ssm-agent",
                "availabilityZone": f"{region}a",
            },
            None,
            read_only=False,
            vpce=rng.random() < 0.3,
        )
    root = g.actor(account, "root")
    return g.record(
        root, ts, "iam.amazonaws.com", "GetAccountSummary", "us-east-1", None, None, read_only=True
    )


def _run_instances(g: _Gen, actor: _Actor, ts: datetime, region: str, instance: str) -> Json:
    rng = g.rng
    ami = "ami-0" + g.token(16, "0123456789abcdef")
    subnet = "subnet-0" + g.token(16, "0123456789abcdef")
    sg = "sg-0" + g.token(16, "0123456789abcdef")
    itype = rng.choice(("t3.medium", "m5.large", "c5.xlarge"))
    req = {
        "instancesSet": {"items": [{"imageId": ami, "minCount": 1, "maxCount": 1}]},
        "instanceType": itype,
        "blockDeviceMapping": {},
        "monitoring": {"enabled": False},
        "disableApiTermination": False,
        "disableApiStop": False,
        "clientToken": g.uuid(),
        "subnetId": subnet,
        "groupSet": {"items": [{"groupId": sg}]},
        "iamInstanceProfile": {"name": "web-instance-profile"},
        "tagSpecificationSet": {
            "items": [
                {
                    "resourceType": "instance",
                    "tags": [{"key": "Name", "value": f"web-{rng.randint(1, 99):02d}"}],
                }
            ]
        },
    }
    resp = {
        "requestId": g.uuid(),
        "reservationId": "r-0" + g.token(16, "0123456789abcdef"),
        "ownerId": actor.account,
        "groupSet": {},
        "instancesSet": {
            "items": [
                {
                    "instanceId": instance,
                    "imageId": ami,
                    "currentInstanceBootMode": "legacy-bios",
                    "instanceState": {"code": 0, "name": "pending"},
                    "privateDnsName": f"ip-10-0-{rng.randint(0, 255)}-{rng.randint(1, 254)}.ec2.internal",
                    "amiLaunchIndex": 0,
                    "productCodes": {},
                    "instanceType": itype,
                    "launchTime": int(ts.timestamp() * 1000),
                    "placement": {"availabilityZone": f"{region}a", "tenancy": "default"},
                    "monitoring": {"state": "disabled"},
                    "subnetId": subnet,
                    "vpcId": "vpc-0" + g.token(16, "0123456789abcdef"),
                    "privateIpAddress": f"10.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                    "stateReason": {"code": "pending", "message": "pending"},
                    "architecture": "x86_64",
                    "rootDeviceType": "ebs",
                    "rootDeviceName": "/dev/xvda",
                    "blockDeviceMapping": {},
                    "virtualizationType": "hvm",
                    "hypervisor": "xen",
                    "groupSet": {"items": [{"groupId": sg, "groupName": "web"}]},
                    "networkInterfaceSet": {
                        "items": [
                            {
                                "networkInterfaceId": "eni-0" + g.token(16, "0123456789abcdef"),
                                "subnetId": subnet,
                                "status": "in-use",
                                "sourceDestCheck": True,
                                "interfaceType": "interface",
                            }
                        ]
                    },
                    "ebsOptimized": False,
                    "enaSupport": True,
                    "cpuOptions": {"coreCount": 1, "threadsPerCore": 2},
                    "capacityReservationSpecification": {"capacityReservationPreference": "open"},
                    "enclaveOptions": {"enabled": False},
                    "metadataOptions": {
                        "state": "pending",
                        "httpTokens": "required",
                        "httpPutResponseHopLimit": 2,
                        "httpEndpoint": "enabled",
                        "httpProtocolIpv4": "enabled",
                        "httpProtocolIpv6": "disabled",
                        "instanceMetadataTags": "disabled",
                    },
                    "maintenanceOptions": {"autoRecovery": "default"},
                    "privateDnsNameOptions": {
                        "hostnameType": "ip-name",
                        "enableResourceNameDnsARecord": False,
                        "enableResourceNameDnsAAAARecord": False,
                    },
                }
            ]
        },
    }
    return g.record(actor, ts, "ec2.amazonaws.com", "RunInstances", region, req, resp, read_only=False)


def _lookalike(g: _Gen, account: str, region: str, ts: datetime, which: int | None = None) -> Json:
    """A non-OpsWorks record that mentions OpsWorks outside ``eventSource``: must never be selected."""
    rng = g.rng
    which = rng.randrange(6) if which is None else which % 6
    ow_role = g.service_role(account, "aws-opsworks-service-role", "opsworks.amazonaws.com")
    if which == 0:  # OpsWorks starting an instance for StartInstance / CreateInstance
        return _run_instances(g, ow_role, ts, region, "i-0" + g.token(16, "0123456789abcdef"))
    if which == 1:
        return g.record(
            ow_role,
            ts,
            "ec2.amazonaws.com",
            "DescribeInstances",
            region,
            {
                "instancesSet": {"items": [{"instanceId": "i-0" + g.token(16, "0123456789abcdef")}]},
                "filterSet": {},
            },
            None,
            read_only=True,
        )
    if which == 2:
        svc = g.service(account, "opsworks.amazonaws.com")
        role = f"arn:aws:iam::{account}:role/service-role/aws-opsworks-service-role"
        return g.record(
            svc,
            ts,
            "sts.amazonaws.com",
            "AssumeRole",
            region,
            {"roleArn": role, "roleSessionName": "OpsWorks", "durationSeconds": 3600},
            {
                "credentials": {
                    "accessKeyId": "ASIA" + g.token(16, _UPPER_ALNUM),
                    "sessionToken": "IQoJb3JpZ2luX2VjE" + g.token(300),
                    "expiration": _java_date(ts + timedelta(hours=1)),
                },
                "assumedRoleUser": {
                    "assumedRoleId": "AROA" + g.token(17, _UPPER_ALNUM) + ":OpsWorks",
                    "arn": f"arn:aws:sts::{account}:assumed-role/aws-opsworks-service-role/OpsWorks",
                },
            },
            read_only=True,
            shared=True,
            resources=[{"accountId": account, "type": "AWS::IAM::Role", "ARN": role}],
        )
    if which == 3:  # a request parameter value that contains the service principal
        tf = g.actor(account, "deploy-automation")
        policy = json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "opsworks.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        )
        return g.record(
            tf,
            ts,
            "iam.amazonaws.com",
            "CreateRole",
            "us-east-1",
            {
                "roleName": "aws-opsworks-service-role",
                "path": "/service-role/",
                "assumeRolePolicyDocument": policy,
            },
            {
                "role": {
                    "path": "/service-role/",
                    "roleName": "aws-opsworks-service-role",
                    "roleId": "AROA" + g.token(17, _UPPER_ALNUM),
                    "arn": f"arn:aws:iam::{account}:role/service-role/aws-opsworks-service-role",
                    "createDate": _java_date(ts),
                    "assumeRolePolicyDocument": policy,
                }
            },
            read_only=False,
        )
    if which == 4:
        cm_role = g.service_role(account, "aws-opsworks-cm-service-role", "opsworks-cm.amazonaws.com")
        name = "aws-opsworks-cm-" + g.token(8, _LOWER_ALNUM)
        return g.record(
            cm_role,
            ts,
            "cloudformation.amazonaws.com",
            "CreateStack",
            region,
            {
                "stackName": name,
                "templateURL": f"https://opsworks-cm-{region}-prod-default-assets.s3.amazonaws.com/misc/opsworks-cm-server.yaml",
                "parameters": [
                    {"parameterKey": "CallerService", "parameterValue": "opsworks-cm.amazonaws.com"}
                ],
                "capabilities": ["CAPABILITY_IAM"],
                "onFailure": "DO_NOTHING",
            },
            {"stackId": f"arn:aws:cloudformation:{region}:{account}:stack/{name}/{g.uuid()}"},
            read_only=False,
        )
    return g.record(
        ow_role,
        ts,
        "elasticloadbalancing.amazonaws.com",
        "RegisterInstancesWithLoadBalancer",
        region,
        {
            "loadBalancerName": "web-prod-elb",
            "instances": [{"instanceId": "i-0" + g.token(16, "0123456789abcdef")}],
        },
        {"instances": [{"instanceId": "i-0" + g.token(16, "0123456789abcdef")}]},
        read_only=False,
    )


# --------------------------------------------------------------------------------------------------
# OpsWorks stories: coherent sequences of sessions; each session lands in one log file
# --------------------------------------------------------------------------------------------------


@dataclass
class _Session:
    account: str
    region: str
    records: list[Json] = field(default_factory=list)
    lookalikes: list[Json] = field(default_factory=list)


def _clock(g: _Gen, frac: float) -> Callable[[], datetime]:
    """A session clock: starts at ``frac`` of the window, each call advances 5-90 seconds."""
    span = (g.end - g.start).total_seconds()
    t = [g.start + timedelta(seconds=int(span * frac) + g.rng.randint(0, 1800))]

    def tick() -> datetime:
        t[0] += timedelta(seconds=g.rng.randint(5, 90))
        return t[0]

    return tick


def _caller(g: _Gen, src: str, main: _Actor, region: str) -> Callable[..., Json]:
    """A story's `call(session, tick, op, req, resp=None, *, ro, who, error)`: record one call in a session."""

    def call(
        s: _Session,
        tick: Callable[[], datetime],
        op: str,
        req: Json | None,
        resp: Json | None = None,
        *,
        ro: bool = False,
        who: _Actor | None = None,
        error: tuple[str, str] | None = None,
    ) -> Json:
        rec = g.record(who or main, tick(), src, op, region, req, resp, read_only=ro, error=error)
        s.records.append(rec)
        return rec

    return call


def _stack_story(
    g: _Gen, account: str, region: str, name: str, fracs: Sequence[float], by: str
) -> list[_Session]:
    """CreateStack .. DeleteStack over seven sessions, by an automation role or a console person."""
    rng = g.rng
    src = "opsworks.amazonaws.com"
    main = g.actor(account, by)
    person = g.actor(account, "alice")
    sessions: list[_Session] = []

    call = _caller(g, src, main, region)

    stack_id, layer_ids = g.uuid(), [g.uuid(), g.uuid()]
    instance_ids = [g.uuid() for _ in range(3)]
    app_id, deploy_ids = g.uuid(), [g.uuid(), g.uuid()]
    volume_id = g.uuid()
    ec2_ids = ["i-0" + g.token(16, "0123456789abcdef") for _ in instance_ids]

    # 1: the stack and its layers
    s, tick = _Session(account, region), _clock(g, fracs[0])
    call(
        s,
        tick,
        "CreateStack",
        {
            "name": name,
            "region": region,
            "vpcId": "vpc-0" + g.token(16, "0123456789abcdef"),
            "attributes": {"Color": "rgb(45, 114, 184)"},
            "serviceRoleArn": f"arn:aws:iam::{account}:role/service-role/aws-opsworks-service-role",
            "defaultInstanceProfileArn": f"arn:aws:iam::{account}:instance-profile/aws-opsworks-ec2-role",
            "defaultOs": "Amazon Linux 2",
            "hostnameTheme": "Layer_Dependent",
            "defaultSubnetId": "subnet-0" + g.token(16, "0123456789abcdef"),
            "configurationManager": {"name": "Chef", "version": "12"},
            "useCustomCookbooks": True,
            "useOpsworksSecurityGroups": True,
            "customCookbooksSource": {
                "type": "git",
                "url": f"git@github.com:example/{name}-cookbooks.git",
                "sshKey": g.secret(),
                "revision": "main",
            },
            "defaultSshKeyName": f"{name}-ops",
            "defaultRootDeviceType": "ebs",
            "agentVersion": "LATEST",
        },
        {"stackId": stack_id},
    )
    for lid, (ltype, lname) in zip(layer_ids, (("custom", "web"), ("custom", "worker")), strict=True):
        call(
            s,
            tick,
            "CreateLayer",
            {
                "stackId": stack_id,
                "type": ltype,
                "name": f"{name} {lname}",
                "shortname": lname,
                "attributes": {},
                "customRecipes": {"setup": [f"{name}::setup"], "deploy": [f"{name}::deploy"]},
                "enableAutoHealing": True,
                "autoAssignElasticIps": False,
                "autoAssignPublicIps": True,
                "installUpdatesOnBoot": True,
                "useEbsOptimizedInstances": False,
                "volumeConfigurations": [
                    {"mountPoint": "/srv/data", "numberOfDisks": 1, "size": 50, "volumeType": "gp2"}
                ],
            },
            {"layerId": lid},
        )
    call(s, tick, "DescribeStacks", {"stackIds": [stack_id]}, None, ro=True)
    sessions.append(s)

    # 2: instances
    s, tick = _Session(account, region), _clock(g, fracs[1])
    for iid, lid, n in zip(instance_ids, (layer_ids[0], layer_ids[0], layer_ids[1]), range(3), strict=True):
        call(
            s,
            tick,
            "CreateInstance",
            {
                "stackId": stack_id,
                "layerIds": [lid],
                "instanceType": rng.choice(("t3.medium", "m5.large")),
                "os": "Amazon Linux 2",
                "hostname": f"{name}-{n + 1}",
                "sshKeyName": f"{name}-ops",
                "architecture": "x86_64",
                "rootDeviceType": "ebs",
                "installUpdatesOnBoot": True,
                "virtualizationType": "hvm",
            },
            {"instanceId": iid},
        )
    call(s, tick, "DescribeInstances", {"stackId": stack_id}, None, ro=True)
    for iid, ec2 in zip(instance_ids, ec2_ids, strict=True):
        call(s, tick, "StartInstance", {"instanceId": iid})
        s.lookalikes.append(
            _run_instances(
                g,
                g.service_role(account, "aws-opsworks-service-role", "opsworks.amazonaws.com"),
                tick(),
                region,
                ec2,
            )
        )
    sessions.append(s)

    # 3: the app (secrets!), a validation failure first, the database
    s, tick = _Session(account, region), _clock(g, fracs[2])
    app_req: Json = {
        "stackId": stack_id,
        "shortname": f"{name}-app",
        "name": f"{name} app",
        "type": "other",
        "description": "Main application",
        "appSource": {
            "type": "git",
            "url": f"https://git.example.com/example/{name}.git",
            "username": "deploy-bot",
            "password": g.secret(),
            "sshKey": g.secret(),
            "revision": "v1.4.2",
        },
        "domains": [f"{name}.example.com"],
        "enableSsl": True,
        "sslConfiguration": {
            "certificate": "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIE"
            + g.token(40)
            + "\n-----END CERTIFICATE-----",
            "privateKey": g.secret(),
            "chain": "",
        },
        "attributes": {"DocumentRoot": "public"},
        "environment": [
            {"key": "APP_ENV", "value": "production", "secure": False},
            {"key": "DATABASE_PASSWORD", "value": g.secret(), "secure": True},
        ],
        "dataSources": [
            {
                "type": "RdsDbInstance",
                "arn": f"arn:aws:rds:{region}:{account}:db:{name}-db",
                "databaseName": "app",
            }
        ],
    }
    bad = json.loads(json.dumps(app_req))
    bad["shortname"] = f"{name} app!"
    bad["appSource"]["password"] = g.secret()
    call(
        s,
        tick,
        "CreateApp",
        bad,
        who=person,
        error=("ValidationException", "Please provide a valid value for the Shortname parameter"),
    )
    call(s, tick, "CreateApp", app_req, {"appId": app_id})
    call(
        s,
        tick,
        "RegisterRdsDbInstance",
        {
            "stackId": stack_id,
            "rdsDbInstanceArn": f"arn:aws:rds:{region}:{account}:db:{name}-db",
            "dbUser": "app",
            "dbPassword": g.secret(),
        },
    )
    sessions.append(s)

    # 4: deploy
    s, tick = _Session(account, region), _clock(g, fracs[3])
    call(
        s,
        tick,
        "CreateDeployment",
        {
            "stackId": stack_id,
            "appId": app_id,
            "instanceIds": instance_ids[:2],
            "command": {"name": "deploy", "args": {}},
            "comment": f"release v1.4.2 by pipeline #{rng.randint(100, 999)}",
            "customJson": json.dumps({"deploy": {f"{name}-app": {"migrate": True}}}),
        },
        {"deploymentId": deploy_ids[0]},
    )
    call(s, tick, "DescribeDeployments", {"deploymentIds": [deploy_ids[0]]}, None, ro=True)
    call(s, tick, "DescribeCommands", {"deploymentId": deploy_ids[0]}, None, ro=True)
    call(s, tick, "DescribeCommands", {"commandIds": [g.uuid(), g.uuid()]}, None, ro=True, who=person)
    sessions.append(s)

    # 5: day-two changes by a person in the console
    s, tick = _Session(account, region), _clock(g, fracs[4])
    eip = f"{rng.choice(('198.51.100', '203.0.113'))}.{rng.randint(1, 254)}"
    user_arn = f"arn:aws:iam::{account}:user/alice"
    call(
        s,
        tick,
        "UpdateLayer",
        {
            "layerId": layer_ids[0],
            "autoAssignElasticIps": True,
            "customRecipes": {"configure": [f"{name}::configure"]},
        },
        who=person,
    )
    call(s, tick, "AssociateElasticIp", {"elasticIp": eip, "instanceId": instance_ids[0]}, who=person)
    call(
        s,
        tick,
        "AttachElasticLoadBalancer",
        {"elasticLoadBalancerName": f"{name}-elb", "layerId": layer_ids[0]},
        who=person,
    )
    call(
        s,
        tick,
        "RegisterVolume",
        {"ec2VolumeId": "vol-0" + g.token(16, "0123456789abcdef"), "stackId": stack_id},
        {"volumeId": volume_id},
        who=person,
    )
    call(
        s,
        tick,
        "CreateUserProfile",
        {
            "iamUserArn": user_arn,
            "sshUsername": "alice",
            "sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + g.token(43) + " alice@laptop",
            "allowSelfManagement": True,
        },
        {"iamUserArn": user_arn},
        who=person,
    )
    call(
        s,
        tick,
        "SetPermission",
        {
            "stackId": stack_id,
            "iamUserArn": user_arn,
            "allowSsh": True,
            "allowSudo": False,
            "level": "deploy",
        },
        who=person,
    )
    s.lookalikes.append(_lookalike(g, account, region, tick(), 5))
    sessions.append(s)

    # 6: an operator without rights, a recipe run, stop/reboot
    s, tick = _Session(account, region), _clock(g, fracs[5])
    fed = g.actor(account, "carol")
    call(
        s,
        tick,
        "StopInstance",
        {"instanceId": instance_ids[2], "force": False},
        who=fed,
        error=(
            "AccessDenied",
            f"User: arn:aws:sts::{account}:federated-user/carol is not authorized to "
            f"perform: opsworks:StopInstance on resource: arn:aws:opsworks:{region}:{account}:"
            f"stack/{stack_id}/",
        ),
    )
    call(
        s,
        tick,
        "CreateDeployment",
        {
            "stackId": stack_id,
            "instanceIds": [instance_ids[2]],
            "layerIds": [layer_ids[1]],
            "command": {"name": "execute_recipes", "args": {"recipes": [f"{name}::rotate_logs"]}},
        },
        {"deploymentId": deploy_ids[1]},
    )
    call(s, tick, "StopInstance", {"instanceId": instance_ids[2]})
    call(s, tick, "RebootInstance", {"instanceId": instance_ids[1]})
    sessions.append(s)

    # 7: teardown
    s, tick = _Session(account, region), _clock(g, fracs[6])
    call(s, tick, "DescribeInstances", {"instanceIds": instance_ids}, None, ro=True)
    call(
        s,
        tick,
        "DeleteStack",
        {"stackId": stack_id},
        error=("ValidationException", "Cannot delete stack while it has apps, instances or layers"),
    )
    for iid in instance_ids:
        call(s, tick, "StopInstance", {"instanceId": iid, "force": True})
        call(s, tick, "DeleteInstance", {"instanceId": iid, "deleteElasticIp": True, "deleteVolumes": True})
    call(s, tick, "DeleteApp", {"appId": app_id})
    for lid in layer_ids:
        call(s, tick, "DeleteLayer", {"layerId": lid})
    call(s, tick, "DeleteStack", {"stackId": stack_id})
    sessions.append(s)
    return sessions


def _cm_story(
    g: _Gen, account: str, region: str, name: str, engine: str, fracs: Sequence[float]
) -> list[_Session]:
    """An OpsWorks CM server's life: CreateServer .. DeleteServer over five sessions."""
    src = "opsworks-cm.amazonaws.com"
    main = g.actor(account, "deploy-automation")
    person = g.actor(account, "AWSReservedSSO")
    chef = engine == "ChefAutomate"
    sessions: list[_Session] = []

    call = _caller(g, src, main, region)

    admin = "CHEF_AUTOMATE_ADMIN_PASSWORD" if chef else "PUPPET_ADMIN_PASSWORD"
    req_attrs = [{"name": admin, "value": g.secret()}]
    if chef:
        req_attrs.append({"name": "CHEF_AUTOMATE_PIVOTAL_KEY", "value": g.secret()})
    else:
        req_attrs.append(
            {"name": "PUPPET_R10K_REMOTE", "value": f"https://git.example.com/example/{name}-control.git"}
        )
        req_attrs.append({"name": "PUPPET_R10K_PRIVATE_KEY", "value": g.secret()})
    arn = f"arn:aws:opsworks-cm:{region}:{account}:server/{name}/{g.uuid()}"
    base: Json = {
        "serverName": name,
        "engineModel": "Single" if chef else "Monolithic",
        "engine": engine,
        "engineVersion": "2" if chef else "2019",
        "instanceType": "m5.large",
        "instanceProfileArn": f"arn:aws:iam::{account}:instance-profile/aws-opsworks-cm-ec2-role",
        "serviceRoleArn": f"arn:aws:iam::{account}:role/service-role/aws-opsworks-cm-service-role",
        "backupRetentionCount": 10,
        "preferredMaintenanceWindow": "Sun:03:00",
        "preferredBackupWindow": "Wed:08:00",
        "subnetIds": ["subnet-0" + g.token(16, "0123456789abcdef")],
        "keyPair": f"{name}-key",
    }
    # 1: a failed create (bad domain), then the real one
    s, tick = _Session(account, region), _clock(g, fracs[0])
    call(
        s,
        tick,
        "CreateServer",
        {
            **base,
            "engineAttributes": [{"name": admin, "value": g.secret()}],
            "customDomain": f"{name}.example.com",
            "customCertificate": "-----BEGIN CERT",
            "customPrivateKey": g.secret(),
        },
        who=person,
        error=("ValidationException", "Custom certificate is not a valid PEM-encoded X509 certificate"),
    )
    t0 = tick()
    created = _java_date(t0)
    resp_attrs = (
        [
            {"name": "CHEF_AUTOMATE_PIVOTAL_KEY", "value": g.secret()},
            {"name": "CHEF_STARTER_KIT", "value": g.secret()},
        ]
        if chef
        else [
            {"name": "PUPPET_STARTER_KIT", "value": g.secret()},
            {"name": "PUPPET_API_CA_CERT", "value": "-----BEGIN CERTIFICATE-----\n" + g.token(64)},
        ]
    )
    server: Json = {
        **base,
        "serverArn": arn,
        "createdAt": created,
        "status": "CREATING",
        "endpoint": f"{name}-{g.token(16, _LOWER_ALNUM)}.{region}.opsworks-cm.io",
        "engineAttributes": resp_attrs,
        "associatePublicIpAddress": True,
        "disableAutomatedBackup": False,
        "securityGroupIds": ["sg-0" + g.token(16, "0123456789abcdef")],
    }
    call(s, tick, "CreateServer", {**base, "engineAttributes": req_attrs}, {"server": server})
    s.lookalikes.append(_lookalike(g, account, region, tick(), 4))
    call(s, tick, "DescribeServers", {"serverName": name}, None, ro=True)
    sessions.append(s)

    # 2: nodes
    s, tick = _Session(account, region), _clock(g, fracs[1])
    key_attr = "CHEF_NODE_PUBLIC_KEY" if chef else "PUPPET_NODE_CSR"
    for n in range(2):
        node = f"web-{n + 1:02d}.{name}.internal"
        attrs = [
            {
                "name": key_attr,
                "value": "-----BEGIN PUBLIC KEY-----\n" + g.token(64) + "\n-----END PUBLIC KEY-----",
            }
        ]
        if chef:
            attrs.insert(0, {"name": "CHEF_ORGANIZATION", "value": "default"})
        token = g.token(40)
        call(
            s,
            tick,
            "AssociateNode",
            {"serverName": name, "nodeName": node, "engineAttributes": attrs},
            {"nodeAssociationStatusToken": token},
            who=g.actor(account, "reporting-lambda"),
        )
        call(
            s,
            tick,
            "DescribeNodeAssociationStatus",
            {"serverName": name, "nodeAssociationStatusToken": token},
            None,
            ro=True,
            who=g.actor(account, "reporting-lambda"),
        )
    sessions.append(s)

    # 3: backup, key rotation
    s, tick = _Session(account, region), _clock(g, fracs[2])
    t = tick()
    backup_id = f"{name}-{t:%Y%m%d%H%M%S}{g.rng.randint(0, 999):03d}"
    call(
        s,
        lambda: t,
        "CreateBackup",
        {"serverName": name, "description": "before upgrade"},
        {
            "backup": {
                "backupId": backup_id,
                "backupArn": f"arn:aws:opsworks-cm:{region}:{account}:backup/{backup_id}",
                "backupType": "MANUAL",
                "createdAt": _java_date(t),
                "description": "before upgrade",
                "engine": engine,
                "engineModel": base["engineModel"],
                "engineVersion": base["engineVersion"],
                "serverName": name,
                "status": "IN_PROGRESS",
                "instanceType": "m5.large",
                "userArn": f"arn:aws:sts::{account}:assumed-role/deploy-automation/session",
            }
        },
    )
    call(s, tick, "DescribeBackups", {"serverName": name}, None, ro=True)
    call(
        s,
        tick,
        "UpdateServerEngineAttributes",
        {"serverName": name, "attributeName": "CHEF_PIVOTAL_KEY" if chef else "PUPPET_R10K_PRIVATE_KEY",
         "attributeValue": g.secret()},
        {"server": {**server, "status": "HEALTHY", "engineAttributes": []}},
        who=person,
    )
    sessions.append(s)

    # 4: user data export, a throttled describe, maintenance settings
    s, tick = _Session(account, region), _clock(g, fracs[3])
    call(
        s,
        tick,
        "ExportServerEngineAttribute",
        {
            "exportAttributeName": "Userdata",
            "serverName": name,
            "inputAttributes": [
                {"name": "RunList", "value": "role[web]"},
                {"name": "OrganizationName", "value": "default"},
                {"name": "NodeEnvironment", "value": "production"},
            ],
        },
        {
            "serverName": name,
            "engineAttribute": {
                "name": "Userdata",
                "value": g.secret() + "IyEvYmluL2Jhc2gKIyBjaGVmIGJvb3RzdHJhcAo=",
            },
        },
        ro=True,
    )
    call(
        s,
        tick,
        "DescribeServers",
        {"serverName": name},
        None,
        ro=True,
        who=person,
        error=("ThrottlingException", "Rate exceeded"),
    )
    call(
        s,
        tick,
        "UpdateServer",
        {"serverName": name, "preferredMaintenanceWindow": "Sat:04:00"},
        {"server": {**server, "status": "HEALTHY", "preferredMaintenanceWindow": "Sat:04:00"}},
        who=person,
    )
    sessions.append(s)

    # 5: teardown
    s, tick = _Session(account, region), _clock(g, fracs[4])
    call(s, tick, "DeleteBackup", {"backupId": backup_id}, {})
    call(s, tick, "DeleteServer", {"serverName": name}, {})
    call(
        s,
        tick,
        "DescribeServers",
        {"serverName": name},
        None,
        ro=True,
        error=("ResourceNotFoundException", f"There is no server with the name '{name}'"),
    )
    sessions.append(s)
    return sessions


def _docs_sessions(g: _Gen, account: str) -> list[_Session]:
    """Records shaped like the AWS docs' OpsWorks examples (1.01 and the 1.05 OpsWorks CM ones)."""
    rng = g.rng
    region = "us-west-2"
    s, tick = _Session(account, region), _clock(g, 0.45)
    user = g.actor(account, "ci-deployer")
    stack = g.uuid()

    def old(name: str, req: Json) -> Json:
        ts = tick()
        rec = {
            "awsRegion": region,
            "eventID": g.uuid(),
            "eventName": name,
            "eventSource": "opsworks.amazonaws.com",
            "eventTime": _fmt(ts),
            "eventVersion": "1.01",
            "requestID": str(uuid.UUID(int=rng.getrandbits(128), version=1)),
            "requestParameters": req,
            "responseElements": None,
            "sourceIPAddress": g.ip(),
            "userAgent": "aws-sdk-ruby/2.0.0 ruby/2.1 x86_64-linux",
            "userIdentity": {
                "accessKeyId": user.access_key,
                "accountId": account,
                "arn": f"arn:aws:iam::{account}:user/{user.name}",
                "principalId": user.principal,
                "type": "IAMUser",
                "userName": user.name,
            },
        }
        s.records.append(rec)
        return rec

    old(
        "CreateLayer",
        {
            "attributes": {},
            "customRecipes": {},
            "name": f"{_fmt(tick())[:10]} {g.token(4, _LOWER_ALNUM)}",
            "shortname": "custom" + g.token(12, "0123456789abcdef"),
            "stackId": stack,
            "type": "custom",
        },
    )
    old("DescribeInstances", {"instanceIds": [g.uuid()]})

    cm, cm_tick = _Session(account, region), _clock(g, 0.05)
    for engine, name in (("Chef", "OpsChef-test-server"), ("Puppet", "test-puppet-server")):
        ts = cm_tick()
        attrs = (
            [
                {"name": "CHEF_STARTER_KIT", "value": "*** Redacted ***"},
                {"name": "CHEF_PIVOTAL_KEY", "value": "*** Redacted ***"},
                {"name": "CHEF_DELIVERY_ADMIN_PASSWORD", "value": "*** Redacted ***"},
            ]
            if engine == "Chef"
            else [
                {"name": "PUPPET_ADMIN_PASSWORD", "value": "*** Redacted ***"},
                {"name": "PUPPET_API_CA_CERT", "value": "*** Redacted ***"},
            ]
        )
        common = {
            "serverName": name,
            "engineModel": "Single",
            "engine": engine,
            "instanceProfileArn": f"arn:aws:iam::{account}:instance-profile/aws-opsworks-cm-ec2-role",
            "backupRetentionCount": 3,
            "serviceRoleArn": f"arn:aws:iam::{account}:role/service-role/aws-opsworks-cm-service-role",
        }
        cm.records.append(
            {
                "eventVersion": "1.05",
                "userIdentity": {
                    "type": "AssumedRole",
                    "principalId": "ID number:OpsWorksCMUser",
                    "arn": f"arn:aws:sts::{account}:assumed-role/Admin/OpsWorksCMUser",
                    "accountId": account,
                    "accessKeyId": "ID number",
                    "sessionContext": {
                        "attributes": {
                            "mfaAuthenticated": "false",
                            "creationDate": _fmt(ts - timedelta(minutes=15)),
                        },
                        "sessionIssuer": {
                            "type": "Role",
                            "principalId": "ID number",
                            "arn": f"arn:aws:iam::{account}:role/Admin",
                            "accountId": account,
                            "userName": "Admin",
                        },
                    },
                },
                "eventTime": _fmt(ts),
                "eventSource": "opsworks-cm.amazonaws.com",
                "eventName": "CreateServer",
                "awsRegion": region,
                "sourceIPAddress": g.ip(),
                "userAgent": "console.amazonaws.com",
                "requestParameters": {
                    **common,
                    "engineVersion": "12",
                    "preferredMaintenanceWindow": "Fri:21:00",
                    "instanceType": "t2.medium",
                    "subnetIds": ["subnet-1e111f11"],
                    "preferredBackupWindow": "Wed:08:00",
                },
                "responseElements": {
                    "server": {
                        "endpoint": f"{name}-{g.token(16, _LOWER_ALNUM)}.{region}.opsworks-cm.io",
                        "createdAt": _java_date(ts - timedelta(seconds=1)),
                        "serviceRoleArn": common["serviceRoleArn"],
                        "preferredBackupWindow": "Wed:08:00",
                        "status": "CREATING",
                        "subnetIds": ["subnet-1e111f11"],
                        "engine": engine,
                        "instanceType": "t2.medium",
                        "serverName": name,
                        "serverArn": f"arn:aws:opsworks-cm:{region}:{account}:server/{name}/"
                        + g.docs_style_id(),
                        "engineModel": "Single",
                        "backupRetentionCount": 3,
                        "engineAttributes": attrs,
                        "engineVersion": "12.11.1",
                        "instanceProfileArn": common["instanceProfileArn"],
                        "preferredMaintenanceWindow": "Fri:21:00",
                    }
                },
                "requestID": g.docs_style_id(),
                "eventID": g.docs_style_id(),
                "eventType": "AwsApiCall",
                "recipientAccountId": account,
            }
        )
    return [s, cm]


# --------------------------------------------------------------------------------------------------
# The bucket
# --------------------------------------------------------------------------------------------------


def _floor5(ts: datetime) -> datetime:
    return ts.replace(minute=ts.minute - ts.minute % 5, second=0, microsecond=0)


def _account_prefix(account: str, org: str | None) -> str:
    return f"AWSLogs/{org}/{account}/" if org else f"AWSLogs/{account}/"


def _log_key(
    g: _Gen, account: str, region: str, delivered: datetime, org: str | None, prefix: str = ""
) -> str:
    return (
        f"{prefix}{_account_prefix(account, org)}CloudTrail/{region}/{delivered:%Y/%m/%d}/"
        f"{account}_CloudTrail_{region}_{delivered:%Y%m%dT%H%MZ}_{g.token(16)}.json.gz"
    )


def _dump(records: list[Json]) -> bytes:
    body = json.dumps({"Records": records}, separators=(",", ":"))
    return gzip.compress(body.encode(), compresslevel=6, mtime=0)


def write_sample_bucket(
    root: Path,
    *,
    seed: int = 7,
    files: int = 300,
    accounts: Sequence[str] = DEFAULT_ACCOUNTS,
    organization_id: str | None = None,
    start: datetime = DEFAULT_START,
    days: int = 30,
    bucket: str = "trail-bucket",
) -> SampleManifest:
    """Write a trail bucket's worth of objects under ``root`` and say what is in it.

    ``files`` is the number of CloudTrail log files (OpsWorks-bearing files included; about 5-10% of
    300). The OpsWorks story grows with ``files`` (two Stacks and two CM stories per 300 files), so
    ``files`` must leave room for it: at least 40. ``organization_id`` (``o-...``) lays keys out as an
    organization trail does. Existing files under ``root`` are left alone; use an empty folder.
    ``bucket`` is the bucket the digests say they and the log files were delivered to.
    """
    if days < 1 or not accounts:
        raise ValueError("days must be >= 1 and accounts not empty")
    rng = Random(seed)
    g = _Gen(rng, accounts, start, days)
    org = organization_id
    acct = list(accounts)

    # 1. the OpsWorks stories, one session per log file
    n_stories = max(1, round(files / 300))
    sessions: list[_Session] = []
    for i in range(n_stories):
        a0, a1 = acct[i % len(acct)], acct[(i + 1) % len(acct)]
        sessions += _stack_story(
            g,
            a0,
            "us-east-1",
            f"web-prod{i or ''}",
            (0.02, 0.06, 0.10, 0.14, 0.30, 0.50, 0.70),
            "deploy-automation",
        )
        sessions += _stack_story(
            g, a1, "us-west-2", f"api-staging{i or ''}", (0.20, 0.25, 0.35, 0.60, 0.78, 0.86, 0.95), "alice"
        )
        sessions += _cm_story(
            g, a0, "us-east-1", f"chef-prod{i or ''}", "ChefAutomate", (0.0, 0.03, 0.06, 0.08, 0.11)
        )
        sessions += _cm_story(
            g, a1, "eu-west-1", f"puppet-prod{i or ''}", "Puppet", (0.01, 0.04, 0.40, 0.55, 0.90)
        )
    sessions += _docs_sessions(g, acct[0])
    min_files = len(sessions) + 2 + 10
    if files < min_files:
        raise ValueError(f"files={files} leaves no room for the OpsWorks story: use at least {min_files}")

    # 2. log files: (key, records) -- OpsWorks sessions mixed with other services
    log_files: list[tuple[str, list[Json]]] = []
    lookalike_ids: list[str] = []

    def fill(account: str, region: str, delivered: datetime, n: int) -> list[Json]:
        out = []
        for _ in range(n):
            ts = delivered - timedelta(seconds=rng.randint(30, 900))
            out.append(_filler(g, account, region, ts))
        return out

    def filler_count() -> int:
        return rng.choice((1, 2, 3, 5, 8, 12, 18, 25, 35, 50))

    for i, s in enumerate(sessions):
        delivered = _floor5(max(_parse_time(r["eventTime"]) for r in s.records)) + timedelta(minutes=5)
        prefix = CUSTOM_PREFIX if i == 3 else ""  # one OpsWorks file under the prefix with ' ' and '+'
        records = s.records + s.lookalikes + fill(s.account, s.region, delivered, filler_count())
        lookalike_ids += [r["eventID"] for r in s.lookalikes]
        log_files.append((_log_key(g, s.account, s.region, delivered, org, prefix), records))

    # redelivery: one whole session again in a later file, and one single event
    dup_ids: list[str] = []
    for src_idx, subset in ((3, None), (1, 0)):
        recs0 = log_files[src_idx][1]
        ops = [r for r in recs0 if r.get("eventSource") in OPSWORKS_SOURCES]
        ops = ops if subset is None else ops[subset : subset + 1]
        s = sessions[src_idx]
        delivered = _floor5(max(_parse_time(r["eventTime"]) for r in ops)) + timedelta(minutes=15)
        records = [json.loads(json.dumps(r)) for r in ops] + fill(
            s.account, s.region, delivered, filler_count()
        )
        dup_ids += [r["eventID"] for r in ops]
        log_files.append((_log_key(g, s.account, s.region, delivered, org), records))

    span = int((g.end - g.start).total_seconds())
    n_filler = files - len(log_files)
    for i in range(n_filler):
        account = rng.choice(acct)
        region = rng.choice(REGIONS)
        delivered = _floor5(g.start + timedelta(seconds=rng.randrange(span)))
        records = fill(account, region, delivered, filler_count())
        if rng.random() < 0.04:
            la = _lookalike(g, account, region, delivered - timedelta(seconds=rng.randint(30, 600)))
            records.append(la)
            lookalike_ids.append(la["eventID"])
        prefix = CUSTOM_PREFIX if i < 2 else ""
        log_files.append((_log_key(g, account, region, delivered, org, prefix), records))

    # 3. write them
    root.mkdir(parents=True, exist_ok=True)
    expected: dict[str, ExpectedEvent] = {}
    secrets: list[PlantedSecret] = []
    total_records = opsworks_records = 0
    for key, records in log_files:
        rng.shuffle(records)  # files are not ordered
        _write(root, key, _dump(records))
        total_records += len(records)
        for r in records:
            if r.get("eventSource") not in OPSWORKS_SOURCES:
                continue
            opsworks_records += 1
            eid = r["eventID"]
            if eid in expected:
                expected[eid].keys.append(key)
                continue
            ident = r.get("userIdentity") or {}
            expected[eid] = ExpectedEvent(
                event_id=eid,
                event_source=r["eventSource"],
                event_name=r["eventName"],
                event_time=r["eventTime"],
                account_id=r.get("recipientAccountId") or ident.get("accountId", ""),
                region=r["awsRegion"],
                keys=[key],
                error_code=r.get("errorCode"),
                read_only=r.get("readOnly"),
                resources=resources_of(r),
            )
            secrets += [PlantedSecret(v, eid, p) for p, v in _secrets_in(r)]

    # 4. the rest of a trail bucket: digests signed with the run's demo key, chained per prefix, account
    # and Region (one per day with deliveries), Insights files, write checks, folders
    signatures = write_signed_digests(root, bucket, [k for k, _ in log_files], daily=True)
    skipped: dict[str, str] = dict.fromkeys(signatures, "digest")
    for account in acct:
        key, body = _insight(g, account, org)
        _write(root, key, body)
        skipped[key] = "insight"
        check = f"{_account_prefix(account, org)}Config/ConfigWritabilityCheckFile"
        _write(root, check, b"")
        skipped[check] = "not-a-log-file"
    folders = _folder_keys(root)
    skipped.update(dict.fromkeys(folders, "folder"))

    return SampleManifest(
        seed=seed,
        organization_id=org,
        accounts=acct,
        log_keys=sorted(k for k, _ in log_files),
        skipped_keys=dict(sorted(skipped.items())),
        folder_keys=folders,
        expected=dict(sorted(expected.items())),
        secrets=secrets,
        duplicate_event_ids=sorted(dup_ids),
        lookalike_event_ids=sorted(lookalike_ids),
        files=len(log_files),
        records=total_records,
        opsworks_records=opsworks_records,
        opsworks_events=len(expected),
        bucket=bucket,
        digest_metadata=dict(sorted(signatures.items())),
        public_keys=demo_signer().listing(),
    )


def _parse_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _write(root: Path, key: str, body: bytes) -> None:
    path = root.joinpath(*key.split("/"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)


def _insight(g: _Gen, account: str, org: str | None) -> tuple[str, bytes]:
    """An Insights file about OpsWorks call rates: mentions OpsWorks, yet is no log file to ingest."""
    region = "us-east-1"
    ts = g.start + timedelta(days=1, hours=13, minutes=5)
    shared = g.uuid()
    recs = []
    for state, t in (("Start", ts), ("End", ts + timedelta(minutes=10))):
        recs.append(
            {
                "eventVersion": "1.08",
                "eventTime": _fmt(t),
                "awsRegion": region,
                "eventID": g.uuid(),
                "eventType": "AwsCloudTrailInsight",
                "recipientAccountId": account,
                "sharedEventID": shared,
                "insightDetails": {
                    "state": state,
                    "eventSource": "opsworks.amazonaws.com",
                    "eventName": "DescribeInstances",
                    "insightType": "ApiCallRateInsight",
                    "insightContext": {
                        "statistics": {
                            "baseline": {"average": 0.0123},
                            "insight": {"average": 4.2},
                            "insightDuration": 10,
                            "baselineDuration": 10070,
                        }
                    },
                },
                "eventCategory": "Insight",
            }
        )
    delivered = ts + timedelta(minutes=15)
    key = (
        f"{_account_prefix(account, org)}CloudTrail-Insight/{region}/{ts:%Y/%m/%d}/"
        f"{account}_CloudTrail-Insight_{region}_{delivered:%Y%m%dT%H%MZ}_{g.token(16)}.json.gz"
    )
    return key, _dump(recs)


def _folder_keys(root: Path) -> list[str]:
    """Zero-byte "folder" keys a console user might have created: the top of each trail's tree."""
    keys: set[str] = set()
    for path in root.rglob("*"):
        if not path.is_dir():
            continue
        parts = path.relative_to(root).parts
        if "AWSLogs" not in parts:
            keys.add("/".join(parts) + "/")
            continue
        depth = len(parts) - parts.index("AWSLogs")
        if depth <= 2 or parts[-1] in ("CloudTrail", "CloudTrail-Digest", "CloudTrail-Insight"):
            keys.add("/".join(parts) + "/")
    return sorted(keys)


def upload_to_s3(root: Path, s3_client: Any, bucket: str,
                 metadata: Mapping[str, Mapping[str, str]] | None = None) -> list[str]:
    """Upload the tree under ``root`` to ``bucket`` (keys = relative paths), plus zero-byte folder keys;
    ``metadata`` (a manifest's digest_metadata) is set as each named object's user metadata.

    ``s3_client`` is a boto3 S3 client (or moto's). Returns every key written, sorted.
    """
    keys: list[str] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        key = path.relative_to(root).as_posix()
        extra = {"Metadata": dict(metadata[key])} if metadata and key in metadata else {}
        s3_client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes(), **extra)
        keys.append(key)
    for key in _folder_keys(root):
        s3_client.put_object(Bucket=bucket, Key=key, Body=b"")
        keys.append(key)
    return sorted(keys)


# --------------------------------------------------------------------------------------------------
# One large file, streamed
# --------------------------------------------------------------------------------------------------

_T, _R, _E = "@@TIME@@", "@@REQUEST@@", "@@EVENT@@"


def _template(record: Json) -> tuple[str, str, str, str]:
    """Split a rendered record around its eventTime, requestID and eventID (in that order)."""
    rec = dict(record, eventTime=_T, requestID=_R, eventID=_E)
    text = json.dumps(rec, separators=(",", ":"))
    a, rest = text.split(f'"{_T}"')
    b, rest = rest.split(f'"{_R}"')
    c, d = rest.split(f'"{_E}"')
    return a, b, c, d


def _template_pool(
    seed: int, start: datetime
) -> tuple[list[tuple[str, str, str, str]], list[tuple[str, str, str, str]]]:
    """(OpsWorks templates, other templates) rendered from the same builders as the bucket."""
    rng = Random(seed)
    g = _Gen(rng, DEFAULT_ACCOUNTS, start, 1)
    ops: list[Json] = []
    for i, account in enumerate(DEFAULT_ACCOUNTS):
        for s in _stack_story(g, account, REGIONS[i], f"bench{i}", (0.1,) * 7, "deploy-automation"):
            ops += s.records
        for s in _cm_story(g, account, REGIONS[i], f"bench-cm{i}", ("ChefAutomate", "Puppet")[i], (0.1,) * 5):
            ops += s.records
    others = []
    for _ in range(400):
        account, region = rng.choice(DEFAULT_ACCOUNTS), rng.choice(REGIONS)
        others.append(_filler(g, account, region, start))
    others += [_lookalike(g, DEFAULT_ACCOUNTS[0], "us-east-1", start, w) for w in range(6)]
    # time/request/event are placed in order in every builder; skip any record where they are not
    keep = [r for r in ops + others if "requestID" in r and "eventID" in r]
    return (
        [_template(r) for r in keep if r["eventSource"] in OPSWORKS_SOURCES],
        [_template(r) for r in keep if r["eventSource"] not in OPSWORKS_SOURCES],
    )


def write_large_trail_file(
    path: Path,
    *,
    uncompressed_bytes: int,
    opsworks_fraction: float,
    seed: int = 11,
    compresslevel: int = 6,
) -> LargeFileStats:
    """Stream one ``{"Records":[...]}`` .json.gz of about ``uncompressed_bytes`` (never all in memory).

    Records come from a pool of rendered templates (the same shapes as :func:`write_sample_bucket`,
    about 1-2 KB each) with fresh eventTime / requestID / eventID per record; each record is an
    OpsWorks one with probability ``opsworks_fraction``. The file ends at the first record boundary
    past the requested size.
    """
    if not 0.0 <= opsworks_fraction <= 1.0:
        raise ValueError("opsworks_fraction must be within [0, 1]")
    rng = Random(seed)
    start = DEFAULT_START + timedelta(days=rng.randrange(28))
    ops, others = _template_pool(seed, start)
    times = [_fmt(start + timedelta(seconds=s)) for s in range(3600)]
    hexd = "0123456789abcdef"

    def uuid_prefix() -> str:
        h = "".join(rng.choices(hexd, k=19))
        return f"{h[:8]}-{h[8:12]}-4{h[12:15]}-{rng.choice('89ab')}{h[15:18]}-"

    eid_prefix, rid_prefix = uuid_prefix(), uuid_prefix()
    head, tail = b'{"Records":[', b"]}"
    written = len(head) + len(tail)
    records = n_ops = 0
    n_o, n_x = len(ops), len(others)
    rnd = rng.random
    with (
        path.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=compresslevel, mtime=0) as gz,
    ):
        gz.write(head)
        while written < uncompressed_bytes:
            chunk: list[str] = []
            size = 0
            while size < 1 << 20 and written + size < uncompressed_bytes:
                if rnd() < opsworks_fraction:
                    a, b, c, d = ops[int(rnd() * n_o)]
                    n_ops += 1
                else:
                    a, b, c, d = others[int(rnd() * n_x)]
                t = times[(records >> 8) % 3600]
                s = f'{a}"{t}"{b}"{rid_prefix}{records:012x}"{c}"{eid_prefix}{records:012x}"{d}'
                chunk.append(s)
                size += len(s) + 1
                records += 1
            text = ",".join(chunk)
            if written > len(head) + len(tail):
                text = "," + text
            data = text.encode()
            gz.write(data)
            written += len(data)
        gz.write(tail)
    return LargeFileStats(
        records=records,
        opsworks_records=n_ops,
        uncompressed_bytes=written,
        compressed_bytes=path.stat().st_size,
    )


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------


def main(argv: Iterable[str] | None = None) -> int:
    """``bucket DIR`` or ``large FILE``; prints a JSON summary and the time taken."""
    parser = argparse.ArgumentParser(
        prog="python -m workshop.synthetic", description="Write realistic sample CloudTrail data."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("bucket", help="write a sample trail bucket folder and its manifest")
    b.add_argument("dir", type=Path)
    b.add_argument("--seed", type=int, default=7)
    b.add_argument("--files", type=int, default=300)
    b.add_argument("--org", action="store_true", help="lay keys out as an organization trail")
    b.add_argument("--manifest", type=Path, help="default: DIR.manifest.json next to DIR")
    lg = sub.add_parser("large", help="stream one large .json.gz trail file")
    lg.add_argument("file", type=Path)
    lg.add_argument("--mb", type=float, default=64.0, help="uncompressed size in MiB")
    lg.add_argument("--opsworks-fraction", type=float, default=0.01)
    lg.add_argument("--seed", type=int, default=11)
    lg.add_argument("--compresslevel", type=int, default=6)
    args = parser.parse_args(list(argv) if argv is not None else None)

    began = time.perf_counter()
    summary: dict[str, Any]
    if args.command == "bucket":
        org = "o-a1b2c3d4e5" if args.org else None
        m = write_sample_bucket(args.dir, seed=args.seed, files=args.files, organization_id=org)
        manifest = args.manifest or args.dir.with_name(args.dir.name + ".manifest.json")
        write_manifest(m, manifest)
        summary = {
            "dir": str(args.dir),
            "manifest": str(manifest),
            "files": m.files,
            "records": m.records,
            "opsworks_records": m.opsworks_records,
            "opsworks_events": m.opsworks_events,
            "files_with_opsworks": len(m.keys_with_opsworks()),
            "skipped": len(m.skipped_keys),
            "secrets": len(m.secrets),
        }
    else:
        args.file.parent.mkdir(parents=True, exist_ok=True)
        st = write_large_trail_file(
            args.file,
            uncompressed_bytes=int(args.mb * 1024 * 1024),
            opsworks_fraction=args.opsworks_fraction,
            seed=args.seed,
            compresslevel=args.compresslevel,
        )
        summary = {"file": str(args.file), **dataclasses.asdict(st)}
    summary["seconds"] = round(time.perf_counter() - began, 2)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
