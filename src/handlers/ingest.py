"""Lambda entry point: turn a trigger into object refs, and Outcomes into the trigger's reply.

- SQS (S3 notifications, SNS envelopes, CloudTrail's notification, EventBridge events as bodies):
  only the messages whose objects failed transiently are reported in batchItemFailures.
- S3 Batch Operations: one result per task, Succeeded / TemporaryFailure / PermanentFailure.
- Direct (S3, SNS or EventBridge invoking the function): a transient failure raises, so Lambda
  retries the event.
- An "AWS API Call via CloudTrail" event (the tripwire, as an SQS body or direct): its record is stored
  from the message (core.ingest.records, the same selection and normalize), counted as OpsWorksCalls.
Which shape is which, and how keys are decoded, is ingest/triggers.py.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from core.ingest.pipeline import DigestFiles, NoDigestCheck, Pipeline
from core.ingest.proof import DigestCheck, S3Objects
from core.ingest.publickeys import CloudTrailPublicKeys, PublicKeys, keys_from_files
from core.ingest.records import RecordIngest
from core.ingest.selection import Selection
from core.ingest.sinks import TableSink
from core.ingest.sources import S3Source
from core.ingest.store import RETRIES, EventStore
from core.ingest.triggers import (
    ApiCall,
    Delivery,
    Trigger,
    UnknownMessage,
    batch_response,
    batch_result,
    batch_tasks,
    deliveries_from_event,
    deliveries_from_message,
    trigger_of,
)
from core.model import ObjectRef, Outcome, Status
from core.settings import Settings
from handlers.observability import logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch import BatchProcessor
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

s3_client = boto3.client("s3")
dynamodb_client = boto3.client("dynamodb", config=RETRIES)


@cache
def sqs_processor() -> BatchProcessor:
    """Built on the first SQS delivery: Powertools' batch module imports asyncio (~20 ms), which
    direct and S3 Batch Operations (backfill) invocations never need."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

    return BatchProcessor(event_type=EventType.SQS)


class RetryLater(Exception):
    """Some object of this delivery failed transiently: the trigger must deliver it again."""


@cache
def pipeline() -> Pipeline:
    """Built on the first invocation, not at import, so a bad setting fails the call with its name."""
    settings = Settings.from_env()
    store = EventStore(dynamodb_client, settings.table_name)
    return Pipeline(
        open=S3Source(s3_client).open,
        selection=Selection(settings.event_sources),
        sink=TableSink(store, retention_days=settings.retention_days),
        max_decompressed_bytes=settings.max_decompressed_bytes,
        digests=digest_files(settings.digest_public_keys, store),
    )


def digest_files(key_source: str | None, store: EventStore) -> DigestFiles:
    """Digests checked when DIGEST_PUBLIC_KEYS says where CloudTrail's keys come from; else not checked."""
    if key_source is None:
        return NoDigestCheck()
    return DigestCheck(S3Objects(s3_client).fetch, public_keys(key_source), store)


def record_ingest() -> RecordIngest:
    """The tripwire's path: records from messages, through the pipeline's own selection and table (built
    from pipeline(), so there is one place that reads the settings and one cache to clear)."""
    built = pipeline()
    assert isinstance(built.sink, TableSink), "the function's pipeline writes to the table"
    return RecordIngest(built.selection, built.sink.store, retention_days=built.sink.retention_days)


def public_keys(source: str) -> PublicKeys:
    """CloudTrail's keys by ListPublicKeys (a client per Region, made on first use), or from a file."""
    if source == "cloudtrail":
        return CloudTrailPublicKeys(cache(lambda region: boto3.client("cloudtrail", region_name=region)))
    return keys_from_files([Path(source)])


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    trigger = trigger_of(event)
    if trigger is Trigger.SQS:
        from aws_lambda_powertools.utilities.batch import process_partial_response

        return dict(process_partial_response(event=event, record_handler=handle_message,
                                             processor=sqs_processor(), context=context))
    if trigger is Trigger.BATCH_OPERATIONS:
        return handle_batch_operations(event)
    try:
        deliveries = deliveries_from_event(event)
    except UnknownMessage as exc:
        report_unknown(exc, "direct invocation")
        raise
    ingest_all(deliveries)
    return {"batchItemFailures": []}


