"""Seeded ids and CloudTrail record shapes: how a call by someone becomes a management event.

This module owns the shapes CloudTrail gives a call: ``userIdentity`` per caller type, a record's keys
in CloudTrail's order, the user agents and TLS sessions callers use. :class:`RecordMaker` is also the
one source of randomness: every id, secret and choice in the sample data is drawn through it, in the
order the code asks, which is what makes a seed give the same bytes every time.
"""

from __future__ import annotations

import string
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from random import Random
from typing import Any

Json = dict[str, Any]

#: Every planted secret value starts with this; no stored item or log line may contain it.
SECRET_MARKER = "SECRET-"

ALPHABETS = {
    "alnum": string.ascii_letters + string.digits,
    "upper": string.ascii_uppercase + string.digits,
    "lower": string.ascii_lowercase + string.digits,
    "hex": "0123456789abcdef",
    "digits": "0123456789",
}

#: User agents by kind of client; a person or role uses the agents of its kinds (people.py).
AGENTS: dict[str, tuple[str, ...]] = {
    "cli": (
        "aws-cli/2.15.30 Python/3.11.8 Linux/5.10.213-201.855.amzn2.x86_64 exe/x86_64.amzn.2 prompt/off",
        "aws-cli/2.13.4 Python/3.11.4 Darwin/23.4.0 exe/x86_64 prompt/off",
    ),
    "boto": (
        "Boto3/1.34.84 md/Botocore#1.34.84 ua/2.0 os/linux#5.10.213 md/arch#x86_64 lang/python#3.11.8 "
        "md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.84",
        "Boto3/1.28.57 Python/3.9.16 Linux/4.14.336-257.562.amzn2.x86_64 exec-env/AWS_Lambda_python3.9 "
        "Botocore/1.31.57",
    ),
    "terraform": (
        "APN/1.0 HashiCorp/1.0 Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.46.0 "
        "(+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.26.1 os/linux "
        "lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64",
    ),
    # what CloudTrail logs for calls the console makes
    "console": ("console.amazonaws.com", "AWS Internal"),
    "browser": (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    ),
}

#: (tlsVersion, cipherSuite) a direct call's ``tlsDetails`` picks from.
TLS: tuple[tuple[str, str], ...] = (
    ("TLSv1.3", "TLS_AES_128_GCM_SHA256"),
    ("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256"),
    ("TLSv1.3", "TLS_AES_256_GCM_SHA384"),
)


@dataclass(frozen=True)
class Actor:
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


def agents(*kinds: str) -> tuple[str, ...]:
    """The user agents of these kinds of client (``AGENTS``), in order."""
    return tuple(agent for kind in kinds for agent in AGENTS[kind])


def fmt(ts: datetime) -> str:
    """CloudTrail's eventTime format."""
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch_ms(ts: datetime) -> int:
    """Milliseconds since the epoch, as EC2 logs a launch time."""
    return int(ts.timestamp() * 1000)


def java_date(ts: datetime) -> str:
    """The "May 3, 2024, 11:03:45 PM" style some services log (the OpsWorks CM docs omit the 2nd comma)."""
    hour = ts.hour % 12 or 12
    return f"{ts:%b} {ts.day}, {ts.year} {hour}:{ts:%M:%S} {'AM' if ts.hour < 12 else 'PM'}"


