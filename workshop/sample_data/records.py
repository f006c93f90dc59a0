"""Seeded ids and CloudTrail record shapes: how a call by someone becomes a management event.

The tables (agents, TLS sessions, people and roles) are data (``actors.yaml``); this module owns
the shapes CloudTrail gives them: ``userIdentity`` per caller type and a record's keys in
CloudTrail's order. :mod:`workshop.sample_data.script` decides who calls what, and when.
"""

from __future__ import annotations

import string
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from random import Random
from typing import Any

from workshop.sample_data import load

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

_ACTORS = load("actors")
AGENTS: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in _ACTORS["agents"].items()}
TLS: tuple[tuple[str, str], ...] = tuple((v, c) for v, c in _ACTORS["tls"])


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


def fmt(ts: datetime) -> str:
    """CloudTrail's eventTime format."""
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def java_date(ts: datetime) -> str:
    """The "May 3, 2024, 11:03:45 PM" style some services log (the OpsWorks CM docs omit the 2nd comma)."""
    hour = ts.hour % 12 or 12
    return f"{ts:%b} {ts.day}, {ts.year} {hour}:{ts:%M:%S} {'AM' if ts.hour < 12 else 'PM'}"


class RecordMaker:
    """Seeded builders for ids, identities and records; one per generated bucket or file.

    ``actors`` (each account's people and roles) is filled in by the script that owns the tables.
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

    # actors ---------------------------------------------------------------------------------------
    def actor(self, account: str, name: str) -> Actor:
        """The account's person or role called ``name`` (or whose name starts with it)."""
        return next(a for a in self.actors[account] if a.name == name or a.name.startswith(name))

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
