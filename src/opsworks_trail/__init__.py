"""opsworks-trail: the audit trail of AWS OpsWorks calls, from CloudTrail logs to DynamoDB."""
