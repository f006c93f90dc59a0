"""The OpsWorks / OpsWorks CM action catalog: coverage, read-only flags, resource paths, ARNs, redaction."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from conftest import REPO, needs_shared
from core.ingest.catalog import REDACTED, Catalog, load_catalog, resolve_arn

OPSWORKS = "opsworks.amazonaws.com"
OPSWORKS_CM = "opsworks-cm.amazonaws.com"
CATALOG_JSON = REPO / "src" / "core" / "ingest" / "catalog.json"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def _build_catalog_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_catalog", REPO / "scripts" / "build_catalog.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _names(catalog: Catalog, source: str) -> set[str]:
    return {name for (src, name) in catalog.actions if src == source}


# -- coverage -------------------------------------------------------------------------------------


def test_catalog_covers_the_74_opsworks_and_19_opsworks_cm_actions(catalog: Catalog) -> None:
    assert len(_names(catalog, OPSWORKS)) == 74
    assert len(_names(catalog, OPSWORKS_CM)) == 19
    assert set(catalog.services) == {OPSWORKS, OPSWORKS_CM}
    assert catalog.services == {OPSWORKS: "opsworks", OPSWORKS_CM: "opsworks-cm"}


def test_catalog_action_names_are_exactly_the_api_model_operations() -> None:
    models = needs_shared("reference/opsworks-api")
    catalog = load_catalog()
    for source, filename in ((OPSWORKS, "opsworks-2013-02-18.service-2.json"),
                             (OPSWORKS_CM, "opsworkscm-2016-11-01.service-2.json")):
        operations = set(json.loads((models / filename).read_text())["operations"])
        assert _names(catalog, source) == operations, source


def test_committed_catalog_json_is_what_build_catalog_derives_from_the_models() -> None:
    """Given the API models in ../shared, when the build script runs, then it renders the committed file."""
    models = needs_shared("reference/opsworks-api")
    script = _build_catalog_script()

    derived = script.render(script.build(models))

    assert derived == CATALOG_JSON.read_text(encoding="utf-8"), "run `make catalog` and commit the result"


def test_unknown_actions_are_not_in_the_catalog(catalog: Catalog) -> None:
    assert catalog.action(OPSWORKS, "RunInstances") is None
    assert catalog.action("ec2.amazonaws.com", "CreateLayer") is None
    assert catalog.action(OPSWORKS, "CreateLayer") is not None


# -- read-only flags ------------------------------------------------------------------------------


@pytest.mark.parametrize("source, name", [
    (OPSWORKS, "DescribeInstances"), (OPSWORKS, "DescribeStacks"), (OPSWORKS, "ListTags"),
    (OPSWORKS, "GetHostnameSuggestion"), (OPSWORKS_CM, "DescribeServers"), (OPSWORKS_CM, "DescribeBackups"),
    (OPSWORKS_CM, "ListTagsForResource"),
])
def test_describe_list_get_actions_are_read_only(catalog: Catalog, source: str, name: str) -> None:
    action = catalog.action(source, name)
    assert action is not None and action.read_only is True


@pytest.mark.parametrize("source, name", [
    (OPSWORKS, "CreateLayer"), (OPSWORKS, "CreateDeployment"), (OPSWORKS, "DeleteStack"),
    (OPSWORKS, "UpdateApp"), (OPSWORKS, "StartInstance"), (OPSWORKS, "RegisterRdsDbInstance"),
    (OPSWORKS_CM, "CreateServer"), (OPSWORKS_CM, "DeleteBackup"), (OPSWORKS_CM, "UpdateServerEngineAttributes"),
    (OPSWORKS_CM, "TagResource"),
])
def test_mutating_actions_are_not_read_only(catalog: Catalog, source: str, name: str) -> None:
    action = catalog.action(source, name)
    assert action is not None and action.read_only is False


def test_every_describe_list_get_is_read_only_and_every_create_delete_update_is_not(catalog: Catalog) -> None:
    checked = 0
    for (_, name), action in catalog.actions.items():
        if name.startswith(("Describe", "List", "Get")):
            assert action.read_only is True, name
            checked += 1
        elif name.startswith(("Create", "Delete", "Update")):
            assert action.read_only is False, name
            checked += 1
    assert checked >= 50  # 56 of the 93 actions carry one of these prefixes


# -- resource paths -------------------------------------------------------------------------------


def test_create_layer_names_its_stack_in_the_request_and_its_new_layer_in_the_response(catalog: Catalog) -> None:
    action = catalog.action(OPSWORKS, "CreateLayer")
    assert action is not None
    assert action.request["stackId"] == "stack"
    assert action.response["layerId"] == "layer"

    found = catalog.resources(OPSWORKS, "CreateLayer",
                              {"stackId": "a263312e-f937-4bfc-9f0d-d2a8bd8bf2e0", "name": "web", "type": "custom"},
                              {"layerId": "5b4c0a54-2e5d-4c7c-8f6f-0c5f7e3d1a11"})
    assert found == [{"type": "stack", "id": "a263312e-f937-4bfc-9f0d-d2a8bd8bf2e0"},
                     {"type": "layer", "id": "5b4c0a54-2e5d-4c7c-8f6f-0c5f7e3d1a11"}]


def test_create_deployment_names_every_instance_of_the_instance_ids_list(catalog: Catalog) -> None:
    action = catalog.action(OPSWORKS, "CreateDeployment")
    assert action is not None and action.request["instanceIds"] == "instance"

    found = catalog.resources(OPSWORKS, "CreateDeployment",
                              {"stackId": "s-1", "appId": "a-1", "instanceIds": ["i-1", "i-2"],
                               "command": {"name": "deploy"}},
                              {"deploymentId": "d-1"})
    assert sorted((r["type"], r["id"]) for r in found) == [
        ("app", "a-1"), ("deployment", "d-1"), ("instance", "i-1"), ("instance", "i-2"), ("stack", "s-1")]


def test_create_server_names_the_server_once_from_request_response_and_arn(catalog: Catalog) -> None:
    action = catalog.action(OPSWORKS_CM, "CreateServer")
    assert action is not None and action.response["server.serverName"] == "server"

    found = catalog.resources(
        OPSWORKS_CM, "CreateServer", {"serverName": "OpsChef-test-server", "engine": "ChefAutomate"},
        {"server": {"serverName": "OpsChef-test-server",
                    "serverArn": "arn:aws:opsworks-cm:us-west-2:831000000000:server/OpsChef-test-server/8epp7f6z"}})
    assert found == [{"type": "server", "id": "OpsChef-test-server"}]


def test_create_backup_names_the_server_and_the_new_backup(catalog: Catalog) -> None:
    action = catalog.action(OPSWORKS_CM, "CreateBackup")
    assert action is not None and action.response["backup.backupId"] == "backup"

    found = catalog.resources(OPSWORKS_CM, "CreateBackup", {"serverName": "chef-prod"},
                              {"backup": {"backupId": "chef-prod-20240105123000000", "serverName": "chef-prod"}})
    assert sorted((r["type"], r["id"]) for r in found) == [
        ("backup", "chef-prod-20240105123000000"), ("server", "chef-prod")]


def test_parameter_names_match_case_insensitively_and_empty_values_are_ignored(catalog: Catalog) -> None:
    found = catalog.resources(OPSWORKS, "DescribeInstances", {"StackId": "s-9", "layerId": "", "instanceIds": []},
                              None)
    assert found == [{"type": "stack", "id": "s-9"}]


def test_unknown_action_still_yields_opsworks_arns_from_parameters_and_record_resources(catalog: Catalog) -> None:
    found = catalog.resources(
        OPSWORKS, "SomeFutureAction",
        {"resourceArn": "arn:aws:opsworks:us-east-1:111122223333:stack/s-7/", "other": "s-8"}, None,
        [{"ARN": "arn:aws:opsworks:us-east-1:111122223333:instance/i-7", "type": "AWS::OpsWorks::Instance"}])
    assert found == [{"type": "stack", "id": "s-7"}, {"type": "instance", "id": "i-7"}]


def test_no_parameters_means_no_resources(catalog: Catalog) -> None:
    assert catalog.resources(OPSWORKS, "DescribeStacks", None, None) == []
    assert catalog.resources(OPSWORKS, "DescribeStacks", {}, {"stacks": []}) == []


# -- ARNs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("arn, expected", [
    ("arn:aws:opsworks:us-east-1:111122223333:stack/2f18b4cb-4de5-4429-a149-ff7da9f0d8ee/",
     ("stack", "2f18b4cb-4de5-4429-a149-ff7da9f0d8ee")),
    ("arn:aws:opsworks:us-west-2:111122223333:layer/5b4c0a54-2e5d-4c7c-8f6f-0c5f7e3d1a11",
     ("layer", "5b4c0a54-2e5d-4c7c-8f6f-0c5f7e3d1a11")),
    ("arn:aws:opsworks:us-west-2:111122223333:instance/0e5b9f11-7a62-4a8c-9b3e-4c0d1f2e3a44",
     ("instance", "0e5b9f11-7a62-4a8c-9b3e-4c0d1f2e3a44")),
    ("arn:aws:opsworks:eu-west-1:111122223333:app/7c3e1a2b-0000-4000-8000-000000000001",
     ("app", "7c3e1a2b-0000-4000-8000-000000000001")),
    ("arn:aws:opsworks-cm:us-west-2:831000000000:server/OpsChef-test-server/8epp7f6z-5fa0-4ec4-84f8-e3ea35bb8d8f",
     ("server", "OpsChef-test-server")),
    ("arn:aws:opsworks-cm:us-east-1:831000000000:backup/test-puppet-server-20170105T2229Z",
     ("backup", "test-puppet-server-20170105T2229Z")),
    ("arn:aws-us-gov:opsworks:us-gov-west-1:111122223333:stack/s-1/", ("stack", "s-1")),
])
def test_opsworks_arns_resolve_to_type_and_id(arn: str, expected: tuple[str, str]) -> None:
    assert resolve_arn(arn) == expected


@pytest.mark.parametrize("value", [
    "arn:aws:iam::111122223333:user/alice",
    "arn:aws:s3:::trail-bucket/AWSLogs/",
    "arn:aws:ec2:us-east-1:111122223333:instance/i-0123456789abcdef0",
    "arn:aws:sts::111122223333:assumed-role/OpsRole/session",
    "arn:aws:opsworks:us-east-1:111122223333:nosuchkind/x",
    "arn:aws:opsworks-cm:us-east-1:111122223333:stack/not-a-cm-type",
    "not an arn",
    "",
])
def test_anything_but_an_opsworks_resource_arn_resolves_to_none(value: str) -> None:
    assert resolve_arn(value) is None


# -- redaction ------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["password", "sshKey", "privateKey", "dbPassword", "customPrivateKey",
                                 "attributeValue", "Password", "SSHKEY"])
def test_secret_keys_are_redacted_whatever_their_case(catalog: Catalog, key: str) -> None:
    redacted = catalog.redact({key: "hunter2", "serverName": "chef-prod"})

    assert redacted == {key: REDACTED, "serverName": "chef-prod"}


def test_engine_attribute_values_are_redacted_and_names_kept(catalog: Catalog) -> None:
    request = {"serverName": "chef-prod", "engine": "ChefAutomate",
               "engineAttributes": [{"name": "CHEF_AUTOMATE_PIVOTAL_KEY", "value": "-----BEGIN RSA..."},
                                    {"name": "CHEF_AUTOMATE_ADMIN_PASSWORD", "value": "s3cr3t"}]}

    redacted = catalog.redact(request)

    assert redacted == {"serverName": "chef-prod", "engine": "ChefAutomate",
                        "engineAttributes": [{"name": "CHEF_AUTOMATE_PIVOTAL_KEY", "value": REDACTED},
                                             {"name": "CHEF_AUTOMATE_ADMIN_PASSWORD", "value": REDACTED}]}


def test_export_input_attribute_values_are_redacted(catalog: Catalog) -> None:
    redacted = catalog.redact({"exportAttributeName": "Userdata", "serverName": "chef-prod",
                               "inputAttributes": [{"name": "RunList", "value": "recipe[secret]"}]})

    assert redacted["inputAttributes"] == [{"name": "RunList", "value": REDACTED}]
    assert redacted["exportAttributeName"] == "Userdata"


def test_engine_attributes_in_a_response_are_redacted_too(catalog: Catalog) -> None:
    response = {"servers": [{"serverName": "p", "engineAttributes": [{"name": "PUPPET_API_CA_CERT", "value": "x"}]}]}

    assert catalog.redact(response) == {
        "servers": [{"serverName": "p", "engineAttributes": [{"name": "PUPPET_API_CA_CERT", "value": REDACTED}]}]}


@pytest.mark.parametrize("secure", [True, "true", "True"])
def test_secure_environment_values_are_redacted(catalog: Catalog, secure: Any) -> None:
    redacted = catalog.redact({"environment": [{"key": "DB_PASSWORD", "value": "pw", "secure": secure}]})

    assert redacted == {"environment": [{"key": "DB_PASSWORD", "value": REDACTED, "secure": secure}]}


@pytest.mark.parametrize("secure", [False, "false", None])
def test_non_secure_environment_values_are_kept(catalog: Catalog, secure: Any) -> None:
    entry = {"key": "RAILS_ENV", "value": "production"}
    if secure is not None:
        entry["secure"] = secure

    assert catalog.redact({"environment": [entry]}) == {"environment": [dict(entry)]}


def test_secrets_nested_in_app_source_and_ssl_configuration_are_redacted(catalog: Catalog) -> None:
    request = {
        "stackId": "s-1", "name": "shop", "type": "rails",
        "appSource": {"type": "git", "url": "git@github.com:acme/shop.git", "username": "deploy",
                      "password": "git-pass", "sshKey": "-----BEGIN OPENSSH PRIVATE KEY-----", "revision": "main"},
        "sslConfiguration": {"certificate": "-----BEGIN CERTIFICATE-----", "privateKey": "-----BEGIN PRIVATE KEY-----",
                             "chain": "-----BEGIN CERTIFICATE----- chain"},
        "environment": [{"key": "A", "value": "1", "secure": False}, {"key": "B", "value": "2", "secure": True}],
    }

    redacted = catalog.redact(request)

    assert redacted == {
        "stackId": "s-1", "name": "shop", "type": "rails",
        "appSource": {"type": "git", "url": "git@github.com:acme/shop.git", "username": "deploy",
                      "password": REDACTED, "sshKey": REDACTED, "revision": "main"},
        "sslConfiguration": {"certificate": "-----BEGIN CERTIFICATE-----", "privateKey": REDACTED,
                             "chain": "-----BEGIN CERTIFICATE----- chain"},
        "environment": [{"key": "A", "value": "1", "secure": False}, {"key": "B", "value": REDACTED, "secure": True}],
    }


def test_redact_leaves_the_input_untouched_and_non_secrets_alone(catalog: Catalog) -> None:
    request = {"stackId": "s-1", "customCookbooksSource": {"url": "https://x", "password": "p"},
               "sshPublicKey": "ssh-rsa AAAA", "count": 3, "flag": True, "nothing": None, "list": ["a", 1]}
    before = json.loads(json.dumps(request))

    redacted = catalog.redact(request)

    assert request == before
    assert redacted == {"stackId": "s-1", "customCookbooksSource": {"url": "https://x", "password": REDACTED},
                        "sshPublicKey": "ssh-rsa AAAA", "count": 3, "flag": True, "nothing": None,
                        "list": ["a", 1]}


@pytest.mark.parametrize("value", [None, "text", 42, ["a", "b"]])
def test_redact_passes_scalars_and_plain_lists_through(catalog: Catalog, value: Any) -> None:
    assert catalog.redact(value) == value


def test_catalog_json_is_the_packaged_file(catalog: Catalog) -> None:
    data = json.loads(Path(CATALOG_JSON).read_text(encoding="utf-8"))

    assert Catalog.from_json(data) == catalog
    secrets = {"password", "sshkey", "privatekey", "dbpassword", "customprivatekey", "attributevalue"}
    assert secrets <= catalog.secret_keys
