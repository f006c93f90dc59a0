"""Who made a call, as a person would say it, from a normalized event's actor map.

CloudTrail names the credentials, not always the person: someone signed in through IAM Identity Center is
the role `AWSReservedSSO_<permission set>_<hash>` with their user name (usually an e-mail) as the session;
a federated user's sessionIssuer is the broker that federated them. `who` puts the person first and the
way they came alongside, and keys callers by account plus principal, so two `alice` users of two accounts
stay two callers while the sessions of one automation role stay one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.keys import principal_key

_SSO_PREFIX = "AWSReservedSSO_"


@dataclass(frozen=True)
class Who:
    key: str
    """Account plus principal: the user, root, federated user, service, or role (for a role whose
    sessions are people, the role plus the person). What callers are grouped by."""
    name: str
    """The person or principal: `bob@example.com`, `alice`, `deploy-automation`, `opsworks.amazonaws.com`."""
    how: str
    """How they came: `IAM user`, `Identity Center, permission set AdministratorAccess`,
    `role deploy-automation, session gitlab-runner-1`, `federated by IAM user federation-broker`."""
    account: str = ""
    role: str = ""
    session: str = ""
    source_identity: str = ""
    on_behalf_of: str = ""

    @property
    def label(self) -> str:
        """The caller in one line: `bob@example.com (Identity Center, ..., 111122223333)`."""
        where = f", {self.account}" if self.account else ""
        return f"{self.name} ({self.how}{where})"

    @property
    def short(self) -> str:
        """One call's caller, for tables that show the account in a column of their own: a role's session
        is named when the role, not a person, is the caller."""
        session = f", session {self.session}" if self.session and self.session not in self.how \
            and self.session != self.name else ""
        return f"{self.name} ({self.how}{session})"

    def names(self) -> set[str]:
        """Every name a person could ask for this caller by, lower-cased."""
        found = {self.name, self.role, self.session, self.source_identity, self.on_behalf_of}
        return {n.casefold() for n in found if n}


def who(actor: Mapping[str, Any]) -> Who:
    kind = str(actor.get("type") or "")
    arn = str(actor.get("arn") or "")
    account = str(actor.get("account_id") or _arn_account(arn))
    source_identity = str(actor.get("source_identity") or "")
    on_behalf_of = str(actor.get("on_behalf_of") or "")
    extras = {"source_identity": source_identity, "on_behalf_of": on_behalf_of}
    if kind == "AssumedRole" or ":assumed-role/" in arn:
        return _assumed_role(actor, arn, account, extras)
    if kind == "FederatedUser" or ":federated-user/" in arn:
        name = arn.rsplit("/", 1)[-1] if ":federated-user/" in arn else str(actor.get("principal_id") or "?")
        broker = str(actor.get("session_issuer_arn") or "")
        how = f"federated by {_principal_words(broker)}" if broker else "federated user"
        return Who(arn or f"{account}/federated-user/{name}", name, how, account, **extras)
    if kind == "Root" or arn.endswith(":root"):
        return Who(arn or f"{account}/root", "root", "root user", account, **extras)
    if kind == "IAMUser" or ":user/" in arn:
        name = str(actor.get("name") or arn.rsplit("/", 1)[-1])
        return Who(arn or f"{account}/user/{name}", name, "IAM user", account, **extras)
    service = str(actor.get("invoked_by") or "")
    if kind == "AWSService" or (service and not arn):
        return Who(service or "unknown service", service or "unknown service", "AWS service", account, **extras)
    name = str(actor.get("name") or arn or actor.get("principal_id") or "unknown")
    return Who(arn or name, name, kind or "unknown identity", account, **extras)


def matches(actor: Mapping[str, Any], text: str) -> bool:
    """`query --actor` by a person's name or e-mail (or a role, session or user name)."""
    return text.strip().casefold() in who(actor).names()


def _assumed_role(actor: Mapping[str, Any], arn: str, account: str, extras: dict[str, str]) -> Who:
    issuer = str(actor.get("session_issuer_arn") or "")
    role = str(actor.get("name") or "")
    session = ""
    if ":assumed-role/" in arn:
        parts = arn.split(":assumed-role/", 1)[1].split("/")
        role = role or parts[0]
        session = parts[-1] if len(parts) > 1 else ""
    role_key = principal_key(issuer or arn) if (issuer or arn) else f"{account}/role/{role}"
    source_identity = extras["source_identity"]
    if role.startswith(_SSO_PREFIX):
        permission_set = role.removeprefix(_SSO_PREFIX).rsplit("_", 1)[0]
        how = f"Identity Center, permission set {permission_set}"
        person = source_identity or session
        if source_identity and session and session != source_identity:
            how += f", session {session}"
    else:
        person = source_identity or (session if "@" in session else "")  # SAML sessions carry the e-mail
        how = f"role {role}" + (f", session {session}" if person and session and session != person else "")
    if actor.get("invoked_by"):
        how += f", for {actor['invoked_by']}"
    if source_identity and person != source_identity:
        how += f", source identity {source_identity}"
    if extras["on_behalf_of"]:
        how += f", on behalf of {extras['on_behalf_of']}"
    if person:
        return Who(f"{role_key}/{person}", person, how, account, role, session, **extras)
    return Who(role_key, role or arn, how, account, role, session, **extras)


def _principal_words(arn: str) -> str:
    if ":user/" in arn:
        return f"IAM user {arn.rsplit('/', 1)[-1]}"
    if ":role/" in arn:
        return f"role {arn.rsplit('/', 1)[-1]}"
    return arn


def _arn_account(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 else ""
