"""Alarms and scaling policies use metrics that exist: real AWS metrics, or the EMF the workers really emit.

The original project's alarms never fired because they watched ``ApproximateNumberOfVisibleMessages``,
which no AWS service publishes. Every metric an alarm or scaling policy reads is checked here against
the list below, copied from AWS's documentation, or against the workers' own EMF output.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from common import metrics
from common.metrics import DIMENSION_SERVICE, MetricsEmitter
from common.names import BACKGROUND_JOB_SERVICE, MAIN_JOB_SERVICE

#: namespace -> metric name -> the dimension set the metric is published with.
AWS_METRICS: dict[str, dict[str, frozenset[str]]] = {
    # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html
    # ("The only dimension that Amazon SQS sends to CloudWatch is QueueName.")
    "AWS/SQS": dict.fromkeys(
        (
            "ApproximateAgeOfOldestMessage",
            "ApproximateNumberOfMessagesDelayed",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesVisible",
            "NumberOfEmptyReceives",
            "NumberOfMessagesDeleted",
            "NumberOfMessagesReceived",
            "NumberOfMessagesSent",
            "SentMessageSize",
        ),
        frozenset({"QueueName"}),
    ),
    # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/available-metrics.html
    # (service-level utilization: dimensions ClusterName and ServiceName)
    "AWS/ECS": dict.fromkeys(("CPUUtilization", "MemoryUtilization"), frozenset({"ClusterName", "ServiceName"})),
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Container-Insights-metrics-ECS.html
    # (task counts and utilization per ClusterName, ServiceName)
    "ECS/ContainerInsights": dict.fromkeys(
        (
            "CpuReserved",
            "CpuUtilized",
            "DesiredTaskCount",
            "MemoryReserved",
            "MemoryUtilized",
            "PendingTaskCount",
            "RunningTaskCount",
        ),
        frozenset({"ClusterName", "ServiceName"}),
    ),
}

#: Which service emits which EMF metric (common/metrics.py and the two worker packages).
EMITTED_BY: dict[str, str] = {
    metrics.TRIGGERS_RECEIVED: MAIN_JOB_SERVICE,
    metrics.TRIGGERS_REJECTED: MAIN_JOB_SERVICE,
    metrics.BACKGROUND_JOBS_QUEUED: MAIN_JOB_SERVICE,
    metrics.JOBS_SUCCEEDED: BACKGROUND_JOB_SERVICE,
    metrics.JOBS_FAILED: BACKGROUND_JOB_SERVICE,
    metrics.JOBS_TIMED_OUT: BACKGROUND_JOB_SERVICE,
    metrics.JOB_DURATION: BACKGROUND_JOB_SERVICE,
    metrics.JOB_QUEUE_LATENCY: BACKGROUND_JOB_SERVICE,
    metrics.JOB_LOG_DELIVERY_FAILURES: BACKGROUND_JOB_SERVICE,
    metrics.JOBS_DUPLICATE_SKIPPED: BACKGROUND_JOB_SERVICE,
    metrics.JOBS_CANCELLED: BACKGROUND_JOB_SERVICE,
}


@dataclass(frozen=True, slots=True)
class MetricUse:
    """One metric read by an alarm or a scaling policy."""

    where: str
    namespace: str
    name: str
    dimensions: dict[str, str]


def _alarm_metrics(tf_config) -> Iterator[MetricUse]:
    for block in tf_config.resources("aws_cloudwatch_metric_alarm"):
        body, where = block.body, block.address
        if "metric_name" in body:
            (dimensions,) = body["dimensions"]
            yield MetricUse(where, tf_config.resolve(body["namespace"]), body["metric_name"], dimensions)
        for query in body.get("metric_query", []):
            for metric in query.get("metric", []):
                (dimensions,) = metric["dimensions"]
                yield MetricUse(where, tf_config.resolve(metric["namespace"]), metric["metric_name"], dimensions)


def _scaling_metrics(tf_config) -> Iterator[MetricUse]:
    for block in tf_config.resources("aws_appautoscaling_policy"):
        for tracking in block.body.get("target_tracking_scaling_policy_configuration", []):
            for spec in tracking["customized_metric_specification"]:
                for query in spec["metrics"]:
                    for stat in query.get("metric_stat", []):
                        (metric,) = stat["metric"]
                        dimensions = {d["name"]: d["value"] for d in metric["dimensions"]}
                        yield MetricUse(block.address, metric["namespace"], metric["metric_name"], dimensions)


def _all_metric_uses(tf_config) -> list[MetricUse]:
    uses = [*_alarm_metrics(tf_config), *_scaling_metrics(tf_config)]
    assert len(uses) >= 10, "too few metrics found: the parser output changed shape"
    return uses


def _emit_and_parse(namespace: str, service: str, name: str) -> dict[str, Any]:
    """Run the workers' emitter into a buffer and parse the EMF line back."""
    stream = io.StringIO()
    emitter = MetricsEmitter(namespace=namespace, service=service, stream=stream, flush_interval_seconds=None)
    emitter.emit({name: 1.0}, job_type="x")
    emitter.flush()
    (line,) = stream.getvalue().splitlines()
    return json.loads(line)


