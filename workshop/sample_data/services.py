"""Other services' calls: the bulk of every trail, and the look-alikes that mention OpsWorks yet are not
OpsWorks records (a correct pipeline never selects them); also the Insights file's records.

:func:`noise` writes one everyday record, its kind picked by weight from :data:`NOISE`; to add a kind,
write a function like those below and give it a weight there. :func:`lookalike` picks from
:data:`LOOKALIKES` the same way (or takes the one ``which`` names).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from workshop.sample_data.calls import Session
from workshop.sample_data.records import Actor, Json, RecordMaker, epoch_ms, fmt, java_date

OPSWORKS = "opsworks.amazonaws.com"


@dataclass
class Usual:
    """What every kind of noise may use. All of it is drawn whatever the kind, so that the random draws
    after a record do not depend on which kind it was."""

    person: Actor
    """Someone who uses the console."""
    bot: Actor
    """A machine: a CI user, an automation role, a Lambda function."""
    bucket: str
    instance: str


# -- everyday calls ---------------------------------------------------------------------------------


def get_bucket_acl(s: Session, usual: Usual) -> Json:
    """CloudTrail checking its bucket."""
    r = s.maker
    return s.call(
        "GetBucketAcl",
        source="s3.amazonaws.com",
        who=r.service(s.account, "cloudtrail.amazonaws.com"),
        request={"bucketName": usual.bucket, "Host": f"{usual.bucket}.s3.amazonaws.com", "acl": ""},
        ro=True,
        request_id=r.token(16, "upper"),
        shared=True,
        additional={
            "SignatureVersion": "SigV4",
            "CipherSuite": "ECDHE-RSA-AES128-GCM-SHA256",
            "bytesTransferredIn": 0,
            "AuthenticationMethod": "AuthHeader",
            "x-amz-id-2": r.token(76),
            "bytesTransferredOut": 540,
        },
        resources=[{"accountId": s.account, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{usual.bucket}"}],
    )


def list_buckets(s: Session, usual: Usual) -> Json:
    r = s.maker
    return s.call(
        "ListBuckets",
        source="s3.amazonaws.com",
        who=usual.bot,
        request={"Host": f"s3.{s.region}.amazonaws.com"},
        ro=True,
        request_id=r.token(16, "upper"),
        additional={
            "SignatureVersion": "SigV4",
            "CipherSuite": "TLS_AES_128_GCM_SHA256",
            "bytesTransferredIn": 0,
            "AuthenticationMethod": "AuthHeader",
            "x-amz-id-2": r.token(76),
            "bytesTransferredOut": 2211,
        },
    )


def describe_instances(s: Session, usual: Usual) -> Json:
    return s.call(
        "DescribeInstances",
        source="ec2.amazonaws.com",
        who=usual.bot,
        request={
            "instancesSet": {},
            "filterSet": {
                "items": [
                    {"name": "tag:Name", "valueSet": {"items": [{"value": "web-*"}]}},
                    {"name": "instance-state-name", "valueSet": {"items": [{"value": "running"}]}},
                ]
            },
        },
        ro=True,
        vpce=s.maker.chance(0.2),
    )


def launch_instance(s: Session, usual: Usual) -> Json:
    """Someone's own EC2 instance."""
    return run_instances(s, who=usual.bot, instance=usual.instance)


def describe_security_groups(s: Session, usual: Usual) -> Json:
    return s.call(
        "DescribeSecurityGroups",
        source="ec2.amazonaws.com",
        who=usual.person,
        request={"securityGroupSet": {}, "securityGroupIdSet": {}, "maxResults": 1000},
        ro=True,
    )


def assume_role(s: Session, usual: Usual) -> Json:
    """A service assuming its role."""
    r = s.maker
    caller = r.service(s.account, r.choice("lambda.amazonaws.com", "ec2.amazonaws.com", "ecs-tasks.amazonaws.com"))
    role = r.choice("reporting-lambda", "web-instance-role", "ecs-task-role")
    return s.call(
        "AssumeRole",
        source="sts.amazonaws.com",
        who=caller,
        request={"roleArn": f"arn:aws:iam::{s.account}:role/{role}", "roleSessionName": r.token(12)},
        response={
            "credentials": {
                "accessKeyId": f"ASIA{r.token(16, 'upper')}",
                "sessionToken": f"IQoJb3JpZ2luX2VjE{r.token(300)}",
                "expiration": java_date(s.tick() + timedelta(hours=1)),
            }
        },
        ro=True,
        shared=True,
        resources=[{"accountId": s.account, "type": "AWS::IAM::Role", "ARN": f"arn:aws:iam::{s.account}:role/{role}"}],
    )


