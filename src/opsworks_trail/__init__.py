"""opsworks-trail: who called AWS OpsWorks Stacks and OpsWorks CM, from CloudTrail logs to DynamoDB.

The folders follow the data, one way (pyproject.toml [tool.importlinter] keeps it so; `make lint` checks):

    handlers/  the Lambda entry point: a trigger in, Outcomes out          imports ingest and the base
    cli/       the `opsworks-trail` command                                imports everything below
    present/   terminal tables and the HTML report                         imports read, ingest, the base
    read/      the audit questions (Query), what the digests prove         imports ingest, the base
    ingest/    trigger -> refs -> file -> records -> events -> store       imports the base only
    event.py, keys.py, model.py, errors.py, settings.py: the base, shared by all (the normalized
    event's type, the table's key formats, object refs and Outcomes, failures, the function's settings)

The Lambda package holds handlers/, ingest/ and the base only. Developer tools (the demo, sample data,
the in-process invoker) live in the checkout's workshop/, never in this package.
"""
