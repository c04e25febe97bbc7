provider "aws" {
  region = var.aws_region

  default_tags {
    tags = local.tags
  }
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

# Networking. Production passes private subnets that reach AWS through a NAT gateway or VPC endpoints;
# the VPC is the one those subnets are in. With no subnets, a trial runs in the default VPC's default
# subnets, which are public: only there do tasks get a public IP, or they could not pull from ECR.
data "aws_subnet" "selected" {
  for_each = toset(var.subnet_ids)

  id = each.value
}

data "aws_vpc" "default" {
  count = length(var.subnet_ids) == 0 ? 1 : 0

  default = true
}

data "aws_subnets" "default" {
  count = length(var.subnet_ids) == 0 ? 1 : 0

  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.default[0].id]
  }

  filter {
    name   = "default-for-az"
    values = ["true"]
  }
}

locals {
  # One prefix for every name; common/names.py derives the same names (a test keeps them equal).
  name_prefix = "${var.project_name}-${var.environment}"

  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  use_default_vpc = length(var.subnet_ids) == 0
  subnet_vpc_ids  = distinct([for subnet in data.aws_subnet.selected : subnet.vpc_id])
  vpc_id          = local.use_default_vpc ? data.aws_vpc.default[0].id : local.subnet_vpc_ids[0]
  subnet_ids      = local.use_default_vpc ? data.aws_subnets.default[0].ids : var.subnet_ids

  tags = merge(
    {
      Project     = var.project_name
      Environment = var.environment
      ManagedBy   = "terraform"
    },
    var.tags,
  )

  # Service names, as the workers call themselves (Service dimension of the EMF metrics).
  main_job_service       = "main-job"
  background_job_service = "background-job"

  # Queue and log group names: exactly the ones in common/names.py.
  queue_names = {
    trigger        = "${local.name_prefix}-main-job-triggers"
    trigger_dlq    = "${local.name_prefix}-main-job-triggers-dlq"
    background     = "${local.name_prefix}-background-jobs"
    background_dlq = "${local.name_prefix}-background-jobs-dlq"
  }

  log_group_names = {
    main_job       = "/ecs/${local.name_prefix}/main-job"
    background_job = "/ecs/${local.name_prefix}/background-job"
  }

  # Job ledger table: FleetNames.job_ledger_table (common/names.py, common/ledger/schema.py).
  job_ledger_table_name = "${local.name_prefix}-jobs"

  # Per-job log streams inside the background-job log group: job-streams/YYYY-MM-DD/<ULID>.
  job_stream_root = "job-streams"

  # Long polling: the workers wait this long in ReceiveMessage, and the queues default to it.
  receive_wait_seconds = 20

  # Fargate caps stopTimeout at 120 s; the worker's grace period plus 5 s of slack for the runtime.
  stop_timeout_seconds = var.shutdown_grace_seconds + 5
}
