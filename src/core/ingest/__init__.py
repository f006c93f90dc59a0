"""The write path, what the Lambda function runs, one module per step of the flow:

    triggers    a trigger event -> the S3 objects it announces (pure)
    sources     opening an S3 object or a local file, its errors classified
    logfile     which keys are log files; their bytes, inflated within a cap
    sourcesearch  the byte search: may a file (or a record) hold a selected eventSource?
    trailfile   the records of one log file, at their exact boundaries, parsed where the search points
    selection   the eventSource predicate (OpsWorks, OpsWorks CM)
    catalog     the OpsWorks actions: read-only or not, resource parameters, secret fields
    normalize   a record -> the normalized event, secrets redacted (pure)
    items       what the table holds for an event: its item and document, links, relations (pure)
    store       the table writes: an event's items batched, file state and ledger, retried
    sinks       where the events go: the table (with the file's state), the caller, nowhere (dry run)
    digests, publickeys, proof   digest files: parsed, signature checked, compared with the ledger
    pipeline    one object in, one Outcome out, through the steps above
    records     records that come without a log file (Event history, the tripwire): the same steps
    history     CloudTrail Event history (LookupEvents) of one account-Region, within its rate limit

May import the base (event, keys, model, errors, settings) and libraries; never read/, cli/ or handlers/.
"""
