"""The OpsWorks Stacks story: a stack's life, CreateStack .. DeleteStack, over seven sessions.

Each ``s.call(ACTION, request, response)`` is one API call as CloudTrail records it, made by the
story's caller (``by``) unless ``who=`` names someone else (a name from ``people.py``), read-only if
``ro=True``, failed if ``error=(code, message)``. Values drawn from ``r`` (ids, secrets, choices) come
from the run's seeded random generator, in the order the code asks for them: change a step, and the
bytes after it change too (the tests count what the manifest says, so that is fine).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from workshop.sample_data.calls import Session, Story
from workshop.sample_data.records import Json, RecordMaker
from workshop.sample_data.services import lookalike, run_instances

OPSWORKS = "opsworks.amazonaws.com"


def stack(r: RecordMaker, account: str, region: str, *, name: str, by: str, at: Sequence[float]) -> list[Session]:
    """A stack called ``name`` built and run by ``by`` (an automation role or a console person), torn down at
    the end; ``at``: where each of the seven sessions starts, as fractions of the trail's window."""
    person, operator = "alice", "carol"
    stack_id = r.uuid()
    layer_ids = [r.uuid(), r.uuid()]
    instance_ids = [r.uuid(), r.uuid(), r.uuid()]
    app_id = r.uuid()
    deploy_ids = [r.uuid(), r.uuid()]
    volume_id = r.uuid()
    ec2_ids = [r.ec2_id("i"), r.ec2_id("i"), r.ec2_id("i")]
    story = Story(r, account, region, source=OPSWORKS, caller=by)

    # 1: the stack and its layers
    s = story.session(at[0])
    s.call(
        "CreateStack",
        {
            "name": name,
            "region": region,
            "vpcId": r.ec2_id("vpc"),
            "attributes": {"Color": "rgb(45, 114, 184)"},
            "serviceRoleArn": f"arn:aws:iam::{account}:role/service-role/aws-opsworks-service-role",
            "defaultInstanceProfileArn": f"arn:aws:iam::{account}:instance-profile/aws-opsworks-ec2-role",
            "defaultOs": "Amazon Linux 2",
            "hostnameTheme": "Layer_Dependent",
            "defaultSubnetId": r.ec2_id("subnet"),
            "configurationManager": {"name": "Chef", "version": "12"},
            "useCustomCookbooks": True,
            "useOpsworksSecurityGroups": True,
            "customCookbooksSource": {
                "type": "git",
                "url": f"git@github.com:example/{name}-cookbooks.git",
                "sshKey": r.secret(),
                "revision": "main",
            },
            "defaultSshKeyName": f"{name}-ops",
            "defaultRootDeviceType": "ebs",
            "agentVersion": "LATEST",
        },
        {"stackId": stack_id},
    )
    for layer_id, short in zip(layer_ids, ("web", "worker"), strict=True):
        s.call(
            "CreateLayer",
            {
                "stackId": stack_id,
                "type": "custom",
                "name": f"{name} {short}",
                "shortname": short,
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
            {"layerId": layer_id},
        )
    s.call("DescribeStacks", {"stackIds": [stack_id]}, ro=True)

    # 2: instances, and OpsWorks starting them in EC2
    s = story.session(at[1])
    instance_layers = [layer_ids[0], layer_ids[0], layer_ids[1]]
    for n, (instance_id, layer_id) in enumerate(zip(instance_ids, instance_layers, strict=True), start=1):
        s.call(
            "CreateInstance",
            {
                "stackId": stack_id,
                "layerIds": [layer_id],
                "instanceType": r.choice("t3.medium", "m5.large"),
                "os": "Amazon Linux 2",
                "hostname": f"{name}-{n}",
                "sshKeyName": f"{name}-ops",
                "architecture": "x86_64",
                "rootDeviceType": "ebs",
                "installUpdatesOnBoot": True,
                "virtualizationType": "hvm",
            },
            {"instanceId": instance_id},
        )
    s.call("DescribeInstances", {"stackId": stack_id}, ro=True)
    for instance_id, ec2_id in zip(instance_ids, ec2_ids, strict=True):
        s.call("StartInstance", {"instanceId": instance_id})
        opsworks_role = r.service_role(account, "aws-opsworks-service-role", OPSWORKS)
        ec2 = Session.at(r, account, region, s.tick())
        s.lookalikes.append(run_instances(ec2, who=opsworks_role, instance=ec2_id))

    # 3: the app (secrets!), a validation failure first, the database
    s = story.session(at[2])
    app: Json = {
        "stackId": stack_id,
        "shortname": f"{name}-app",
        "name": f"{name} app",
        "type": "other",
        "description": "Main application",
        "appSource": {
            "type": "git",
            "url": f"https://git.example.com/example/{name}.git",
            "username": "deploy-bot",
            "password": r.secret(),
            "sshKey": r.secret(),
            "revision": "v1.4.2",
        },
        "domains": [f"{name}.example.com"],
        "enableSsl": True,
        "sslConfiguration": {
            "certificate": f"-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIE{r.token(40)}\n-----END CERTIFICATE-----",
            "privateKey": r.secret(),
            "chain": "",
        },
        "attributes": {"DocumentRoot": "public"},
        "environment": [
            {"key": "APP_ENV", "value": "production", "secure": False},
            {"key": "DATABASE_PASSWORD", "value": r.secret(), "secure": True},
        ],
        "dataSources": [
            {"type": "RdsDbInstance", "arn": f"arn:aws:rds:{region}:{account}:db:{name}-db", "databaseName": "app"}
        ],
    }
    bad_app = {**app, "shortname": f"{name} app!", "appSource": {**app["appSource"], "password": r.secret()}}
    s.call(
        "CreateApp",
        bad_app,
        who=person,
        error=("ValidationException", "Please provide a valid value for the Shortname parameter"),
    )
    s.call("CreateApp", app, {"appId": app_id})
    s.call(
        "RegisterRdsDbInstance",
        {
            "stackId": stack_id,
            "rdsDbInstanceArn": f"arn:aws:rds:{region}:{account}:db:{name}-db",
            "dbUser": "app",
            "dbPassword": r.secret(),
        },
    )

    # 4: deploy
    s = story.session(at[3])
    s.call(
        "CreateDeployment",
        {
            "stackId": stack_id,
            "appId": app_id,
            "instanceIds": [instance_ids[0], instance_ids[1]],
            "command": {"name": "deploy", "args": {}},
            "comment": f"release v1.4.2 by pipeline #{r.randint(100, 999)}",
            "customJson": json.dumps({"deploy": {f"{name}-app": {"migrate": True}}}),
        },
        {"deploymentId": deploy_ids[0]},
    )
    s.call("DescribeDeployments", {"deploymentIds": [deploy_ids[0]]}, ro=True)
    s.call("DescribeCommands", {"deploymentId": deploy_ids[0]}, ro=True)
    s.call("DescribeCommands", {"commandIds": [r.uuid(), r.uuid()]}, ro=True, who=person)

    # 5: day-two changes by a person in the console
    s = story.session(at[4])
    elastic_ip = f"{r.choice('198.51.100', '203.0.113')}.{r.randint(1, 254)}"
    user_arn = f"arn:aws:iam::{account}:user/alice"
    s.call(
        "UpdateLayer",
        {"layerId": layer_ids[0], "autoAssignElasticIps": True, "customRecipes": {"configure": [f"{name}::configure"]}},
        who=person,
    )
    s.call("AssociateElasticIp", {"elasticIp": elastic_ip, "instanceId": instance_ids[0]}, who=person)
    s.call("AttachElasticLoadBalancer", {"elasticLoadBalancerName": f"{name}-elb", "layerId": layer_ids[0]}, who=person)
    s.call("RegisterVolume", {"ec2VolumeId": r.ec2_id("vol"), "stackId": stack_id}, {"volumeId": volume_id}, who=person)
    s.call(
        "CreateUserProfile",
        {
            "iamUserArn": user_arn,
            "sshUsername": "alice",
            "sshPublicKey": f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{r.token(43)} alice@laptop",
            "allowSelfManagement": True,
        },
        {"iamUserArn": user_arn},
        who=person,
    )
    s.call(
        "SetPermission",
        {"stackId": stack_id, "iamUserArn": user_arn, "allowSsh": True, "allowSudo": False, "level": "deploy"},
        who=person,
    )
    s.lookalikes.append(lookalike(r, account, region, s.tick(), which=5))

    # 6: an operator without rights, a recipe run, stop/reboot
    s = story.session(at[5])
    s.call(
        "StopInstance",
        {"instanceId": instance_ids[2], "force": False},
        who=operator,
        error=(
            "AccessDenied",
            f"User: arn:aws:sts::{account}:federated-user/carol is not authorized to perform: "
            f"opsworks:StopInstance on resource: arn:aws:opsworks:{region}:{account}:stack/{stack_id}/",
        ),
    )
    s.call(
        "CreateDeployment",
        {
            "stackId": stack_id,
            "instanceIds": [instance_ids[2]],
            "layerIds": [layer_ids[1]],
            "command": {"name": "execute_recipes", "args": {"recipes": [f"{name}::rotate_logs"]}},
        },
        {"deploymentId": deploy_ids[1]},
    )
    s.call("StopInstance", {"instanceId": instance_ids[2]})
    s.call("RebootInstance", {"instanceId": instance_ids[1]})

    # 7: teardown
    s = story.session(at[6])
    s.call("DescribeInstances", {"instanceIds": instance_ids}, ro=True)
    s.call(
        "DeleteStack",
        {"stackId": stack_id},
        error=("ValidationException", "Cannot delete stack while it has apps, instances or layers"),
    )
    for instance_id in instance_ids:
        s.call("StopInstance", {"instanceId": instance_id, "force": True})
        s.call("DeleteInstance", {"instanceId": instance_id, "deleteElasticIp": True, "deleteVolumes": True})
    s.call("DeleteApp", {"appId": app_id})
    for layer_id in layer_ids:
        s.call("DeleteLayer", {"layerId": layer_id})
    s.call("DeleteStack", {"stackId": stack_id})
    return story.sessions