def get_caller_identity(s: Session, usual: Usual) -> Json:
    return s.call("GetCallerIdentity", source="sts.amazonaws.com", who=usual.bot, request=None, ro=True)


def list_roles(s: Session, usual: Usual) -> Json:
    return s.call(
        "ListRoles", source="iam.amazonaws.com", region="us-east-1", who=usual.person, request={"maxItems": 1000},
        ro=True,
    )


def decrypt(s: Session, usual: Usual) -> Json:
    r = s.maker
    key_id = r.uuid()
    caller = r.service_role(s.account, "web-instance-role", "s3.amazonaws.com") if r.chance(0.5) else usual.bot
    return s.call(
        "Decrypt",
        source="kms.amazonaws.com",
        who=caller,
        request={
            "encryptionAlgorithm": "SYMMETRIC_DEFAULT",
            "encryptionContext": {"aws:s3:arn": f"arn:aws:s3:::{usual.bucket}/data/{r.token(10)}.parquet"},
        },
        ro=True,
        resources=[
            {
                "accountId": s.account,
                "type": "AWS::KMS::Key",
                "ARN": f"arn:aws:kms:{s.region}:{s.account}:key/{key_id}",
            }
        ],
    )


def lookup_events(s: Session, usual: Usual) -> Json:
    return s.call(
        "LookupEvents",
        source="cloudtrail.amazonaws.com",
        who=usual.person,
        request={"maxResults": 50, "lookupAttributes": [{"attributeKey": "ReadOnly", "attributeValue": "false"}]},
        ro=True,
    )


def console_login(s: Session, usual: Usual) -> Json:
    """A sign-in: CloudTrail logs no access key, session context or TLS details for it."""
    user = s.maker.someone(s.account, kinds=("IAMUser", "Root"))
    record = s.call(
        "ConsoleLogin",
        source="signin.amazonaws.com",
        region="us-east-1",
        who=user,
        request=None,
        response={"ConsoleLogin": "Success"},
        ro=False,
        event_type="AwsConsoleSignIn",
        additional={
            "LoginTo": "https://console.aws.amazon.com/console/home",
            "MobileVersion": "No",
            "MFAUsed": "Yes",
        },
    )
    record["userIdentity"].pop("accessKeyId", None)
    record["userIdentity"].pop("sessionContext", None)
    record.pop("tlsDetails", None)
    record.pop("sessionCredentialFromConsole", None)
    return record


def describe_table(s: Session, usual: Usual) -> Json:
    return s.call("DescribeTable", source="dynamodb.amazonaws.com", who="carol", request={"tableName": "orders"},
                  ro=True)


def ssm_agent_heartbeat(s: Session, usual: Usual) -> Json:
    """The SSM agent: the noisiest caller of all."""
    r = s.maker
    agent = dataclasses.replace(
        r.service_role(s.account, "web-instance-role", "ec2.amazonaws.com"),
        session=usual.instance,
        invoked_by="",
        agents=("aws-sdk-go/1.44.260 (go1.20.5; linux; amd64) amazon-ssm-agent/3.3.40.0",),
        ips=(r.private_ip(),),
    )
    return s.call(
        "UpdateInstanceInformation",
        source="ssm.amazonaws.com",
        who=agent,
        request={
            "instanceId": usual.instance,
            "agentVersion": "3.3.40.0",
            "agentStatus": "Active",
            "platformType": "Linux",
            "platformName": "Amazon Linux",
            "platformVersion": "2",
            "iPAddress": r.private_ip(),
            "computerName": f"ip-10-0-{r.randint(0, 255)}-{r.randint(1, 254)}.ec2.internal",
            "agentName": "amazon-ssm-agent",
            "availabilityZone": f"{s.region}a",
        },
        ro=False,
        vpce=r.chance(0.3),
    )


def get_account_summary(s: Session, usual: Usual) -> Json:
    return s.call("GetAccountSummary", source="iam.amazonaws.com", region="us-east-1", who="root", request=None,
                  ro=True)


#: (weight, kind): how often each kind of everyday call comes, like a quiet production account.
NOISE: list[tuple[int, Callable[[Session, Usual], Json]]] = [
    (14, get_bucket_acl),
    (6, list_buckets),
    (10, describe_instances),
    (3, launch_instance),
    (5, describe_security_groups),
    (8, assume_role),
    (5, get_caller_identity),
    (4, list_roles),
    (8, decrypt),
    (5, lookup_events),
    (3, console_login),
    (2, describe_table),
    (12, ssm_agent_heartbeat),
    (4, get_account_summary),
]


