################################################################################
# Queues: trigger -> main-job -> background -> background-job, each with a DLQ
################################################################################

locals {
  # Message sizes (common/messages.py keeps the same numbers). SQS takes up to 1 MiB since August 2025,
  # but the locked provider (5.100.0) validates max_message_size to 1024-262144 (terraform validate:
  # "expected max_message_size to be in the range (1024 - 262144)"; provider support is tracked in
  # hashicorp/terraform-provider-aws#43692), so the queues stay at 256 KiB. The trigger queue is 1 KiB smaller: the background message is the trigger's exact text plus
  # an envelope of at most ~640 bytes, so SQS itself refuses, at the send, any trigger that could not
  # become a background message, and every trigger it accepts can run (issue 32 item 8).
  queue_max_message_size   = 262144
  trigger_max_message_size = 261120 # 262144 - 1024

  # Source queue key => its settings. The DLQ of each is created first and named in the redrive policy.
  queues = {
    trigger = {
      name                       = local.queue_names.trigger
      dlq_name                   = local.queue_names.trigger_dlq
      visibility_timeout_seconds = var.trigger_queue_visibility_timeout_seconds
      max_message_size           = local.trigger_max_message_size
    }
    background = {
      name                       = local.queue_names.background
      dlq_name                   = local.queue_names.background_dlq
      visibility_timeout_seconds = var.background_queue_visibility_timeout_seconds
      max_message_size           = local.queue_max_message_size
    }
  }
}

resource "aws_sqs_queue" "dlq" {
  for_each = local.queues

  name                              = each.value.dlq_name
  message_retention_seconds         = var.dlq_message_retention_seconds
  max_message_size                  = local.queue_max_message_size
  kms_master_key_id                 = aws_kms_key.this.arn
  kms_data_key_reuse_period_seconds = 300

  lifecycle {
    precondition {
      condition     = var.dlq_message_retention_seconds > var.queue_message_retention_seconds
      error_message = "dlq_message_retention_seconds must be longer than queue_message_retention_seconds, or redriven messages expire early."
    }
  }
}

resource "aws_sqs_queue" "source" {
  for_each = local.queues

  name                              = each.value.name
  visibility_timeout_seconds        = each.value.visibility_timeout_seconds
  max_message_size                  = each.value.max_message_size
  receive_wait_time_seconds         = local.receive_wait_seconds
  message_retention_seconds         = var.queue_message_retention_seconds
  kms_master_key_id                 = aws_kms_key.this.arn
  kms_data_key_reuse_period_seconds = 300

  # A backstop for poison messages only (default 20): the workers give up after max_attempts runs and
  # move the message themselves, with its reason (docs/reliability.md, "Giving up").
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq[each.key].arn
    maxReceiveCount     = var.max_receive_count
  })
}

# Separate resource: the DLQ must exist before its source queue, and this names the source back.
resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  for_each = local.queues

  queue_url = aws_sqs_queue.dlq[each.key].id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.source[each.key].arn]
  })
}

locals {
  all_queues = merge(
    { for key, queue in aws_sqs_queue.source : key => queue },
    { for key, queue in aws_sqs_queue.dlq : "${key}_dlq" => queue },
  )
}

data "aws_iam_policy_document" "queue_tls_only" {
  for_each = local.all_queues

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [each.value.arn]

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

resource "aws_sqs_queue_policy" "tls_only" {
  for_each = local.all_queues

  queue_url = each.value.id
  policy    = data.aws_iam_policy_document.queue_tls_only[each.key].json
}
