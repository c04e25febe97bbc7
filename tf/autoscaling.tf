################################################################################
# Queue-driven autoscaling for both services (explained with numbers in docs/terraform.md)
#
#   1. Target tracking on backlog per task = (visible + in-flight messages) / running tasks. In-flight
#      counts: with visible alone the metric is a real 0 whenever consumers keep up, and target
#      tracking would scale in (to 0) under running jobs.
#   2. Scale from zero: target tracking cannot divide by zero tasks, so an alarm on "messages are
#      visible and none is in flight" (nobody is consuming) adds one task.
#   3. Scale to zero: after scale_to_zero_idle_minutes with nothing visible and nothing in flight,
#      set the count to min_capacity (which may be 0).
################################################################################

locals {
  # Longer than the slowest Fargate cold start the docs plan for (4 minutes), with a minute to spare.
  cold_start_cooldown_seconds = 300
}

resource "aws_appautoscaling_target" "this" {
  for_each = local.services

  service_namespace  = "ecs"
  scalable_dimension = "ecs:service:DesiredCount"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.this[each.key].name}"
  min_capacity       = each.value.settings.min_capacity
  max_capacity       = each.value.settings.max_capacity
}

resource "aws_appautoscaling_policy" "backlog_per_task" {
  for_each = local.services

  name               = "${local.name_prefix}-${each.value.service}-backlog-per-task"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this[each.key].service_namespace
  scalable_dimension = aws_appautoscaling_target.this[each.key].scalable_dimension
  resource_id        = aws_appautoscaling_target.this[each.key].resource_id

  target_tracking_scaling_policy_configuration {
    target_value       = each.value.settings.target_backlog_per_task
    scale_out_cooldown = 60
    scale_in_cooldown  = 300

    customized_metric_specification {
      metrics {
        id          = "visible"
        label       = "Messages visible on ${local.queues[each.value.queue].name}"
        return_data = false

        metric_stat {
          stat = "Sum"

          metric {
            namespace   = "AWS/SQS"
            metric_name = "ApproximateNumberOfMessagesVisible"

            dimensions {
              name  = "QueueName"
              value = aws_sqs_queue.source[each.value.queue].name
            }
          }
        }
      }

      metrics {
        id          = "in_flight"
        label       = "Messages in flight on ${local.queues[each.value.queue].name}"
        return_data = false

        metric_stat {
          stat = "Sum"

          metric {
            namespace   = "AWS/SQS"
            metric_name = "ApproximateNumberOfMessagesNotVisible"

            dimensions {
              name  = "QueueName"
              value = aws_sqs_queue.source[each.value.queue].name
            }
          }
        }
      }

      metrics {
        id          = "tasks"
        label       = "Running ${each.value.service} tasks"
        return_data = false

        metric_stat {
          stat = "Average"

          metric {
            namespace   = "ECS/ContainerInsights"
            metric_name = "RunningTaskCount"

            dimensions {
              name  = "ClusterName"
              value = aws_ecs_cluster.this.name
            }

            dimensions {
              name  = "ServiceName"
              value = aws_ecs_service.this[each.key].name
            }
          }
        }
      }

      metrics {
        id          = "backlog_per_task"
        label       = "Backlog per task"
        expression  = "(visible + in_flight) / tasks"
        return_data = true
      }
    }
  }
}

# ---------------------------------------------------------------------------- scale from zero

