################################################################################
# Roles: one execution role (pull image, write container logs) and one task role (the worker's own
# AWS calls) per service. Every statement names its resources; the only "*" is
# ecr:GetAuthorizationToken, which has no resource-level permissions.
################################################################################

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    sid     = "EcsTasksInThisAccount"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    # Confused-deputy guard: only ECS acting for this account may assume the roles.
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:ecs:${var.aws_region}:${local.account_id}:*"]
    }
  }
}

# ---------------------------------------------------------------------------- execution roles

resource "aws_iam_role" "main_job_execution" {
  name               = "${local.name_prefix}-main-job-execution"
  description        = "ECS agent for main-job: pulls the main-job image and writes its container logs."
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role" "background_job_execution" {
  name               = "${local.name_prefix}-background-job-execution"
  description        = "ECS agent for background-job: pulls the background-job image and writes its container logs."
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "execution" {
  for_each = local.services

  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # GetAuthorizationToken does not support resource-level permissions.
  }

  statement {
    sid = "PullOwnImage"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
    ]
    resources = [aws_ecr_repository.this[each.key].arn]
  }

  statement {
    sid       = "WriteOwnContainerLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this[each.key].arn}:log-stream:${each.value.service}/*"]
  }
}

resource "aws_iam_role_policy" "main_job_execution" {
  name   = "pull-image-and-write-logs"
  role   = aws_iam_role.main_job_execution.id
  policy = data.aws_iam_policy_document.execution["main_job"].json
}

resource "aws_iam_role_policy" "background_job_execution" {
  name   = "pull-image-and-write-logs"
  role   = aws_iam_role.background_job_execution.id
  policy = data.aws_iam_policy_document.execution["background_job"].json
}

# ---------------------------------------------------------------------------- task roles

resource "aws_iam_role" "main_job_task" {
  name               = "${local.name_prefix}-main-job-task"
  description        = "main-job worker: consumes the trigger queue, enqueues background jobs, quarantines bad triggers."
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role" "background_job_task" {
  name               = "${local.name_prefix}-background-job-task"
  description        = "background-job worker: consumes the background queue and writes per-job log streams."
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "main_job_task" {
  statement {
    sid = "ConsumeTriggerQueue"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility",
    ]
    resources = [aws_sqs_queue.source["trigger"].arn]
  }

  statement {
    sid       = "EnqueueBackgroundJobs"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.source["background"].arn]
  }

  statement {
    sid       = "QuarantineToTriggerDlq"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq["trigger"].arn]
  }

  # Nothing on DynamoDB: main_job writes no ledger item (the background worker's claim creates it, with
  # queuedAt and queuedDay from the job ID's ULID time), so a ledger outage never touches the trigger path.

  # The key policy delegates to IAM, so these conditions are what limits the key to each service.
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
}

data "aws_iam_policy_document" "background_job_task" {
  statement {
    sid = "ConsumeBackgroundQueue"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility",
    ]
    resources = [aws_sqs_queue.source["background"].arn]
  }

  statement {
    sid       = "QuarantineToBackgroundDlq"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq["background"].arn]
  }

  statement {
    sid       = "WritePerJobLogStreams"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this["background_job"].arn}:log-stream:${local.job_stream_root}/*"]
  }

  # Claims, lease extensions and outcomes are single-item conditional UpdateItems; a refused one is
  # answered from the item's old image (ReturnValuesOnConditionCheckFailure=ALL_OLD), so no read.
  # The indexes are written by DynamoDB itself, so the role needs nothing on index/*.
  statement {
    sid       = "ClaimAndRecordJobs"
    actions   = ["dynamodb:UpdateItem"]
    resources = [aws_dynamodb_table.jobs.arn]
  }

  # The key policy delegates to IAM, so these conditions are what limits the key to each service.
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

  statement {
    sid       = "UseKeyThroughDynamoDb"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.this.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["dynamodb.${var.aws_region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "main_job_task" {
  name   = "consume-triggers-enqueue-jobs"
  role   = aws_iam_role.main_job_task.id
  policy = data.aws_iam_policy_document.main_job_task.json
}

resource "aws_iam_role_policy" "background_job_task" {
  name   = "consume-jobs-write-job-logs"
  role   = aws_iam_role.background_job_task.id
  policy = data.aws_iam_policy_document.background_job_task.json
}

# ---------------------------------------------------------------------------- policies for people and producers

# Not attached to anything: outputs for whoever sends triggers and for operators reading the ledger.
data "aws_iam_policy_document" "trigger_producer" {
  statement {
    sid       = "SendTriggers"
    actions   = ["sqs:SendMessage", "sqs:GetQueueUrl"]
    resources = [aws_sqs_queue.source["trigger"].arn]
  }

  statement {
    sid       = "EncryptTriggersThroughSqs"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [aws_kms_key.this.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["sqs.${var.aws_region}.amazonaws.com"]
    }
  }
}

# fleet job: GetItem; fleet jobs / fleet top: a Query per UTC day on by-day or failures (keys only), then
# BatchGetItem of the listed items. Never Scan, never Query on the table itself.
data "aws_iam_policy_document" "job_ledger_reader" {
  statement {
    sid       = "ReadJobs"
    actions   = ["dynamodb:GetItem", "dynamodb:BatchGetItem"]
    resources = [aws_dynamodb_table.jobs.arn]
  }

  statement {
    sid     = "ListJobsByDay"
    actions = ["dynamodb:Query"]
    resources = [
      "${aws_dynamodb_table.jobs.arn}/index/by-day",
      "${aws_dynamodb_table.jobs.arn}/index/failures",
    ]
  }

  statement {
    sid       = "DecryptThroughDynamoDb"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.this.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["dynamodb.${var.aws_region}.amazonaws.com"]
    }
  }
}

# For operators running `fleet cancel` (fleet/cli/cancel.py): one UpdateItem that may write only the
# cancel's own attributes (dynamodb:Attributes, documented in "Using IAM policy conditions for
# fine-grained access control"), so a canceller can neither rewrite a job's result nor delete items.
data "aws_iam_policy_document" "job_canceller" {
  statement {
    sid       = "CancelJobs"
    actions   = ["dynamodb:UpdateItem"]
    resources = [aws_dynamodb_table.jobs.arn]

    condition {
      test     = "ForAllValues:StringEquals"
      variable = "dynamodb:Attributes"
      values   = ["jobId", "status", "cancelRequestedAt", "cancelledBy", "cancelReason", "updatedAt", "expiresAt", "queuedDay"]
    }
  }

  statement {
    sid       = "DecryptThroughDynamoDb"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.this.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["dynamodb.${var.aws_region}.amazonaws.com"]
    }
  }
}