def _extracted_metrics(document: dict[str, Any]) -> set[tuple[str, str, tuple[tuple[str, str], ...]]]:
    """What CloudWatch extracts from one EMF document, per the EMF specification."""
    extracted = set()
    aws = document["_aws"]
    assert isinstance(aws["Timestamp"], int)
    for directive in aws["CloudWatchMetrics"]:
        for dimension_set in directive["Dimensions"]:
            dims = tuple(sorted((key, document[key]) for key in dimension_set))
            assert all(isinstance(value, str) for _, value in dims), "dimension values must be strings"
            for metric in directive["Metrics"]:
                assert isinstance(document[metric["Name"]], int | float), "metric value must be a number"
                extracted.add((directive["Namespace"], metric["Name"], dims))
    return extracted


def test_the_nonexistent_metric_that_broke_the_original_alarms_is_not_used(tf_config) -> None:
    """ApproximateNumberOfVisibleMessages does not exist; ApproximateNumberOfMessagesVisible does."""
    assert all(use.name != "ApproximateNumberOfVisibleMessages" for use in _all_metric_uses(tf_config))
    assert "ApproximateNumberOfVisibleMessages" not in "".join(tf_config.raw_text.values())


def test_every_aws_metric_read_by_alarms_and_scaling_is_a_documented_metric(tf_config) -> None:
    """Namespace, name and the full dimension set must match what AWS publishes."""
    for use in _all_metric_uses(tf_config):
        if use.namespace not in AWS_METRICS:
            continue
        assert use.name in AWS_METRICS[use.namespace], f"{use.where}: {use.namespace} {use.name} does not exist"
        assert frozenset(use.dimensions) == AWS_METRICS[use.namespace][use.name], use.where


def test_every_other_metric_is_in_the_workers_namespace(tf_config) -> None:
    """Custom namespaces are only the EMF one, whose default is the workers' default namespace."""
    namespaces = {use.namespace for use in _all_metric_uses(tf_config)} - set(AWS_METRICS)
    assert namespaces == {tf_config.default("metrics_namespace")}


def test_alarms_on_emf_metrics_match_what_the_emitter_writes(tf_config) -> None:
    """Run the real emitter, parse its EMF, and find each alarm's exact metric in what CloudWatch extracts."""
    namespace = tf_config.default("metrics_namespace")
    emf_uses = [use for use in _all_metric_uses(tf_config) if use.namespace == namespace]
    assert {use.name for use in emf_uses} >= {
        metrics.JOBS_FAILED,
        metrics.JOBS_SUCCEEDED,
        metrics.JOBS_TIMED_OUT,
        metrics.JOB_LOG_DELIVERY_FAILURES,
    }
    for use in emf_uses:
        dimensions = {key: tf_config.resolve(value) for key, value in use.dimensions.items()}
        assert set(dimensions) == {DIMENSION_SERVICE}, use.where
        assert dimensions[DIMENSION_SERVICE] == EMITTED_BY[use.name], f"{use.where}: wrong Service for {use.name}"
        document = _emit_and_parse(namespace, dimensions[DIMENSION_SERVICE], use.name)
        wanted = (namespace, use.name, tuple(sorted(dimensions.items())))
        assert wanted in _extracted_metrics(document), use.where


def test_every_emf_metric_the_workers_define_is_assigned_to_a_service() -> None:
    """A new metric in common/metrics.py must be placed here before alarms can use it."""
    assert set(EMITTED_BY) == set(metrics.UNITS)