def noise(r: RecordMaker, account: str, region: str, at: datetime) -> Json:
    """One realistic non-OpsWorks record, at ``at``."""
    kind = r.rng.choices([k for _, k in NOISE], weights=[w for w, _ in NOISE])[0]
    usual = Usual(
        person=r.someone(account, console=True),
        bot=r.someone(account, console=False),
        bucket=r.choice("app-assets-prod", f"terraform-state-{account}", "org-trail-logs", "backups-eu"),
        instance=r.ec2_id("i"),
    )
    return kind(Session.at(r, account, region, at), usual)


# -- EC2 RunInstances -------------------------------------------------------------------------------


def run_instances(s: Session, *, who: Actor, instance: str) -> Json:
    """EC2 RunInstances by ``who`` for ``instance`` (someone's own, or OpsWorks starting an instance)."""
    r = s.maker
    ami, subnet, sg = r.ec2_id("ami"), r.ec2_id("subnet"), r.ec2_id("sg")
    instance_type = r.choice("t3.medium", "m5.large", "c5.xlarge")
    at = s.tick()
    return s.call(
        "RunInstances",
        source="ec2.amazonaws.com",
        request={
            "instancesSet": {"items": [{"imageId": ami, "minCount": 1, "maxCount": 1}]},
            "instanceType": instance_type,
            "blockDeviceMapping": {},
            "monitoring": {"enabled": False},
            "disableApiTermination": False,
            "disableApiStop": False,
            "clientToken": r.uuid(),
            "subnetId": subnet,
            "groupSet": {"items": [{"groupId": sg}]},
            "iamInstanceProfile": {"name": "web-instance-profile"},
            "tagSpecificationSet": {
                "items": [
                    {"resourceType": "instance", "tags": [{"key": "Name", "value": f"web-{r.randint(1, 99):02d}"}]}
                ]
            },
        },
        response={
            "requestId": r.uuid(),
            "reservationId": r.ec2_id("r"),
            "ownerId": who.account,
            "groupSet": {},
            "instancesSet": {
                "items": [
                    {
                        "instanceId": instance,
                        "imageId": ami,
                        "currentInstanceBootMode": "legacy-bios",
                        "instanceState": {"code": 0, "name": "pending"},
                        "privateDnsName": f"ip-10-0-{r.randint(0, 255)}-{r.randint(1, 254)}.ec2.internal",
                        "amiLaunchIndex": 0,
                        "productCodes": {},
                        "instanceType": instance_type,
                        "launchTime": epoch_ms(at),
                        "placement": {"availabilityZone": f"{s.region}a", "tenancy": "default"},
                        "monitoring": {"state": "disabled"},
                        "subnetId": subnet,
                        "vpcId": r.ec2_id("vpc"),
                        "privateIpAddress": r.private_ip(),
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
                                    "networkInterfaceId": r.ec2_id("eni"),
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
        },
        ro=False,
        who=who,
        at=at,
    )


# -- look-alikes ------------------------------------------------------------------------------------


def opsworks_starts_an_instance(s: Session, opsworks_role: Actor) -> Json:
    """OpsWorks starting an instance for StartInstance / CreateInstance."""
    return run_instances(s, who=opsworks_role, instance=s.maker.ec2_id("i"))


def opsworks_describes_an_instance(s: Session, opsworks_role: Actor) -> Json:
    return s.call(
        "DescribeInstances",
        source="ec2.amazonaws.com",
        who=opsworks_role,
        request={"instancesSet": {"items": [{"instanceId": s.maker.ec2_id("i")}]}, "filterSet": {}},
        ro=True,
    )


def opsworks_assumes_its_role(s: Session, opsworks_role: Actor) -> Json:
    r = s.maker
    role = f"arn:aws:iam::{s.account}:role/service-role/aws-opsworks-service-role"
    return s.call(
        "AssumeRole",
        source="sts.amazonaws.com",
        who=r.service(s.account, OPSWORKS),
        request={"roleArn": role, "roleSessionName": "OpsWorks", "durationSeconds": 3600},
        response={
            "credentials": {
                "accessKeyId": f"ASIA{r.token(16, 'upper')}",
                "sessionToken": f"IQoJb3JpZ2luX2VjE{r.token(300)}",
                "expiration": java_date(s.tick() + timedelta(hours=1)),
            },
            "assumedRoleUser": {
                "assumedRoleId": f"AROA{r.token(17, 'upper')}:OpsWorks",
                "arn": f"arn:aws:sts::{s.account}:assumed-role/aws-opsworks-service-role/OpsWorks",
            },
        },
        ro=True,
        shared=True,
        resources=[{"accountId": s.account, "type": "AWS::IAM::Role", "ARN": role}],
    )


def service_role_is_created(s: Session, opsworks_role: Actor) -> Json:
    """A request parameter value that contains the service principal."""
    r = s.maker
    policy = json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": OPSWORKS}, "Action": "sts:AssumeRole"}],
    })
    return s.call(
        "CreateRole",
        source="iam.amazonaws.com",
        region="us-east-1",
        who="deploy-automation",
        request={"roleName": "aws-opsworks-service-role", "path": "/service-role/", "assumeRolePolicyDocument": policy},
        response={
            "role": {
                "path": "/service-role/",
                "roleName": "aws-opsworks-service-role",
                "roleId": f"AROA{r.token(17, 'upper')}",
                "arn": f"arn:aws:iam::{s.account}:role/service-role/aws-opsworks-service-role",
                "createDate": java_date(s.tick()),
                "assumeRolePolicyDocument": policy,
            }
        },
        ro=False,
    )


def opsworks_cm_creates_its_cloudformation_stack(s: Session, opsworks_role: Actor) -> Json:
    r = s.maker
    cm_role = r.service_role(s.account, "aws-opsworks-cm-service-role", "opsworks-cm.amazonaws.com")
    stack = f"aws-opsworks-cm-{r.token(8, 'lower')}"
    return s.call(
        "CreateStack",
        source="cloudformation.amazonaws.com",
        who=cm_role,
        request={
            "stackName": stack,
            "templateURL": f"https://opsworks-cm-{s.region}-prod-default-assets.s3.amazonaws.com/misc/"
            "opsworks-cm-server.yaml",
            "parameters": [{"parameterKey": "CallerService", "parameterValue": "opsworks-cm.amazonaws.com"}],
            "capabilities": ["CAPABILITY_IAM"],
            "onFailure": "DO_NOTHING",
        },
        response={"stackId": f"arn:aws:cloudformation:{s.region}:{s.account}:stack/{stack}/{r.uuid()}"},
        ro=False,
    )


def opsworks_registers_with_a_load_balancer(s: Session, opsworks_role: Actor) -> Json:
    r = s.maker
    return s.call(
        "RegisterInstancesWithLoadBalancer",
        source="elasticloadbalancing.amazonaws.com",
        who=opsworks_role,
        request={"loadBalancerName": "web-prod-elb", "instances": [{"instanceId": r.ec2_id("i")}]},
        response={"instances": [{"instanceId": r.ec2_id("i")}]},
        ro=False,
    )


#: Non-OpsWorks records that mention OpsWorks outside eventSource (picked with equal chances).
LOOKALIKES: list[Callable[[Session, Actor], Json]] = [
    opsworks_starts_an_instance,
    opsworks_describes_an_instance,
    opsworks_assumes_its_role,
    service_role_is_created,
    opsworks_cm_creates_its_cloudformation_stack,
    opsworks_registers_with_a_load_balancer,
]


def lookalike(r: RecordMaker, account: str, region: str, at: datetime, which: int | None = None) -> Json:
    """A record that mentions OpsWorks yet is another service's, at ``at``: ``LOOKALIKES[which]``, or one
    picked at random. OpsWorks' service role is drawn whichever kind it is, used or not, so that the draws
    after it do not depend on the kind."""
    kind = LOOKALIKES[r.rng.randrange(len(LOOKALIKES)) if which is None else which % len(LOOKALIKES)]
    opsworks_role = r.service_role(account, "aws-opsworks-service-role", OPSWORKS)
    return kind(Session.at(r, account, region, at), opsworks_role)


# -- Insights ---------------------------------------------------------------------------------------


def insight(r: RecordMaker, account: str, region: str, at: datetime) -> list[Json]:
    """An Insights file's records about OpsWorks call rates from ``at``: they mention OpsWorks, yet no log
    file holds them."""
    shared = r.uuid()
    return [
        {
            "eventVersion": "1.08",
            "eventTime": fmt(when),
            "awsRegion": region,
            "eventID": r.uuid(),
            "eventType": "AwsCloudTrailInsight",
            "recipientAccountId": account,
            "sharedEventID": shared,
            "insightDetails": {
                "state": state,
                "eventSource": OPSWORKS,
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
        for state, when in (("Start", at), ("End", at + timedelta(minutes=10)))
    ]
