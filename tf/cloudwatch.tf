################################################################################
# Log groups, alarm topic, alarms, dashboard and saved Logs Insights queries
################################################################################

resource "aws_cloudwatch_log_group" "this" {
  for_each = local.services

  name              = local.log_group_names[each.key]
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  # STANDARD, explicitly: the workers' metrics are EMF lines that CloudWatch Logs extracts at ingestion,
  # and the cheaper Infrequent Access class supports only a subset of features (docs/terraform.md).
  log_group_class = "STANDARD"
}

# ---------------------------------------------------------------------------- alarm topic

resource "aws_sns_topic" "alarms" {
  name              = "${local.name_prefix}-alarms"
  kms_master_key_id = aws_kms_key.this.id
}

data "aws_iam_policy_document" "alarms_topic" {
  statement {
    sid       = "CloudWatchAlarmsOfThisAccountPublish"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms.arn]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:cloudwatch:${var.aws_region}:${local.account_id}:alarm:${local.name_prefix}-*"]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sns:Publish", "sns:Subscribe", "sns:Receive"]
    resources = [aws_sns_topic.alarms.arn]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sns_topic_policy" "alarms" {
  arn    = aws_sns_topic.alarms.arn
  policy = data.aws_iam_policy_document.alarms_topic.json
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count = var.alarm_email == null ? 0 : 1

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

locals {
  alarm_actions = [aws_sns_topic.alarms.arn]
}

# A warning at plan and apply, not an error: a trial may run without anyone subscribed.
check "alarms_reach_someone" {
  assert {
    condition     = var.alarm_email != null
    error_message = "alarm_email is null: every alarm publishes to the SNS topic, which nobody is subscribed to. Set alarm_email or subscribe to the sns_topic_arn output."
  }
}

# ---------------------------------------------------------------------------- queue alarms (AWS/SQS)

