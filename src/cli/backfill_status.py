"""`opsworks-trail backfill --status JOB_ID` (and `--watch`): a long backfill, watched.

The job's tasks (s3control DescribeJob: succeeded / failed / total, and an ETA at the rate so far), the
function's own metrics per minute (CloudWatch GetMetricData over the metrics handlers/ingest.py emits, in
the OpsWorksTrail namespace with the `service` dimension), and the dead-letter queue's depth (SQS
GetQueueAttributes). The stack's dashboard (template.yaml, BackfillDashboard) draws the same figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cli.backfill_jobs import JobProgress

NAMESPACE = "OpsWorksTrail"
SERVICE = "opsworks-trail"
"""POWERTOOLS_METRICS_NAMESPACE and POWERTOOLS_SERVICE_NAME in template.yaml."""
FUNCTION_METRICS = {
    "ingested": "FilesIngested",
    "skipped": "FilesSkipped",
    "digests": "DigestsChecked",
    "failed_permanent": "FilesPermanentFailed",
    "failed_transient": "FilesTransientFailed",
    "events": "EventsStored",
    "integrity": "IntegrityFindings",
}
"""Figure -> the metric handlers/ingest.py `report` emits for it."""
WINDOW_MINUTES = 15


@dataclass(frozen=True)
class FunctionRates:
    """Per minute over the window, averaged; None for a metric with no data point (nothing happened)."""

    per_minute: dict[str, float]
    minutes: int


def function_rates(cloudwatch: Any, now: datetime, minutes: int = WINDOW_MINUTES) -> FunctionRates:
    queries = [{"Id": figure, "ReturnData": True, "MetricStat": {
        "Metric": {"Namespace": NAMESPACE, "MetricName": metric, "Dimensions": [{"Name": "service", "Value": SERVICE}]},
        "Period": 60, "Stat": "Sum"}} for figure, metric in FUNCTION_METRICS.items()]
    response = cloudwatch.get_metric_data(MetricDataQueries=queries, StartTime=now - timedelta(minutes=minutes),
                                          EndTime=now, ScanBy="TimestampDescending")
    totals = {figure: 0.0 for figure in FUNCTION_METRICS}
    for result in response.get("MetricDataResults", []):
        totals[result["Id"]] = float(sum(result.get("Values", [])))
    return FunctionRates({figure: total / minutes for figure, total in totals.items()}, minutes)


def dead_letter_depth(sqs: Any, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 86400:
        return f"{seconds // 86400}d {seconds % 86400 // 3600}h"
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m {seconds % 60:02d}s"


def render(job: JobProgress, rates: FunctionRates | None, dead_letters: int | None) -> list[str]:
    share = f" ({job.done / job.total:.1%})" if job.total else ""
    eta = job.eta_seconds
    lines = [f"job {job.job_id}: {job.status}; tasks {job.succeeded:,} succeeded, {job.failed:,} failed, "
             f"{job.total:,} total{share}; "
             + (f"ETA {duration(eta)} at the rate so far" if eta is not None else "ETA -")
             + (f"; active {duration(job.elapsed_seconds)}" if job.elapsed_seconds else "")]
    lines += [f"  failure: {reason}" for reason in job.failure_reasons]
    if job.generated_manifest:
        lines.append(f"  manifest S3 generated: {job.generated_manifest}")
    if job.report and (job.failed or job.status in ("Complete", "Failed", "Cancelled")):
        lines.append(f"  report of failed tasks: {job.report}")
    if rates is not None:
        r = rates.per_minute
        lines.append(f"function, per minute over the last {rates.minutes} min: {r['ingested']:,.0f} files "
                     f"ingested, {r['skipped']:,.0f} skipped, {r['digests']:,.0f} digests checked, "
                     f"{r['failed_permanent'] + r['failed_transient']:,.1f} failed "
                     f"({r['failed_permanent']:,.1f} permanent), {r['events']:,.0f} events stored, "
                     f"{r['integrity']:,.1f} integrity findings")
    if dead_letters is not None:
        lines.append(f"dead-letter queue: {dead_letters:,} messages")
    return lines


FINAL_STATES = frozenset({"Complete", "Failed", "Cancelled"})
