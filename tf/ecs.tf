################################################################################
# Cluster, task definitions and services
################################################################################

locals {
  # Memory (MiB) Fargate accepts for each task cpu value (ECS Developer Guide, "Task CPU and memory";
  # 8192 and 16384 need platform version 1.4.0 on Linux). Read by the main_job/background_job validations.
  fargate_memory_by_cpu = {
    "256"   = [512, 1024, 2048]
    "512"   = [1024, 2048, 3072, 4096]
    "1024"  = range(2048, 8193, 1024)
    "2048"  = range(4096, 16385, 1024)
    "4096"  = range(8192, 30721, 1024)
    "8192"  = range(16384, 61441, 4096)
    "16384" = range(32768, 122881, 8192)
  }

  # Environment of each worker: names from common/settings.py (a test checks the two agree).
  main_job_environment = {
    AWS_REGION                 = var.aws_region
    TRIGGER_QUEUE_URL          = aws_sqs_queue.source["trigger"].url
    TRIGGER_DLQ_URL            = aws_sqs_queue.dlq["trigger"].url
    BACKGROUND_QUEUE_URL       = aws_sqs_queue.source["background"].url
    WORKER_CONCURRENCY         = var.main_job.concurrency
    RECEIVE_WAIT_SECONDS       = local.receive_wait_seconds
    VISIBILITY_TIMEOUT_SECONDS = var.trigger_queue_visibility_timeout_seconds
    MAX_RECEIVE_COUNT          = var.max_receive_count
    MAX_ATTEMPTS               = var.max_attempts
    SHUTDOWN_GRACE_SECONDS     = var.shutdown_grace_seconds
    RETRY_BASE_SECONDS         = var.retry_base_seconds
    RETRY_MAX_SECONDS          = var.retry_max_seconds
    LOG_LEVEL                  = var.log_level
    METRICS_NAMESPACE          = var.metrics_namespace
    HEARTBEAT_FILE             = "/tmp/main-job.heartbeat"
    # No JOB_LEDGER_TABLE: main_job never touches the ledger (the claim creates a job's item).
  }

  background_job_environment = {
    AWS_REGION                   = var.aws_region
    BACKGROUND_QUEUE_URL         = aws_sqs_queue.source["background"].url
    BACKGROUND_DLQ_URL           = aws_sqs_queue.dlq["background"].url
    JOB_LOG_GROUP                = local.log_group_names.background_job
    WORKER_CONCURRENCY           = var.background_job.concurrency
    BATCH_WINDOW_SECONDS         = var.background_job.batch_window_seconds
    RECEIVE_WAIT_SECONDS         = local.receive_wait_seconds
    VISIBILITY_TIMEOUT_SECONDS   = var.background_queue_visibility_timeout_seconds
    MAX_RECEIVE_COUNT            = var.max_receive_count
    MAX_ATTEMPTS                 = var.max_attempts
    SHUTDOWN_GRACE_SECONDS       = var.shutdown_grace_seconds
    RETRY_BASE_SECONDS           = var.retry_base_seconds
    RETRY_MAX_SECONDS            = var.retry_max_seconds
    LOG_LEVEL                    = var.log_level
    METRICS_NAMESPACE            = var.metrics_namespace
    HEARTBEAT_FILE               = "/tmp/background-job.heartbeat"
    LOGS_OUTAGE_COOLDOWN_SECONDS = var.logs_outage_cooldown_seconds
    JOB_LEDGER_TABLE             = aws_dynamodb_table.jobs.name
    JOB_LEDGER_RETENTION_DAYS    = var.job_ledger_retention_days
    JOB_LEDGER_UNAVAILABLE       = var.job_ledger_unavailable
    JOB_TIMEOUT_SECONDS          = var.job_time_limit.default_seconds
    MIN_LIVE_SLOTS_SHARE         = var.job_time_limit.min_live_slots_share
    HUNG_SLOT_UNHEALTHY_SECONDS  = var.job_time_limit.hung_slot_unhealthy_seconds
    HUNG_SLOT_EXIT_SECONDS       = var.job_time_limit.hung_slot_exit_seconds
  }

  # Everything that differs between the two services, keyed like the main_job/background_job inputs.
  services = {
    main_job = {
      service            = local.main_job_service
      settings           = var.main_job
      image_tag          = var.main_job_image_tag
      queue              = "trigger"
      environment        = local.main_job_environment
      execution_role_arn = aws_iam_role.main_job_execution.arn
      task_role_arn      = aws_iam_role.main_job_task.arn
    }
    background_job = {
      service            = local.background_job_service
      settings           = var.background_job
      image_tag          = var.background_job_image_tag
      queue              = "background"
      environment        = local.background_job_environment
      execution_role_arn = aws_iam_role.background_job_execution.arn
      task_role_arn      = aws_iam_role.background_job_task.arn
    }
  }
}