def handle_message(record: SQSRecord) -> None:
    """One SQS message. A body in no known shape raises, so it is retried and ends in the
    dead-letter queue: kept where an operator sees it (an alarm watches the DLQ) rather than
    acknowledged and lost. It is logged here with its reason and counted as UnknownMessages."""
    try:
        deliveries = deliveries_from_message(record.body)
    except UnknownMessage as exc:
        report_unknown(exc, f"SQS message {record.message_id}")
        raise
    ingest_all(deliveries)


def handle_batch_operations(event: dict[str, Any]) -> dict[str, Any]:
    """Every task of the invocation answered; a failure of one task never hides the others."""
    results = []
    for task in batch_tasks(event):
        with logger.append_context_keys(task_id=task.task_id):
            results.append(batch_result(task, ingest_one(task.ref)))
    return batch_response(event, results)


def report_unknown(exc: UnknownMessage, what: str) -> None:
    logger.error(f"{what} announces no object in a known shape: {exc.reason}")
    metrics.add_metric(name="UnknownMessages", unit=MetricUnit.Count, value=1)


def ingest_all(deliveries: list[Delivery]) -> list[Outcome]:
    """Ingest every object (or API call), then raise if any must be retried: one bad object never stops
    the others."""
    outcomes = [ingest_api_call(d) if isinstance(d, ApiCall) else ingest_one(d) for d in deliveries]
    retry = [o for o in outcomes if o.retry]
    if retry:
        raise RetryLater("; ".join(f"{o.ref.uri}: {o.reason}" for o in retry))
    return outcomes


def ingest_one(ref: ObjectRef) -> Outcome:
    with logger.append_context_keys(bucket=ref.bucket, key=ref.key):
        outcome = pipeline().ingest(ref)
        report(outcome)
    return outcome


def ingest_api_call(call: ApiCall) -> Outcome:
    """One record the tripwire delivered: stored (unless the table holds it already), counted as an
    OpsWorks call. A record normalize refuses is a permanent failure: raised, so the message ends in the
    dead-letter queue where the alarm shows it, rather than acknowledged and lost."""
    event_id = call.record.get("eventID")
    with logger.append_context_keys(source_object=call.origin.key, event_id=event_id):
        outcome = record_ingest().ingest(call.origin, [call.record])
        fields = {"status": outcome.status.value, "reason": outcome.reason, "matched": outcome.matched,
                  "written": outcome.written, "event_name": call.record.get("eventName"),
                  "event_source": call.record.get("eventSource")}
        if outcome.matched:
            metrics.add_metric(name="OpsWorksCalls", unit=MetricUnit.Count, value=outcome.matched)
        if outcome.status is Status.FAILED:
            logger.error(f"API call not stored: {outcome.reason}", extra=fields)
            if outcome.permanent:
                raise UnknownMessage(outcome.reason)
            return outcome
        logger.info(f"API call {call.record.get('eventName')}: {outcome.written} event(s) stored", extra=fields)
        metrics.add_metric(name="EventsStored", unit=MetricUnit.Count, value=outcome.written)
    return outcome


def report(outcome: Outcome) -> None:
    """The one log line and the metrics of an Outcome; failures are logged here and nowhere else."""
    fields = {"status": outcome.status.value, "reason": outcome.reason, "bytes_read": outcome.bytes_read,
              "matched": outcome.matched, "written": outcome.written}
    if outcome.findings or outcome.missing_files:
        logger.error(f"integrity: {outcome.reason}", extra={"findings": outcome.findings,
                                                            "missing_log_files": outcome.missing_files})
        metrics.add_metric(name="IntegrityFindings", unit=MetricUnit.Count, value=len(outcome.findings))
        metrics.add_metric(name="MissingLogFiles", unit=MetricUnit.Count, value=outcome.missing_files)
    if outcome.status is Status.FAILED:
        kind = "permanent" if outcome.permanent else "transient"
        logger.error(f"{kind} failure: {outcome.reason}", extra=fields, exc_info=outcome.error)
        metrics.add_metric(name=f"Files{kind.capitalize()}Failed", unit=MetricUnit.Count, value=1)
        return
    logger.info(f"{outcome.status.value}: {outcome.reason or outcome.ref.uri}", extra=fields)
    metrics.add_metric(name=f"Files{outcome.status.value.capitalize()}", unit=MetricUnit.Count, value=1)
    if outcome.matched:
        metrics.add_metric(name="EventsStored", unit=MetricUnit.Count, value=outcome.written)
