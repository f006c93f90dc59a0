"""The sample trail's constants: its Regions, a custom key prefix, the parameters naming a resource."""

from __future__ import annotations

REGIONS = ("us-east-1", "us-west-2", "eu-west-1")

#: A prefix with a space and a '+': some log files live under it (keys must be URL-decoded).
CUSTOM_PREFIX = "my trail+logs/"

#: Parameter names (as CloudTrail logs them, lowerCamelCase) naming an OpsWorks resource, and its type.
#: A manifest's ``resources`` are these keys found anywhere in requestParameters / responseElements outside
#: lists of maps (this matches src/core/ingest/catalog.json for every action the sample uses;
#: tests/test_synthetic.py checks it).
RESOURCE_KEYS = {
    "stackId": "stack",
    "stackIds": "stack",
    "layerId": "layer",
    "layerIds": "layer",
    "instanceId": "instance",
    "instanceIds": "instance",
    "appId": "app",
    "appIds": "app",
    "deploymentId": "deployment",
    "deploymentIds": "deployment",
    "commandId": "command",
    "commandIds": "command",
    "volumeId": "volume",
    "volumeIds": "volume",
    "raidArrayId": "raid-array",
    "raidArrayIds": "raid-array",
    "elasticIp": "elastic-ip",
    "elasticIps": "elastic-ip",
    "elasticLoadBalancerName": "elastic-load-balancer",
    "rdsDbInstanceArn": "rds-db-instance",
    "rdsDbInstanceArns": "rds-db-instance",
    "ecsClusterArn": "ecs-cluster",
    "ecsClusterArns": "ecs-cluster",
    "iamUserArn": "user-profile",
    "iamUserArns": "user-profile",
    "serverName": "server",
    "backupId": "backup",
    "nodeName": "node",
}
