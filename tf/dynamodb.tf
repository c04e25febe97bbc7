################################################################################
# Job ledger: one item per job ID (common/ledger/schema.py is the contract; a test keeps them equal)
################################################################################

resource "aws_dynamodb_table" "jobs" {
  name         = local.job_ledger_table_name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "jobId"

  # Off only to tear a deployment down on purpose: the ledger is the record of what ran.
  deletion_protection_enabled = var.job_ledger_deletion_protection

  attribute {
    name = "jobId"
    type = "S"
  }

  attribute {
    name = "status"
    type = "S"
  }

  attribute {
    name = "updatedAt"
    type = "S"
  }

  # "dead jobs in the last hour" is one Query: status = dead, updatedAt >= now - 1 h.
  global_secondary_index {
    name            = "by-status"
    hash_key        = "status"
    range_key       = "updatedAt"
    projection_type = "ALL"
  }

  # Items expire JOB_LEDGER_RETENTION_DAYS after their last update (epoch seconds written by the workers).
  ttl {
    attribute_name = "expiresAt"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.this.arn
  }
}
