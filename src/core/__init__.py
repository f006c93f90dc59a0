"""opsworks-trail's core: what the Lambda function and the command line share, with no Lambda types.

Who called AWS OpsWorks Stacks and OpsWorks CM, from CloudTrail logs to DynamoDB. The folders follow
the data, one way (pyproject.toml [tool.importlinter] keeps it so; `make lint` checks):

    ingest/    trigger -> refs -> file -> records -> events -> store      imports the base only
    read/      the audit questions (Query), what the digests prove        imports ingest, the base
    event.py, keys.py, model.py, errors.py, settings.py: the base, shared by all (the normalized
    event's type, the table's key formats, object refs and Outcomes, failures, the function's settings)

Two doors stand over it and never import each other: src/handlers/ (the Lambda function) and src/cli/
(the `opsworks-trail` command, with what renders for people). May import nothing of either door. The
Lambda package holds handlers/ and core/ without read/.
"""
