"""Secrets by shape (ingest.normalize.redact_secrets): named cases, and generated text around planted secrets."""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.ingest.catalog import REDACTED
from core.ingest.normalize import names_secret, redact_secrets, redact_text

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
PEM = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nAAAABG5vbmU=\n-----END OPENSSH PRIVATE KEY-----"


@pytest.mark.parametrize("key", ["password", "Password", "db_password", "DATABASE_PASSWORD", "passwd", "pwd",
                                 "secret", "clientSecret", "secret_access_key", "auth_token", "apiKey",
                                 "api-key", "privateKey", "private_key", "credentials", "passphrase"])
def test_keys_naming_a_secret(key: str) -> None:
    assert names_secret(key)


@pytest.mark.parametrize("key", ["sshKeyName", "secretArn", "tokenExpiration", "access_key_id", "accessKeyId",
                                 "passwordLength", "username", "name", "stackId", "keyName", "revision"])
def test_keys_naming_something_about_a_secret_or_nothing_secret(key: str) -> None:
    assert not names_secret(key)


def test_a_json_document_in_a_string_is_redacted_as_a_structure_and_otherwise_kept() -> None:
    custom = json.dumps({"app": {"db": {"password": "hunter2", "port": 5432}, "list": [{"token": "t"}]},
                         "revision": "3f786850e387550fdab836ed7e6dc881de23001b"})

    kept = json.loads(redact_secrets({"customJson": custom})["customJson"])

    assert kept == {"app": {"db": {"password": REDACTED, "port": 5432}, "list": [{"token": REDACTED}]},
                    "revision": "3f786850e387550fdab836ed7e6dc881de23001b"}


def test_a_json_string_without_secrets_is_kept_byte_for_byte() -> None:
    text = '{ "a" : 1.50, "b": [true, null] }'

    assert redact_text(text) == text


@pytest.mark.parametrize(("text", "gone"), [
    ("password: hunter2\nuser: bob", "hunter2"),
    ("DB_PASSWORD=s3cr3t ./run", "s3cr3t"),
    ('{"password": "abc", broken', "abc"),
    (f"aws_secret_access_key = {AWS_SECRET}", AWS_SECRET),
    (f"the key is {AWS_SECRET}.", AWS_SECRET),
    (f"note\n{PEM}\nend", "b3BlbnNzaC1rZXktdjEAAAAA"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEcut off", "MIIEcut"),
    ("git clone https://deploy:tok3n@github.com/o/r.git", "tok3n"),
    ("ghp_" + "a1B2" * 9, "a1B2" * 9),
])
def test_secrets_in_text_are_redacted_by_format_or_by_the_name_before_them(text: str, gone: str) -> None:
    redacted = redact_text(text)

    assert gone not in redacted and REDACTED in redacted


@pytest.mark.parametrize("text", ["3f786850e387550fdab836ed7e6dc881de23001b", "AKIAIOSFODNN7EXAMPLE",
                                  "arn:aws:opsworks:us-east-1:111122223333:stack/abc/", "token count: many"])
def test_look_alikes_that_are_not_secrets_are_kept(text: str) -> None:
    assert redact_text(text) == text


SURROUNDING = st.text(string.ascii_letters + string.digits + " \n\t:=,;{}[]\"'", max_size=40)


@given(before=SURROUNDING, after=SURROUNDING, body=st.text(string.ascii_letters + string.digits + "+/=\n", min_size=1,
                                                             max_size=200))
def test_a_pem_private_key_anywhere_in_text_is_gone(before: str, after: str, body: str) -> None:
    pem = f"-----BEGIN EC PRIVATE KEY-----\nSECRETPEM{body}\n-----END EC PRIVATE KEY-----"

    assert "SECRETPEM" not in redact_text(before + pem + after)


@given(before=SURROUNDING, after=SURROUNDING, secret=st.text(string.ascii_letters + string.digits, min_size=6,
                                                              max_size=30))
def test_a_value_under_a_secret_name_in_any_document_is_gone(before: str, after: str, secret: str) -> None:
    planted = "S3CR3T" + secret
    as_json = json.dumps({"x": before, "deploy": {"db_password": planted}, "y": after})
    as_yaml = f"{before}\ndb_password: {planted}\n{after}"

    assert planted not in redact_secrets({"customJson": as_json})["customJson"]
    assert planted not in redact_text(as_yaml)