def test_emf_lines_are_single_line_json_within_the_awslogs_limits() -> None:
    """awslogs splits lines over 16 KiB, which would break the JSON and lose the metric."""
    for name, service in EMITTED_BY.items():
        stream = io.StringIO()
        emitter = MetricsEmitter(namespace="MessageDrivenFleet", service=service, stream=stream)
        emitter.emit({name: 1.0})
        emitter.close()
        text = stream.getvalue()
        assert text.count("\n") == 1
        assert len(text.encode()) < 16 * 1024


def test_backlog_per_task_counts_in_flight_messages_so_it_never_reads_zero_mid_job(tf_config) -> None:
    """(visible + in flight) / RunningTaskCount: visible alone is 0 while consumers keep up, and scales in to 0."""
    policy = tf_config.resource("aws_appautoscaling_policy", "backlog_per_task")
    assert policy["policy_type"] == "TargetTrackingScaling"
    (tracking,) = policy["target_tracking_scaling_policy_configuration"]
    assert tracking["target_value"] == "${each.value.settings.target_backlog_per_task}"
    (spec,) = tracking["customized_metric_specification"]
    queries = {query["id"]: query for query in spec["metrics"]}
    returned = [query for query in queries.values() if query["return_data"] is True]
    assert [query["id"] for query in returned] == ["backlog_per_task"]
    assert returned[0]["expression"] == "(visible + in_flight) / tasks"
    names = {
        key: query["metric_stat"][0]["metric"][0]["metric_name"]
        for key, query in queries.items()
        if "metric_stat" in query
    }
    assert names == {
        "visible": "ApproximateNumberOfMessagesVisible",
        "in_flight": "ApproximateNumberOfMessagesNotVisible",
        "tasks": "RunningTaskCount",
    }


def test_scale_from_zero_alarm_drives_a_step_policy_that_adds_a_task(tf_config) -> None:
    """Target tracking cannot divide by zero tasks, so an alarm on waiting messages adds the first one."""
    alarm = tf_config.resource("aws_cloudwatch_metric_alarm", "scale_from_zero")
    assert alarm["alarm_actions"] == ["${aws_appautoscaling_policy.scale_from_zero[each.key].arn}"]
    assert alarm["comparison_operator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["threshold"] == 1
    policy = tf_config.resource("aws_appautoscaling_policy", "scale_from_zero")
    (step,) = policy["step_scaling_policy_configuration"]
    assert step["adjustment_type"] == "ChangeInCapacity"
    (adjustment,) = step["step_adjustment"]
    assert adjustment["scaling_adjustment"] == 1


def test_idle_services_scale_in_to_min_capacity_which_may_be_zero(tf_config) -> None:
    """After the idle window the count becomes min_capacity; every min_capacity defaults to 0."""
    policy = tf_config.resource("aws_appautoscaling_policy", "scale_in_when_idle")
    (step,) = policy["step_scaling_policy_configuration"]
    assert step["adjustment_type"] == "ExactCapacity"
    (adjustment,) = step["step_adjustment"]
    assert adjustment["scaling_adjustment"] == "${each.value.settings.min_capacity}"
    target = tf_config.resource("aws_appautoscaling_target", "this")
    assert target["min_capacity"] == "${each.value.settings.min_capacity}"
    alarm = tf_config.resource("aws_cloudwatch_metric_alarm", "idle")
    assert alarm["alarm_actions"] == ["${aws_appautoscaling_policy.scale_in_when_idle[each.key].arn}"]


def test_every_paging_alarm_notifies_the_topic_and_scaling_alarms_do_not(tf_config) -> None:
    """Humans get paged for trouble, not for routine scaling."""
    scaling = {"scale_from_zero", "idle"}
    alarms = tf_config.resources("aws_cloudwatch_metric_alarm")
    assert {block.labels[1] for block in alarms} >= {
        "dlq_has_messages",
        "oldest_message_age",
        "backlog_high",
        "cpu_high",
        "memory_high",
        "job_failure_rate",
        "job_log_delivery_failures",
    }
    for block in alarms:
        if block.labels[1] in scaling:
            assert "local.alarm_actions" not in str(block.body["alarm_actions"])
        else:
            assert block.body["alarm_actions"] == "${local.alarm_actions}", block.address