resource "aws_appautoscaling_policy" "scale_from_zero" {
  for_each = local.services

  name               = "${local.name_prefix}-${each.value.service}-scale-from-zero"
  policy_type        = "StepScaling"
  service_namespace  = aws_appautoscaling_target.this[each.key].service_namespace
  scalable_dimension = aws_appautoscaling_target.this[each.key].scalable_dimension
  resource_id        = aws_appautoscaling_target.this[each.key].resource_id

  # The alarm stays in ALARM until the new task receives, and Application Auto Scaling runs the policy
  # again each minute it does: the cooldown must outlast a Fargate cold start (image pull, start,
  # first long poll: 2-4 minutes), or one message starts two or three tasks.
  step_scaling_policy_configuration {
    adjustment_type         = "ChangeInCapacity"
    cooldown                = local.cold_start_cooldown_seconds
    metric_aggregation_type = "Maximum"

    step_adjustment {
      metric_interval_lower_bound = 0
      scaling_adjustment          = 1
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "scale_from_zero" {
  for_each = local.services

  alarm_name          = "${local.name_prefix}-${each.value.service}-scale-from-zero"
  alarm_description   = "Scaling signal, not a page: messages are visible on ${local.queues[each.value.queue].name} and none is in flight, so nothing consumes; add a ${each.value.service} task."
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  # A queue idle for hours stops publishing; the first message makes it publish again.
  treat_missing_data = "notBreaching"
  alarm_actions      = [aws_appautoscaling_policy.scale_from_zero[each.key].arn]

  metric_query {
    id          = "waiting_unconsumed"
    label       = "Visible messages while none is in flight"
    expression  = "IF(in_flight == 0, visible, 0)"
    return_data = true
  }

  metric_query {
    id = "visible"
    metric {
      namespace   = "AWS/SQS"
      metric_name = "ApproximateNumberOfMessagesVisible"
      dimensions  = { QueueName = aws_sqs_queue.source[each.value.queue].name }
      stat        = "Maximum"
      period      = 60
    }
  }

  metric_query {
    id = "in_flight"
    metric {
      namespace   = "AWS/SQS"
      metric_name = "ApproximateNumberOfMessagesNotVisible"
      dimensions  = { QueueName = aws_sqs_queue.source[each.value.queue].name }
      stat        = "Maximum"
      period      = 60
    }
  }
}

# ---------------------------------------------------------------------------- scale to zero when idle

resource "aws_appautoscaling_policy" "scale_in_when_idle" {
  for_each = local.services

  name               = "${local.name_prefix}-${each.value.service}-scale-in-when-idle"
  policy_type        = "StepScaling"
  service_namespace  = aws_appautoscaling_target.this[each.key].service_namespace
  scalable_dimension = aws_appautoscaling_target.this[each.key].scalable_dimension
  resource_id        = aws_appautoscaling_target.this[each.key].resource_id

  step_scaling_policy_configuration {
    adjustment_type         = "ExactCapacity"
    cooldown                = 300
    metric_aggregation_type = "Maximum"

    step_adjustment {
      metric_interval_upper_bound = 0
      scaling_adjustment          = each.value.settings.min_capacity
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "idle" {
  for_each = local.services

  alarm_name          = "${local.name_prefix}-${each.value.service}-idle"
  alarm_description   = "Scaling signal, not a page: ${local.queues[each.value.queue].name} had nothing visible and nothing in flight for ${var.scale_to_zero_idle_minutes} minutes; set ${each.value.service} to min_capacity (${each.value.settings.min_capacity})."
  evaluation_periods  = var.scale_to_zero_idle_minutes
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  # An idle queue eventually stops publishing metrics: silence counts as idle.
  treat_missing_data = "breaching"
  alarm_actions      = [aws_appautoscaling_policy.scale_in_when_idle[each.key].arn]

  metric_query {
    id          = "outstanding"
    label       = "Visible plus in-flight messages"
    expression  = "visible + in_flight"
    return_data = true
  }

  metric_query {
    id = "visible"
    metric {
      namespace   = "AWS/SQS"
      metric_name = "ApproximateNumberOfMessagesVisible"
      dimensions  = { QueueName = aws_sqs_queue.source[each.value.queue].name }
      stat        = "Maximum"
      period      = 60
    }
  }

  metric_query {
    id = "in_flight"
    metric {
      namespace   = "AWS/SQS"
      metric_name = "ApproximateNumberOfMessagesNotVisible"
      dimensions  = { QueueName = aws_sqs_queue.source[each.value.queue].name }
      stat        = "Maximum"
      period      = 60
    }
  }
}
