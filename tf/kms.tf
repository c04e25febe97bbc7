################################################################################
# One customer-managed key for the queues, log groups, SNS topic and ECR repositories
################################################################################

locals {
  # Log group ARNs as CloudWatch Logs puts them in the encryption context (no trailing ":*").
  log_group_arns_for_kms = [
    for name in values(local.log_group_names) :
    "arn:${local.partition}:logs:${var.aws_region}:${local.account_id}:log-group:${name}"
  ]
}

resource "aws_kms_key" "this" {
  description             = "${local.name_prefix}: SQS queues, job ledger table, CloudWatch log groups, alarm topic and ECR images"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = var.kms_deletion_window_days

  # Inline, so the key is never created without its policy. Each service principal gets only the
  # operations it performs; everything else goes through IAM in this account (first statement).
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # Without this the key becomes unmanageable; it delegates to IAM, it grants nothing by itself.
        Sid       = "AccountAdministersKeyThroughIam"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogsEncryptsOurLogGroupsOnly"
        Effect    = "Allow"
        Principal = { Service = "logs.${var.aws_region}.amazonaws.com" }
        Action = [
          "kms:Encrypt*",
          "kms:Decrypt*",
          "kms:ReEncrypt*",
          "kms:GenerateDataKey*",
          "kms:Describe*",
        ]
        Resource = "*"
        Condition = {
          ArnEquals = { "kms:EncryptionContext:aws:logs:arn" = local.log_group_arns_for_kms }
        }
      },
      {
        # Alarm notifications are published by CloudWatch to the encrypted SNS topic.
        Sid       = "CloudWatchAlarmsPublishToEncryptedTopic"
        Effect    = "Allow"
        Principal = { Service = "cloudwatch.amazonaws.com" }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
        Resource  = "*"
        # Confused-deputy guard: only this account's alarms of this deployment.
        Condition = {
          StringEquals = { "aws:SourceAccount" = local.account_id }
          ArnLike      = { "aws:SourceArn" = "arn:${local.partition}:cloudwatch:${var.aws_region}:${local.account_id}:alarm:${local.name_prefix}-*" }
        }
      },
      # The task roles need no statement here: statement 1 delegates to IAM, and their IAM policies
      # (iam.tf) allow the key only with kms:ViaService = SQS or DynamoDB of this region.
    ]
  })
}

resource "aws_kms_alias" "this" {
  name          = "alias/${local.name_prefix}"
  target_key_id = aws_kms_key.this.key_id
}
