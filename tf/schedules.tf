################################################################################
# Scheduled jobs: EventBridge Scheduler sends triggers to the trigger queue
#
# The schedules are declared once, in schedules.auto.tfvars.json (Terraform loads it by itself; the
# local fleet and `./deploy.sh test` read the same file, fleet/schedules/declaration.py). Each tick's
# trigger carries {"schedule": {"name", "scheduledTime"}}, from which main_job derives the job ID, so
# a tick Scheduler delivers twice (it delivers at least once) is one job in the ledger.
################################################################################

variable "schedules" {
  description = "Schedule name => {expression, timezone, trigger, flexible_window_minutes, enabled, description}; see schedules.auto.tfvars.json and README \"Run jobs on a schedule\"."
  # any: each trigger is an object of its own shape, which a map(object()) type could not hold.
  type     = any
  default  = {}
  nullable = false

  # The full check (expressions, time zones, the trigger against main_job's contract) is
  # tests/fleet/schedules/test_declaration.py; these keep a hand-made -var from slipping past it.
  validation {
    condition     = alltrue([for name in keys(var.schedules) : can(regex("^[a-z][a-z0-9-]{0,62}$", name))])
    error_message = "schedule names must be 1-63 lower-case letters, digits or hyphens, starting with a letter (they become resource names)."
  }

  validation {
    condition     = alltrue([for s in values(var.schedules) : can(regex("^(cron|rate|at)\\(.+\\)$", s.expression)) && can(s.trigger.trigger)])
    error_message = "every schedule needs an expression cron(...), rate(...) or at(...) and a trigger object with a 'trigger' name."
  }
}

variable "schedule_retry_attempts" {
  description = "How many times Scheduler retries a tick whose SendMessage failed, before it goes to the trigger DLQ (0-185)."
  type        = number
  default     = 10
  nullable    = false

  validation {
    condition     = var.schedule_retry_attempts >= 0 && var.schedule_retry_attempts <= 185
    error_message = "schedule_retry_attempts must be 0-185 (Scheduler's RetryPolicy.MaximumRetryAttempts)."
  }
}

variable "schedule_max_event_age_seconds" {
  description = "How long Scheduler keeps retrying one tick before it goes to the trigger DLQ (60-86400)."
  type        = number
  default     = 3600
  nullable    = false

  validation {
    condition     = var.schedule_max_event_age_seconds >= 60 && var.schedule_max_event_age_seconds <= 86400
    error_message = "schedule_max_event_age_seconds must be 60-86400 (Scheduler's RetryPolicy.MaximumEventAgeInSeconds)."
  }
}

locals {
  # Terraform's jsonencode writes "<" as \u003c, which Scheduler would not recognise as its context
  # attribute: encode a marker, then put <aws.scheduler.scheduled-time> in its place.
  scheduled_time_marker = "__SCHEDULED_TIME__"
}

# FleetNames.schedule_group (common/names.py): the CLI and the local fleet find the group by it.
resource "aws_scheduler_schedule_group" "this" {
  name = local.name_prefix
}

# ---------------------------------------------------------------------------- the scheduler's role

data "aws_iam_policy_document" "scheduler_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }

    # Confused-deputy guard, as Scheduler's documentation shows it: only this account's schedule group.
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [aws_scheduler_schedule_group.this.arn]
    }
  }
}

# No statement in the key policy (kms.tf): its first statement delegates the key to IAM in this
# account, so the statements below are what allow and limit the role, as for the task roles.
resource "aws_iam_role" "scheduler" {
  name               = "${local.name_prefix}-scheduler" # FleetNames.scheduler_role
  assume_role_policy = data.aws_iam_policy_document.scheduler_assume.json
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    sid       = "SendTriggers"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.source["trigger"].arn]
  }

  # Scheduler sends a tick it could not deliver to the schedule's DLQ with this same role.
  statement {
    sid       = "DeadLetterUndeliveredTicks"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq["trigger"].arn]
  }

  # Both queues are encrypted with the fleet's key: sending needs a data key, through SQS only.
  statement {
    sid       = "UseKeyThroughSqs"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["sqs.${var.aws_region}.amazonaws.com"]
    }
  }

  # The schedules' input is encrypted at rest with the same key (kms_key_arn below); Scheduler
  # decrypts it with this role when it invokes the target.
  statement {
    sid       = "DecryptScheduleInput"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.this.arn]
  }
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "send-triggers"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler.json
}

# ---------------------------------------------------------------------------- the schedules

resource "aws_scheduler_schedule" "this" {
  for_each = var.schedules

  name                         = each.key
  group_name                   = aws_scheduler_schedule_group.this.name
  description                  = lookup(each.value, "description", "")
  schedule_expression          = each.value.expression
  schedule_expression_timezone = lookup(each.value, "timezone", "UTC")
  state                        = lookup(each.value, "enabled", true) ? "ENABLED" : "DISABLED"
  kms_key_arn                  = aws_kms_key.this.arn

  flexible_time_window {
    mode                      = lookup(each.value, "flexible_window_minutes", null) == null ? "OFF" : "FLEXIBLE"
    maximum_window_in_minutes = lookup(each.value, "flexible_window_minutes", null)
  }

  target {
    arn      = aws_sqs_queue.source["trigger"].arn
    role_arn = aws_iam_role.scheduler.arn
    # The trigger plus the tick: main_job derives the job ID from the schedule name and scheduled time.
    input = replace(
      jsonencode(merge(each.value.trigger, { schedule = { name = each.key, scheduledTime = local.scheduled_time_marker } })),
      local.scheduled_time_marker,
      "<aws.scheduler.scheduled-time>",
    )

    retry_policy {
      maximum_retry_attempts       = var.schedule_retry_attempts
      maximum_event_age_in_seconds = var.schedule_max_event_age_seconds
    }

    dead_letter_config {
      arn = aws_sqs_queue.dlq["trigger"].arn
    }
  }
}

# ---------------------------------------------------------------------------- the alarm

# A tick that never reached the trigger queue: dropped, or (after its retries) sent to the trigger DLQ,
# or not even that. AWS/Scheduler publishes these per ScheduleGroup.
resource "aws_cloudwatch_metric_alarm" "schedule_invocations_failed" {
  alarm_name          = "${local.name_prefix}-schedule-invocations-failed"
  alarm_description   = "A tick of a schedule in group ${local.name_prefix} was not delivered to the trigger queue after its retries: look in the trigger DLQ (fleet dlq peek triggers), fix the cause (role, key, queue), then redrive."
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "failed"
    expression  = "FILL(dropped, 0) + FILL(dead_lettered, 0) + FILL(lost, 0)"
    label       = "Ticks not delivered"
    return_data = true
  }

  dynamic "metric_query" {
    for_each = {
      dropped       = "InvocationDroppedCount"
      dead_lettered = "InvocationsSentToDeadLetterCount"
      lost          = "InvocationsFailedToBeSentToDeadLetterCount"
    }

    content {
      id = metric_query.key

      metric {
        namespace   = "AWS/Scheduler"
        metric_name = metric_query.value
        dimensions  = { ScheduleGroup = aws_scheduler_schedule_group.this.name }
        stat        = "Sum"
        period      = 300
      }
    }
  }
}