class RecordMaker:
    """Seeded draws (ids, secrets, choices), identities and records; one per generated bucket or file.

    ``actors`` (each account's people and roles) is filled in by :func:`workshop.sample_data.new_maker`.
    """

    def __init__(self, rng: Random, accounts: Sequence[str], start: datetime, days: int) -> None:
        self.rng = rng
        self.accounts = list(accounts)
        self.start = start
        self.end = start + timedelta(days=days)
        self.actors: dict[str, list[Actor]] = {}

    # ids ------------------------------------------------------------------------------------------
    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def token(self, n: int, alphabet: str = "alnum") -> str:
        return "".join(self.rng.choices(ALPHABETS[alphabet], k=n))

    def secret(self) -> str:
        return SECRET_MARKER + self.token(24)

    def ip(self) -> str:
        net = self.rng.choice(("198.51.100", "203.0.113", "192.0.2"))
        return f"{net}.{self.rng.randint(1, 254)}"

    def docs_style_id(self) -> str:
        """An id shaped like the OpsWorks CM doc examples': uuid layout, letters beyond hex."""
        return "-".join(self.token(n, "lower") for n in (8, 4, 4, 4, 12))

    def uuid1(self) -> str:
        """A time-based (version 1) UUID, as the OpsWorks docs' request ids are."""
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=1))

    def ec2_id(self, prefix: str) -> str:
        """An EC2-style id: ``ec2_id("vpc")`` is ``vpc-0`` and 16 hex digits."""
        return f"{prefix}-0{self.token(16, 'hex')}"

    def private_ip(self) -> str:
        """An address in 10.0.0.0/16."""
        return f"10.0.{self.rng.randint(0, 255)}.{self.rng.randint(1, 254)}"

    # choices --------------------------------------------------------------------------------------
    def randint(self, low: int, high: int) -> int:
        """An integer in [low, high]."""
        return self.rng.randint(low, high)

    def choice(self, *options: str) -> str:
        """One of ``options``."""
        return self.rng.choice(options)

    def chance(self, probability: float) -> bool:
        """True with this probability."""
        return self.rng.random() < probability

    # actors ---------------------------------------------------------------------------------------
    def actor(self, account: str, name: str) -> Actor:
        """The account's person or role called ``name`` (or whose name starts with it)."""
        found = next((a for a in self.actors[account] if a.name == name or a.name.startswith(name)), None)
        if found is None:
            known = ", ".join(a.name for a in self.actors[account])
            raise ValueError(f"no person or role {name!r} in account {account} (people.py names: {known})")
        return found

    def someone(self, account: str, *, console: bool | None = None, kinds: Sequence[str] = ()) -> Actor:
        """One of the account's people and roles, at random: console users (``console=True``), machines
        (``console=False``), or of these ``kinds`` (``"IAMUser"``, ``"Root"`` ...)."""
        people = self.actors[account]
        if console is not None:
            return self.rng.choice([p for p in people if p.console == console])
        return self.rng.choice([p for p in people if p.kind in kinds])

    def service(self, account: str, principal: str) -> Actor:
        return Actor(
            "AWSService", account, principal, invoked_by=principal, agents=(principal,), ips=(principal,)
        )

    def service_role(self, account: str, role: str, service: str) -> Actor:
        """A service acting through its service role (OpsWorks calling EC2 for the user)."""
        return Actor(
            "AssumedRole",
            account,
            role,
            "AROA" + self.token(17, "upper"),
            "ASIA" + self.token(16, "upper"),
            session=service.split(".")[0].title(),
            invoked_by=service,
            agents=(service,),
            ips=(service,),
        )

    def identity(self, a: Actor, ts: datetime) -> Json:
        created = fmt(ts - timedelta(minutes=self.rng.randint(1, 55)))
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
        actor: Actor,
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
            "eventTime": fmt(ts),
            "eventSource": source,
            "eventName": name,
            "awsRegion": region,
            "sourceIPAddress": rng.choice(actor.ips) if actor.ips else self.ip(),
            "userAgent": rng.choice(actor.agents) if actor.agents else rng.choice(AGENTS["cli"]),
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
            rec["vpcEndpointId"] = "vpce-" + self.token(17, "hex")
        rec["eventCategory"] = "Management"
        if actor.kind != "AWSService" and not actor.invoked_by:
            tls, cipher = rng.choice(TLS)
            host = f"{source.split('.')[0]}.{region}.amazonaws.com"
            rec["tlsDetails"] = {"tlsVersion": tls, "cipherSuite": cipher, "clientProvidedHostHeader": host}
        if actor.console:
            rec["sessionCredentialFromConsole"] = "true"
        return rec