resource "aws_ecs_cluster" "this" {
  name = local.name_prefix

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = ["FARGATE", "FARGATE_SPOT"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    base              = var.capacity_provider_strategy.fargate_base
    weight            = var.capacity_provider_strategy.fargate_weight
  }

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE_SPOT"
    weight            = var.capacity_provider_strategy.fargate_spot_weight
  }
}

resource "aws_ecs_task_definition" "this" {
  for_each = local.services

  family                   = "${local.name_prefix}-${each.value.service}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = each.value.settings.cpu
  memory                   = each.value.settings.memory
  execution_role_arn       = each.value.execution_role_arn
  task_role_arn            = each.value.task_role_arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  # Task-level ephemeral storage mounted at /tmp: the only writable path (Fargate has no tmpfs).
  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([
    {
      name      = each.value.service
      image     = "${aws_ecr_repository.this[each.key].repository_url}:${each.value.image_tag}"
      essential = true

      # The image's entrypoint (python -m <service>) is the command; no ports, nothing listens.
      user                   = "10001:10001"
      readonlyRootFilesystem = true
      privileged             = false
      linuxParameters = {
        initProcessEnabled = true
        capabilities       = { drop = ["ALL"] }
      }
      mountPoints = [
        { sourceVolume = "tmp", containerPath = "/tmp", readOnly = false },
      ]

      # SIGTERM, then SIGKILL after stopTimeout: the worker's grace period plus 5 s.
      stopTimeout = local.stop_timeout_seconds

      environment = [
        for name in sort(keys(each.value.environment)) :
        { name = name, value = tostring(each.value.environment[name]) }
      ]

      healthCheck = {
        command     = ["CMD", "python", "-m", "common.health"]
        interval    = 30
        timeout     = 10
        retries     = 3
        startPeriod = 30
      }

      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.this[each.key].name
          awslogs-region        = var.aws_region
          awslogs-stream-prefix = each.value.service
          # A slow CloudWatch Logs must never block the worker's stdout; lines beyond the buffer
          # are dropped (and with them their EMF metrics), which the buffer size makes unlikely.
          mode            = "non-blocking"
          max-buffer-size = "25m"
        }
      }
    },
  ])
}

resource "aws_security_group" "tasks" {
  name        = "${local.name_prefix}-tasks"
  description = "Worker tasks: no ingress (nothing listens); HTTPS egress to AWS APIs only."
  vpc_id      = local.vpc_id

  lifecycle {
    precondition {
      # alltrue, not `== [var.vpc_id]`: a list never equals a tuple literal in Terraform.
      condition     = length(local.subnet_vpc_ids) <= 1 && alltrue([for id in local.subnet_vpc_ids : var.vpc_id == null || id == var.vpc_id])
      error_message = "subnet_ids must all be in one VPC (and in vpc_id when it is set): the security group and the tasks must share a VPC."
    }
  }
}

resource "aws_vpc_security_group_egress_rule" "tasks_https" {
  security_group_id = aws_security_group.tasks.id
  description       = "HTTPS to AWS APIs (SQS, CloudWatch Logs, ECR, S3 image layers) via NAT or VPC endpoints"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_ecs_service" "this" {
  for_each = local.services

  name                   = each.value.service
  cluster                = aws_ecs_cluster.this.id
  task_definition        = aws_ecs_task_definition.this[each.key].arn
  desired_count          = each.value.settings.min_capacity
  enable_execute_command = false
  propagate_tags         = "SERVICE"

  # Rolling deploys: start new tasks before old ones stop; roll back a deploy that never gets healthy.
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  capacity_provider_strategy {
    capacity_provider = "FARGATE"
    base              = var.capacity_provider_strategy.fargate_base
    weight            = var.capacity_provider_strategy.fargate_weight
  }

  capacity_provider_strategy {
    capacity_provider = "FARGATE_SPOT"
    weight            = var.capacity_provider_strategy.fargate_spot_weight
  }

  network_configuration {
    subnets         = local.subnet_ids
    security_groups = [aws_security_group.tasks.id]
    # Only the default-VPC trial: its subnets are public, and without a public IP a task cannot reach
    # ECR, SQS or CloudWatch Logs. No ingress rule exists, so the address accepts no connection.
    assign_public_ip = local.use_default_vpc
  }

  # Autoscaling owns the task count after creation.
  lifecycle {
    ignore_changes = [desired_count]
  }

  # Tasks start as soon as the service exists (min_capacity >= 1 on a first apply): both roles'
  # policies must be attached first, or the first tasks meet AccessDenied until IAM catches up.
  depends_on = [
    aws_ecs_cluster_capacity_providers.this,
    aws_iam_role_policy.main_job_execution,
    aws_iam_role_policy.background_job_execution,
    aws_iam_role_policy.main_job_task,
    aws_iam_role_policy.background_job_task,
  ]
}
