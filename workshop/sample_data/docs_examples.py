"""Records shaped like the AWS docs' examples: OpsWorks ones (eventVersion 1.01, keys sorted, no eventType)
and OpsWorks CM ones (1.05, "ID number" placeholders, ids with letters beyond hex). Older shapes a
reader must still take."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from workshop.sample_data.calls import Session, Story
from workshop.sample_data.records import Actor, Json, RecordMaker, fmt, java_date

OPSWORKS = "opsworks.amazonaws.com"


def docs_opsworks_record(s: Session, user: Actor, event_name: str, request: Json) -> Json:
    """A record as the AWS docs' OpsWorks examples show them, by the IAM user ``user``."""
    r = s.maker
    at = s.tick()
    return s.add({
        "awsRegion": s.region,
        "eventID": r.uuid(),
        "eventName": event_name,
        "eventSource": OPSWORKS,
        "eventTime": fmt(at),
        "eventVersion": "1.01",
        "requestID": r.uuid1(),
        "requestParameters": request,
        "responseElements": None,
        "sourceIPAddress": r.ip(),
        "userAgent": "aws-sdk-ruby/2.0.0 ruby/2.1 x86_64-linux",
        "userIdentity": {
            "accessKeyId": user.access_key,
            "accountId": s.account,
            "arn": f"arn:aws:iam::{s.account}:user/{user.name}",
            "principalId": user.principal,
            "type": "IAMUser",
            "userName": user.name,
        },
    })


def docs_cm_create_server(s: Session, engine: str, server: str, attributes: list[Json]) -> Json:
    """An OpsWorks CM CreateServer as the docs show it (engine attributes already redacted)."""
    r = s.maker
    account, region = s.account, s.region
    at = s.tick()
    return s.add({
        "eventVersion": "1.05",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": "ID number:OpsWorksCMUser",
            "arn": f"arn:aws:sts::{account}:assumed-role/Admin/OpsWorksCMUser",
            "accountId": account,
            "accessKeyId": "ID number",
            "sessionContext": {
                "attributes": {"mfaAuthenticated": "false", "creationDate": fmt(at - timedelta(minutes=15))},
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": "ID number",
                    "arn": f"arn:aws:iam::{account}:role/Admin",
                    "accountId": account,
                    "userName": "Admin",
                },
            },
        },
        "eventTime": fmt(at),
        "eventSource": "opsworks-cm.amazonaws.com",
        "eventName": "CreateServer",
        "awsRegion": region,
        "sourceIPAddress": r.ip(),
        "userAgent": "console.amazonaws.com",
        "requestParameters": {
            "serverName": server,
            "engineModel": "Single",
            "engine": engine,
            "instanceProfileArn": f"arn:aws:iam::{account}:instance-profile/aws-opsworks-cm-ec2-role",
            "backupRetentionCount": 3,
            "serviceRoleArn": f"arn:aws:iam::{account}:role/service-role/aws-opsworks-cm-service-role",
            "engineVersion": "12",
            "preferredMaintenanceWindow": "Fri:21:00",
            "instanceType": "t2.medium",
            "subnetIds": ["subnet-1e111f11"],
            "preferredBackupWindow": "Wed:08:00",
        },
        "responseElements": {
            "server": {
                "endpoint": f"{server}-{r.token(16, 'lower')}.{region}.opsworks-cm.io",
                "createdAt": java_date(at - timedelta(seconds=1)),
                "serviceRoleArn": f"arn:aws:iam::{account}:role/service-role/aws-opsworks-cm-service-role",
                "preferredBackupWindow": "Wed:08:00",
                "status": "CREATING",
                "subnetIds": ["subnet-1e111f11"],
                "engine": engine,
                "instanceType": "t2.medium",
                "serverName": server,
                "serverArn": f"arn:aws:opsworks-cm:{region}:{account}:server/{server}/{r.docs_style_id()}",
                "engineModel": "Single",
                "backupRetentionCount": 3,
                "engineAttributes": attributes,
                "engineVersion": "12.11.1",
                "instanceProfileArn": f"arn:aws:iam::{account}:instance-profile/aws-opsworks-cm-ec2-role",
                "preferredMaintenanceWindow": "Fri:21:00",
            }
        },
        "requestID": r.docs_style_id(),
        "eventID": r.docs_style_id(),
        "eventType": "AwsApiCall",
        "recipientAccountId": account,
    })


def docs_examples(r: RecordMaker, account: str, region: str, *, at: Sequence[float]) -> list[Session]:
    """Two sessions: an OpsWorks CreateLayer and DescribeInstances, then two OpsWorks CM CreateServer."""
    user = r.actor(account, "ci-deployer")
    story = Story(r, account, region)

    s = story.session(at[0])
    stack_id = r.uuid()
    created = s.tick()
    layer = {
        "attributes": {},
        "customRecipes": {},
        "name": f"{created:%Y-%m-%d} {r.token(4, 'lower')}",
        "shortname": f"custom{r.token(12, 'hex')}",
        "stackId": stack_id,
        "type": "custom",
    }
    docs_opsworks_record(s, user, "CreateLayer", layer)
    docs_opsworks_record(s, user, "DescribeInstances", {"instanceIds": [r.uuid()]})

    s = story.session(at[1])
    redacted = "*** Redacted ***"
    docs_cm_create_server(s, "Chef", "OpsChef-test-server", [
        {"name": "CHEF_STARTER_KIT", "value": redacted},
        {"name": "CHEF_PIVOTAL_KEY", "value": redacted},
        {"name": "CHEF_DELIVERY_ADMIN_PASSWORD", "value": redacted},
    ])
    docs_cm_create_server(s, "Puppet", "test-puppet-server", [
        {"name": "PUPPET_ADMIN_PASSWORD", "value": redacted},
        {"name": "PUPPET_API_CA_CERT", "value": redacted},
    ])
    return story.sessions
