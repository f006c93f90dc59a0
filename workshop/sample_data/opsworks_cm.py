"""The OpsWorks CM story: a Chef Automate or Puppet server's life, CreateServer .. DeleteServer, over five
sessions. Written like ``opsworks_stack.py`` (its docstring says how a step reads)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from workshop.sample_data.calls import Session, Story
from workshop.sample_data.records import Json, RecordMaker, java_date
from workshop.sample_data.services import lookalike

OPSWORKS_CM = "opsworks-cm.amazonaws.com"

Attributes = Callable[[RecordMaker, str], list[Json]]
"""Engine attributes for the server called ``name``, drawn when a call needs them."""


@dataclass(frozen=True)
class Kit:
    """What differs between the engines."""

    model: str
    version: str
    admin: str
    """The attribute holding the admin password."""
    request_attributes: Attributes
    response_attributes: Attributes
    node_attributes: Attributes
    rotated_attribute: str


KITS = {
    "ChefAutomate": Kit(
        model="Single",
        version="2",
        admin="CHEF_AUTOMATE_ADMIN_PASSWORD",
        request_attributes=lambda r, name: [
            {"name": "CHEF_AUTOMATE_ADMIN_PASSWORD", "value": r.secret()},
            {"name": "CHEF_AUTOMATE_PIVOTAL_KEY", "value": r.secret()},
        ],
        response_attributes=lambda r, name: [
            {"name": "CHEF_AUTOMATE_PIVOTAL_KEY", "value": r.secret()},
            {"name": "CHEF_STARTER_KIT", "value": r.secret()},
        ],
        node_attributes=lambda r, name: [
            {"name": "CHEF_ORGANIZATION", "value": "default"},
            {
                "name": "CHEF_NODE_PUBLIC_KEY",
                "value": f"-----BEGIN PUBLIC KEY-----\n{r.token(64)}\n-----END PUBLIC KEY-----",
            },
        ],
        rotated_attribute="CHEF_PIVOTAL_KEY",
    ),
    "Puppet": Kit(
        model="Monolithic",
        version="2019",
        admin="PUPPET_ADMIN_PASSWORD",
        request_attributes=lambda r, name: [
            {"name": "PUPPET_ADMIN_PASSWORD", "value": r.secret()},
            {"name": "PUPPET_R10K_REMOTE", "value": f"https://git.example.com/example/{name}-control.git"},
            {"name": "PUPPET_R10K_PRIVATE_KEY", "value": r.secret()},
        ],
        response_attributes=lambda r, name: [
            {"name": "PUPPET_STARTER_KIT", "value": r.secret()},
            {"name": "PUPPET_API_CA_CERT", "value": f"-----BEGIN CERTIFICATE-----\n{r.token(64)}"},
        ],
        node_attributes=lambda r, name: [
            {
                "name": "PUPPET_NODE_CSR",
                "value": f"-----BEGIN PUBLIC KEY-----\n{r.token(64)}\n-----END PUBLIC KEY-----",
            },
        ],
        rotated_attribute="PUPPET_R10K_PRIVATE_KEY",
    ),
}


def server(
    r: RecordMaker, account: str, region: str, *, name: str, engine: str, at: Sequence[float]
) -> list[Session]:
    """A server called ``name`` running ``engine`` (a key of KITS), made by an automation role with an SSO
    person stepping in; ``at``: where each of the five sessions starts, as fractions of the window."""
    person, node_agent = "AWSReservedSSO", "reporting-lambda"
    kit = KITS[engine]
    request_attributes = kit.request_attributes(r, name)
    server_arn = f"arn:aws:opsworks-cm:{region}:{account}:server/{name}/{r.uuid()}"
    base = {
        "serverName": name,
        "engineModel": kit.model,
        "engine": engine,
        "engineVersion": kit.version,
        "instanceType": "m5.large",
        "instanceProfileArn": f"arn:aws:iam::{account}:instance-profile/aws-opsworks-cm-ec2-role",
        "serviceRoleArn": f"arn:aws:iam::{account}:role/service-role/aws-opsworks-cm-service-role",
        "backupRetentionCount": 10,
        "preferredMaintenanceWindow": "Sun:03:00",
        "preferredBackupWindow": "Wed:08:00",
        "subnetIds": [r.ec2_id("subnet")],
        "keyPair": f"{name}-key",
    }
    story = Story(r, account, region, source=OPSWORKS_CM, caller="deploy-automation")

    # 1: a failed create (bad domain), then the real one
    s = story.session(at[0])
    s.call(
        "CreateServer",
        {
            **base,
            "engineAttributes": [{"name": kit.admin, "value": r.secret()}],
            "customDomain": f"{name}.example.com",
            "customCertificate": "-----BEGIN CERT",
            "customPrivateKey": r.secret(),
        },
        who=person,
        error=("ValidationException", "Custom certificate is not a valid PEM-encoded X509 certificate"),
    )
    created = s.tick()
    response_attributes = kit.response_attributes(r, name)
    described = {
        **base,
        "serverArn": server_arn,
        "createdAt": java_date(created),
        "status": "CREATING",
        "endpoint": f"{name}-{r.token(16, 'lower')}.{region}.opsworks-cm.io",
        "engineAttributes": response_attributes,
        "associatePublicIpAddress": True,
        "disableAutomatedBackup": False,
        "securityGroupIds": [r.ec2_id("sg")],
    }
    s.call("CreateServer", {**base, "engineAttributes": request_attributes}, {"server": described})
    s.lookalikes.append(lookalike(r, account, region, s.tick(), which=4))
    s.call("DescribeServers", {"serverName": name}, ro=True)

    # 2: nodes
    s = story.session(at[1])
    for n in ("01", "02"):
        node = f"web-{n}.{name}.internal"
        attributes = kit.node_attributes(r, name)
        status_token = r.token(40)
        s.call(
            "AssociateNode",
            {"serverName": name, "nodeName": node, "engineAttributes": attributes},
            {"nodeAssociationStatusToken": status_token},
            who=node_agent,
        )
        s.call(
            "DescribeNodeAssociationStatus",
            {"serverName": name, "nodeAssociationStatusToken": status_token},
            ro=True,
            who=node_agent,
        )

    # 3: backup, key rotation
    s = story.session(at[2])
    backup_at = s.tick()
    backup_id = f"{name}-{backup_at:%Y%m%d%H%M%S}{r.randint(0, 999):03d}"
    s.call(
        "CreateBackup",
        {"serverName": name, "description": "before upgrade"},
        {
            "backup": {
                "backupId": backup_id,
                "backupArn": f"arn:aws:opsworks-cm:{region}:{account}:backup/{backup_id}",
                "backupType": "MANUAL",
                "createdAt": java_date(backup_at),
                "description": "before upgrade",
                "engine": engine,
                "engineModel": kit.model,
                "engineVersion": kit.version,
                "serverName": name,
                "status": "IN_PROGRESS",
                "instanceType": "m5.large",
                "userArn": f"arn:aws:sts::{account}:assumed-role/deploy-automation/session",
            }
        },
        at=backup_at,
    )
    s.call("DescribeBackups", {"serverName": name}, ro=True)
    s.call(
        "UpdateServerEngineAttributes",
        {"serverName": name, "attributeName": kit.rotated_attribute, "attributeValue": r.secret()},
        {"server": {**described, "status": "HEALTHY", "engineAttributes": []}},
        who=person,
    )

    # 4: user data export, a throttled describe, maintenance settings
    s = story.session(at[3])
    s.call(
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
            "engineAttribute": {"name": "Userdata", "value": f"{r.secret()}IyEvYmluL2Jhc2gKIyBjaGVmIGJvb3RzdHJhcAo="},
        },
        ro=True,
    )
    s.call("DescribeServers", {"serverName": name}, ro=True, who=person, error=("ThrottlingException", "Rate exceeded"))
    s.call(
        "UpdateServer",
        {"serverName": name, "preferredMaintenanceWindow": "Sat:04:00"},
        {"server": {**described, "status": "HEALTHY", "preferredMaintenanceWindow": "Sat:04:00"}},
        who=person,
    )

    # 5: teardown
    s = story.session(at[4])
    s.call("DeleteBackup", {"backupId": backup_id}, {})
    s.call("DeleteServer", {"serverName": name}, {})
    s.call(
        "DescribeServers",
        {"serverName": name},
        ro=True,
        error=("ResourceNotFoundException", f"There is no server with the name '{name}'"),
    )
    return story.sessions
