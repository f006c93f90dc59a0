"""Who, as a person would say it: from CloudTrail userIdentity blocks through normalize to read.actors."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from core.ingest.normalize import normalize_actor
from core.read.actors import matches, who

A1, A2 = "111122223333", "444455556666"


def iam_user(account: str, name: str) -> dict[str, Any]:
    return {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": f"arn:aws:iam::{account}:user/{name}",
            "accountId": account, "userName": name}


def assumed_role(account: str, role: str, session: str, path: str = "", **extra: Any) -> dict[str, Any]:
    identity: dict[str, Any] = {
        "type": "AssumedRole", "principalId": f"AROAEXAMPLE:{session}",
        "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}", "accountId": account,
        "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLE",
                                             "arn": f"arn:aws:iam::{account}:role/{path}{role}",
                                             "accountId": account, "userName": role},
                           "attributes": {"creationDate": "2024-06-01T00:00:00Z", "mfaAuthenticated": "false"}}}
    identity.update(extra)
    return identity


SSO_ROLE = "AWSReservedSSO_AdministratorAccess_0123456789abcdef"
SSO_PATH = "aws-reserved/sso.amazonaws.com/"


def test_two_iam_users_of_the_same_name_in_two_accounts_are_two_callers() -> None:
    first, second = who(normalize_actor(iam_user(A1, "alice"))), who(normalize_actor(iam_user(A2, "alice")))

    assert first.name == second.name == "alice"
    assert first.key != second.key
    assert A1 in first.label and A2 in second.label


def test_a_role_name_reused_across_accounts_is_two_callers() -> None:
    first = who(normalize_actor(assumed_role(A1, "deploy", "runner-1")))
    second = who(normalize_actor(assumed_role(A2, "deploy", "runner-1")))

    assert first.key != second.key


def test_the_sessions_of_an_automation_role_are_one_caller_named_by_the_role() -> None:
    one = who(normalize_actor(assumed_role(A1, "deploy", "gitlab-runner-1", path="ci/")))
    two = who(normalize_actor(assumed_role(A1, "deploy", "gitlab-runner-2")))

    assert one.key == two.key == f"arn:aws:iam::{A1}:role/deploy"
    assert one.name == "deploy"
    assert "session gitlab-runner-1" in one.short and "session" not in one.label


def test_an_identity_center_user_is_named_by_their_e_mail_with_the_permission_set_alongside() -> None:
    bob = who(normalize_actor(assumed_role(A1, SSO_ROLE, "bob@example.com", path=SSO_PATH)))
    dana = who(normalize_actor(assumed_role(A1, SSO_ROLE, "dana@example.com", path=SSO_PATH)))

    assert bob.name == "bob@example.com"
    assert "Identity Center, permission set AdministratorAccess" in bob.how
    assert bob.key != dana.key  # two people, one permission set
    assert bob.role == SSO_ROLE


def test_source_identity_and_on_behalf_of_are_shown() -> None:
    identity = assumed_role(A1, "deploy", "session-9", onBehalfOf={
        "userId": "94482488-3041-7026-18f3-be45837cd0e4",
        "identityStoreArn": "arn:aws:identitystore::111122223333:identitystore/d-9067642ac7"})
    identity["sessionContext"]["sourceIdentity"] = "erin@example.com"

    actor = normalize_actor(identity)
    found = who(actor)

    assert actor["source_identity"] == "erin@example.com"
    assert actor["on_behalf_of"] == "94482488-3041-7026-18f3-be45837cd0e4"
    assert found.name == "erin@example.com"
    assert "role deploy, session session-9" in found.how
    assert "on behalf of 94482488-3041-7026-18f3-be45837cd0e4" in found.how


def test_a_federated_user_is_named_by_their_own_name_with_the_broker_alongside() -> None:
    identity = {"type": "FederatedUser", "principalId": f"{A1}:carol",
                "arn": f"arn:aws:sts::{A1}:federated-user/carol", "accountId": A1,
                "sessionContext": {"sessionIssuer": {"type": "IAMUser", "arn": f"arn:aws:iam::{A1}:user/broker",
                                                     "userName": "broker", "accountId": A1}}}

    found = who(normalize_actor(identity))

    assert found.name == "carol"
    assert found.how == "federated by IAM user broker"


def test_root_and_services_are_named_plainly() -> None:
    root = who(normalize_actor({"type": "Root", "arn": f"arn:aws:iam::{A1}:root", "accountId": A1}))
    service = who(normalize_actor({"type": "AWSService", "invokedBy": "opsworks.amazonaws.com"}))

    assert (root.name, root.how) == ("root", "root user")
    assert (service.name, service.how) == ("opsworks.amazonaws.com", "AWS service")


def test_actor_matches_a_persons_e_mail_or_name_in_any_case() -> None:
    bob = normalize_actor(assumed_role(A1, SSO_ROLE, "bob@example.com", path=SSO_PATH))

    assert matches(bob, "Bob@Example.com")
    assert matches(bob, SSO_ROLE)
    assert not matches(bob, "bo")
    assert matches(normalize_actor(iam_user(A1, "alice")), "alice")


names = st.from_regex(r"[A-Za-z0-9+=,.@_-]{1,40}", fullmatch=True)
accounts = st.from_regex(r"[0-9]{12}", fullmatch=True)


@given(account=accounts, role=names, session=names)
def test_any_assumed_role_keeps_its_account_and_role_in_the_key(account: str, role: str, session: str) -> None:
    found = who(normalize_actor(assumed_role(account, role, session)))

    assert found.key.startswith(f"arn:aws:iam::{account}:role/{role}")
    assert found.account == account
    assert found.name in (role, session)
    assert matches(normalize_actor(assumed_role(account, role, session)), session) or found.name == role


@given(account_a=accounts, account_b=accounts, name=names)
def test_same_user_name_in_different_accounts_never_shares_a_key(account_a: str, account_b: str,
                                                                 name: str) -> None:
    first, second = who(normalize_actor(iam_user(account_a, name))), who(normalize_actor(iam_user(account_b, name)))

    assert (first.key == second.key) == (account_a == account_b)