resource "aws_cloudwatch_metric_alarm" "dlq_has_messages" {
  for_each = local.queues

  alarm_name        = "${local.name_prefix}-${each.key}-dlq-has-messages"
  alarm_description = "Messages reached ${each.value.dlq_name}: they failed ${var.max_receive_count} times or were quarantined. Inspect, fix, then redrive."
  namespace         = "AWS/SQS"
  metric_name       = "ApproximateNumberOfMessagesVisible"
  dimensions        = { QueueName = aws_sqs_queue.dlq[each.key].name }
  statistic         = "Maximum"
  period            = 300
  # A DLQ nobody touches stops publishing metrics after ~6 hours even while messages sit in it;
  # "notBreaching" would then turn the alarm OK. "ignore" keeps the last state until data returns.
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  treat_missing_data  = "ignore"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "oldest_message_age" {
  for_each = local.queues

  alarm_name          = "${local.name_prefix}-${each.key}-oldest-message-age"
  alarm_description   = "The oldest message on ${each.value.name} has waited longer than the latency budget (${var.oldest_message_age_alarm_seconds[each.key]} s): consumers are down, stuck or too few."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = aws_sqs_queue.source[each.key].name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.oldest_message_age_alarm_seconds[each.key]
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "backlog_high" {
  for_each = local.queues

  alarm_name          = "${local.name_prefix}-${each.key}-backlog-high"
  alarm_description   = "More than ${var.backlog_alarm_threshold[each.key]} messages visible on ${each.value.name} for 15 minutes: autoscaling is at max_capacity or not keeping up."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.source[each.key].name }
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.backlog_alarm_threshold[each.key]
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# ---------------------------------------------------------------------------- service alarms (AWS/ECS)

resource "aws_cloudwatch_metric_alarm" "cpu_high" {
  for_each = local.services

  alarm_name          = "${local.name_prefix}-${each.value.service}-cpu-high"
  alarm_description   = "${each.value.service} tasks average above ${var.cpu_alarm_percent}% CPU for 15 minutes: raise cpu or lower WORKER_CONCURRENCY."
  namespace           = "AWS/ECS"
  metric_name         = "CPUUtilization"
  dimensions          = { ClusterName = aws_ecs_cluster.this.name, ServiceName = aws_ecs_service.this[each.key].name }
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.cpu_alarm_percent
  treat_missing_data  = "notBreaching" # No tasks (scaled to zero) means no data, not trouble.
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "memory_high" {
  for_each = local.services

  alarm_name          = "${local.name_prefix}-${each.value.service}-memory-high"
  alarm_description   = "${each.value.service} tasks average above ${var.memory_alarm_percent}% memory for 15 minutes: risk of OOM kills; raise memory or lower WORKER_CONCURRENCY."
  namespace           = "AWS/ECS"
  metric_name         = "MemoryUtilization"
  dimensions          = { ClusterName = aws_ecs_cluster.this.name, ServiceName = aws_ecs_service.this[each.key].name }
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.memory_alarm_percent
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# ---------------------------------------------------------------------------- job alarms (EMF metrics)

resource "aws_cloudwatch_metric_alarm" "job_failure_rate" {
  alarm_name          = "${local.name_prefix}-job-failure-rate"
  alarm_description   = "More than ${var.job_failure_rate_alarm_percent}% of background jobs failed over 10 minutes (JobsFailed / (JobsSucceeded + JobsFailed))."
  evaluation_periods  = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.job_failure_rate_alarm_percent
  # EMF metrics exist only while jobs run: no jobs is no failure.
  treat_missing_data = "notBreaching"
  alarm_actions      = local.alarm_actions
  ok_actions         = local.alarm_actions

  metric_query {
    id          = "failure_rate"
    label       = "Job failure rate (%)"
    expression  = "100 * FILL(failed, 0) / (FILL(failed, 0) + FILL(succeeded, 0))"
    return_data = true
  }

  metric_query {
    id = "failed"
    metric {
      namespace   = var.metrics_namespace
      metric_name = "JobsFailed"
      dimensions  = { Service = local.background_job_service }
      stat        = "Sum"
      period      = 300
    }
  }

  metric_query {
    id = "succeeded"
    metric {
      namespace   = var.metrics_namespace
      metric_name = "JobsSucceeded"
      dimensions  = { Service = local.background_job_service }
      stat        = "Sum"
      period      = 300
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "jobs_timed_out" {
  alarm_name          = "${local.name_prefix}-jobs-timed-out"
  alarm_description   = "A background job ran past its time limit (JobsTimedOut): the attempt was failed and retried, and its thread still held a slot. Find it with: fleet jobs --failed; its stream shows job.timed_out."
  namespace           = var.metrics_namespace
  metric_name         = "JobsTimedOut"
  dimensions          = { Service = local.background_job_service }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "job_log_delivery_failures" {
  alarm_name          = "${local.name_prefix}-job-log-delivery-failures"
  alarm_description   = "background-job could not deliver per-job log streams to ${local.log_group_names.background_job} (JobLogDeliveryFailures): job logs are incomplete. Check IAM, KMS and CloudWatch Logs throttling."
  namespace           = var.metrics_namespace
  metric_name         = "JobLogDeliveryFailures"
  dimensions          = { Service = local.background_job_service }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = var.log_delivery_failures_alarm_threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# ---------------------------------------------------------------------------- dashboard

locals {
  dashboard_queue_metric = {
    for key, queue in local.queues : key => {
      source = queue.name
      dlq    = queue.dlq_name
    }
  }

  dashboard_widgets = [
    {
      type = "metric", x = 0, y = 0, width = 12, height = 6
      properties = {
        title  = "Queue depth (visible messages)"
        region = var.aws_region
        stat   = "Maximum"
        period = 60
        metrics = [
          for key, q in local.dashboard_queue_metric : ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", q.source]
        ]
      }
    },
    {
      type = "metric", x = 12, y = 0, width = 12, height = 6
      properties = {
        title  = "Dead-letter queues (visible messages)"
        region = var.aws_region
        stat   = "Maximum"
        period = 60
        metrics = [
          for key, q in local.dashboard_queue_metric : ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", q.dlq]
        ]
      }
    },
    {
      type = "metric", x = 0, y = 6, width = 12, height = 6
      properties = {
        title  = "Age of oldest message (s)"
        region = var.aws_region
        stat   = "Maximum"
        period = 60
        metrics = [
          for key, q in local.dashboard_queue_metric : ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", q.source]
        ]
      }
    },
    {
      type = "metric", x = 12, y = 6, width = 12, height = 6
      properties = {
        title  = "Jobs per minute"
        region = var.aws_region
        stat   = "Sum"
        period = 60
        metrics = [
          [var.metrics_namespace, "TriggersReceived", "Service", local.main_job_service],
          [var.metrics_namespace, "BackgroundJobsQueued", "Service", local.main_job_service],
          [var.metrics_namespace, "JobsSucceeded", "Service", local.background_job_service],
        ]
      }
    },
    {
      type = "metric", x = 0, y = 12, width = 12, height = 6
      properties = {
        title  = "Failures per minute"
        region = var.aws_region
        stat   = "Sum"
        period = 60
        metrics = [
          [var.metrics_namespace, "JobsFailed", "Service", local.background_job_service],
          [var.metrics_namespace, "TriggersRejected", "Service", local.main_job_service],
          [var.metrics_namespace, "JobLogDeliveryFailures", "Service", local.background_job_service],
        ]
      }
    },
    {
      type = "metric", x = 12, y = 12, width = 12, height = 6
      properties = {
        title  = "Running tasks"
        region = var.aws_region
        stat   = "Average"
        period = 60
        metrics = [
          for key, s in local.services : ["ECS/ContainerInsights", "RunningTaskCount", "ClusterName", local.name_prefix, "ServiceName", s.service]
        ]
      }
    },
    {
      type = "metric", x = 0, y = 18, width = 12, height = 6
      properties = {
        title  = "Job duration and queue latency (ms, p90)"
        region = var.aws_region
        stat   = "p90"
        period = 60
        metrics = [
          [var.metrics_namespace, "JobDuration", "Service", local.background_job_service],
          [var.metrics_namespace, "JobQueueLatency", "Service", local.background_job_service],
        ]
      }
    },
  ]
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = local.name_prefix
  dashboard_body = jsonencode({ widgets = local.dashboard_widgets })
}

# ---------------------------------------------------------------------------- saved Logs Insights queries

resource "aws_cloudwatch_query_definition" "job_timeline" {
  name            = "${local.name_prefix}/job-timeline"
  log_group_names = [for group in aws_cloudwatch_log_group.this : group.name]
  # Replace the placeholder with the job's ULID. Covers both services' lines that carry job_id and the
  # job's own stream (job-streams/YYYY-MM-DD/<job id>) in the background-job log group.
  query_string = <<-EOT
    fields @timestamp, @log, @logStream, service, level, event, message_id, correlation_id, receive_count
    | filter job_id = "REPLACE_WITH_JOB_ID" or @logStream like "REPLACE_WITH_JOB_ID"
    | sort @timestamp asc
    | limit 10000
  EOT
}

resource "aws_cloudwatch_query_definition" "recent_failures" {
  name            = "${local.name_prefix}/failures"
  log_group_names = [for group in aws_cloudwatch_log_group.this : group.name]
  # Run over the last hour (time range is chosen in the console, not stored in the query).
  query_string = <<-EOT
    fields @timestamp, service, level, event, job_id, message_id, receive_count, error, exception
    | filter level in ["error", "critical"] or event like /failed|rejected|quarantined/
    | sort @timestamp desc
    | limit 1000
  EOT
}
