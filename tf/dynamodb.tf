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
    name = "queuedDay"
    type = "S"
  }

  attribute {
    name = "failedDay"
    type = "S"
  }

  # Every job once, by the UTC day of its job ID's ULID time: set by the write that creates the item and
  # never changed, so the index takes one write per job. Keys only: a listing reads the items with
  # BatchGetItem, so result (up to 32 KiB) never reaches an index. "Jobs queued since T" is one Query per
  # day with jobId >= the smallest ULID of T.
  # Provider 6.x deprecates hash_key/range_key here for key_schema blocks (docs/terraform.md); 5.100.0
  # (versions.tf) has no key_schema, so these stay until the provider is raised.
  global_secondary_index {
    name            = "by-day"
    hash_key        = "queuedDay"
    range_key       = "jobId"
    projection_type = "KEYS_ONLY"
  }

  # Sparse: only the write that makes a job dead sets failedDay, so a success never enters it.
  global_secondary_index {
    name            = "failures"
    hash_key        = "failedDay"
    range_key       = "jobId"
    projection_type = "KEYS_ONLY"
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
