################################################################################
# Naming and placement
################################################################################

variable "project_name" {
  description = "Project name; the first half of every resource name (<project>-<environment>)."
  type        = string
  default     = "message-driven-microservices"
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,40}[a-z0-9]$", var.project_name))
    error_message = "project_name must be 3-42 lower-case letters, digits or hyphens, starting with a letter."
  }

  # ECR repository names (<prefix>-main-job) follow [a-z0-9]+(?:[._-][a-z0-9]+)*: no two separators in a row.
  validation {
    condition     = !strcontains(var.project_name, "--")
    error_message = "project_name must not contain '--': ECR repository names allow no two separators in a row."
  }
}

variable "environment" {
  description = "Environment name (prod, staging, dev...); the second half of every resource name."
  type        = string
  default     = "prod"
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{0,15}$", var.environment))
    error_message = "environment must be 1-16 lower-case letters or digits, starting with a letter."
  }

  # The longest name built on the prefix is the IAM role <prefix>-background-job-execution (25 more
  # characters), and IAM role names stop at 64; SQS names (80) and the rest leave more room.
  validation {
    condition     = length("${var.project_name}-${var.environment}") <= 39
    error_message = "project_name-environment must be at most 39 characters, or the IAM role <prefix>-background-job-execution exceeds IAM's 64-character limit."
  }
}

variable "aws_region" {
  description = "AWS region for every resource."
  type        = string
  default     = "us-east-1"
  nullable    = false
}

variable "tags" {
  description = "Extra tags merged into the default tags (Project, Environment, ManagedBy) of every resource."
  type        = map(string)
  default     = {}
  nullable    = false
}

variable "vpc_id" {
  description = "Optional cross-check: the VPC that subnet_ids must all belong to. The VPC itself is always derived from subnet_ids (or is the default VPC when subnet_ids is empty)."
  type        = string
  default     = null

  validation {
    condition     = var.vpc_id == null || length(var.subnet_ids) > 0
    error_message = "vpc_id needs subnet_ids: name the (private) subnets of that VPC the tasks should run in."
  }
}

variable "subnet_ids" {
  description = "Subnets for the tasks: private subnets with a NAT gateway or VPC endpoints (no public IP is assigned). Empty: a trial in the default VPC's default subnets, where tasks get a public IP to reach AWS APIs."
  type        = list(string)
  default     = []
  nullable    = false
}

################################################################################
# Images (deploy.sh passes both tags to terraform apply)
################################################################################

variable "main_job_image_tag" {
  description = "Image tag of main-job in its ECR repository. Tags are immutable: deploy a new tag (e.g. the git SHA) each time."
  type        = string
  default     = "latest"
  nullable    = false
}

variable "background_job_image_tag" {
  description = "Image tag of background-job in its ECR repository. Tags are immutable: deploy a new tag (e.g. the git SHA) each time."
  type        = string
  default     = "latest"
  nullable    = false
}

variable "ecr_keep_last_images" {
  description = "How many images each ECR repository keeps; older ones are expired by the lifecycle policy."
  type        = number
  default     = 30
  nullable    = false

  validation {
    condition     = var.ecr_keep_last_images >= 1
    error_message = "ecr_keep_last_images must be at least 1."
  }
}

################################################################################
# Services
################################################################################

variable "main_job" {
  description = <<-EOT
    main-job service: task size (Fargate cpu units / MiB), WORKER_CONCURRENCY, autoscaling bounds
    (min_capacity may be 0: scale to zero when idle) and the target backlog per task for target tracking.
  EOT
  type = object({
    cpu                     = optional(number, 256)
    memory                  = optional(number, 512)
    concurrency             = optional(number, 10)
    min_capacity            = optional(number, 0)
    max_capacity            = optional(number, 10)
    target_backlog_per_task = optional(number, 100)
  })
  default  = {}
  nullable = false

  validation {
    condition     = var.main_job.min_capacity >= 0 && var.main_job.max_capacity >= max(1, var.main_job.min_capacity)
    error_message = "main_job needs 0 <= min_capacity <= max_capacity and max_capacity >= 1."
  }

  # Task counts, Fargate sizes and WORKER_CONCURRENCY are integers: ECS rejects 0.5 tasks or 256.5 cpu
  # units, and the worker refuses WORKER_CONCURRENCY=10.5 at start-up.
  validation {
    condition = alltrue([
      for value in [var.main_job.cpu, var.main_job.memory, var.main_job.concurrency, var.main_job.min_capacity, var.main_job.max_capacity] :
      floor(value) == value
    ])
    error_message = "main_job.cpu, memory, concurrency, min_capacity and max_capacity must be whole numbers."
  }

  # Fargate runs only these cpu/memory pairs (ECS Developer Guide, "Task CPU and memory"); any other
  # pair, such as 256/4096, is refused at apply after the rest of the stack was created.
  validation {
    condition     = contains(try(local.fargate_memory_by_cpu[tostring(var.main_job.cpu)], []), var.main_job.memory)
    error_message = "main_job.cpu/memory must be a Fargate pair: 256 with 512-2048, 512 with 1024-4096, 1024 with 2048-8192, 2048 with 4096-16384, 4096 with 8192-30720 (1024 steps), 8192 with 16384-61440 (4096 steps), 16384 with 32768-122880 (8192 steps)."
  }

  validation {
    condition     = var.main_job.concurrency >= 1 && var.main_job.concurrency <= 64 && var.main_job.target_backlog_per_task > 0
    error_message = "main_job.concurrency must be 1-64 (what the worker accepts) and target_backlog_per_task positive."
  }
}

variable "background_job" {
  description = <<-EOT
    background-job service: task size (Fargate cpu units / MiB), WORKER_CONCURRENCY, BATCH_WINDOW_SECONDS
    (how long a busy task waits between job completions for a full receive batch; 0 receives as soon
    as one slot frees, which costs more requests), autoscaling bounds (min_capacity may be 0: scale to
    zero when idle) and the target backlog per task for target tracking.
  EOT
  type = object({
    cpu                     = optional(number, 256)
    memory                  = optional(number, 512)
    concurrency             = optional(number, 10)
    batch_window_seconds    = optional(number, 0.1)
    min_capacity            = optional(number, 0)
    max_capacity            = optional(number, 10)
    target_backlog_per_task = optional(number, 10)
  })
  default  = {}
  nullable = false

  validation {
    condition     = var.background_job.min_capacity >= 0 && var.background_job.max_capacity >= max(1, var.background_job.min_capacity)
    error_message = "background_job needs 0 <= min_capacity <= max_capacity and max_capacity >= 1."
  }

  # Task counts, Fargate sizes and WORKER_CONCURRENCY are integers: ECS rejects 0.5 tasks or 256.5 cpu
  # units, and the worker refuses WORKER_CONCURRENCY=10.5 at start-up.
  validation {
    condition = alltrue([
      for value in [var.background_job.cpu, var.background_job.memory, var.background_job.concurrency, var.background_job.min_capacity, var.background_job.max_capacity] :
      floor(value) == value
    ])
    error_message = "background_job.cpu, memory, concurrency, min_capacity and max_capacity must be whole numbers."
  }

  # Fargate runs only these cpu/memory pairs (ECS Developer Guide, "Task CPU and memory"); any other
  # pair, such as 256/4096, is refused at apply after the rest of the stack was created.
  validation {
    condition     = contains(try(local.fargate_memory_by_cpu[tostring(var.background_job.cpu)], []), var.background_job.memory)
    error_message = "background_job.cpu/memory must be a Fargate pair: 256 with 512-2048, 512 with 1024-4096, 1024 with 2048-8192, 2048 with 4096-16384, 4096 with 8192-30720 (1024 steps), 8192 with 16384-61440 (4096 steps), 16384 with 32768-122880 (8192 steps)."
  }

  validation {
    condition     = var.background_job.concurrency >= 1 && var.background_job.concurrency <= 64 && var.background_job.target_backlog_per_task > 0
    error_message = "background_job.concurrency must be 1-64 (what the worker accepts) and target_backlog_per_task positive."
  }

  validation {
    condition     = var.background_job.batch_window_seconds >= 0 && var.background_job.batch_window_seconds <= 1
    error_message = "background_job.batch_window_seconds must be 0-1 (what the worker accepts)."
  }
}

variable "capacity_provider_strategy" {
  description = <<-EOT
    FARGATE / FARGATE_SPOT mix for both services. fargate_base tasks always run on FARGATE; beyond
    that, tasks split by weight (default 1:3, so about 75% of the extra tasks run on Spot). Workers
    drain on SIGTERM, which is also what Spot interruption sends, so Spot is safe for this fleet.
  EOT
  type = object({
    fargate_base        = optional(number, 1)
    fargate_weight      = optional(number, 1)
    fargate_spot_weight = optional(number, 3)
  })
  default  = {}
  nullable = false

  validation {
    condition = (
      var.capacity_provider_strategy.fargate_base >= 0 &&
      var.capacity_provider_strategy.fargate_weight >= 0 &&
      var.capacity_provider_strategy.fargate_spot_weight >= 0 &&
      var.capacity_provider_strategy.fargate_weight + var.capacity_provider_strategy.fargate_spot_weight > 0
    )
    error_message = "Weights must be non-negative and at least one of them positive."
  }

  validation {
    condition = alltrue([
      for value in values(var.capacity_provider_strategy) : floor(value) == value
    ])
    error_message = "fargate_base, fargate_weight and fargate_spot_weight must be whole numbers (ECS takes integers)."
  }
}

variable "cpu_architecture" {
  description = "CPU architecture of the images (deploy.sh builds linux/amd64, so X86_64)."
  type        = string
  default     = "X86_64"
  nullable    = false

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

################################################################################
# Worker settings (environment variables of the task definitions)
################################################################################

variable "shutdown_grace_seconds" {
  description = "SHUTDOWN_GRACE_SECONDS: how long a worker finishes in-flight work after SIGTERM, 20-115. ECS stopTimeout is this + 5 (Fargate max 120), which must outlast the 20 s long poll."
  type        = number
  default     = 25
  nullable    = false

  # SIGTERM does not interrupt a long poll: a worker stops only once its receive returns, up to
  # receive_wait_seconds (20) after the signal. stopTimeout (grace + 5) must outlast that poll with room
  # to release what it returned, or an idle worker is SIGKILLed (exit 137) and a receive racing the
  # kill hides its messages for a visibility timeout.
  validation {
    condition     = var.shutdown_grace_seconds >= local.receive_wait_seconds && var.shutdown_grace_seconds <= 115
    error_message = "shutdown_grace_seconds must be 20-115: stopTimeout (grace + 5) must outlast the 20 s long poll SIGTERM does not interrupt, and fit Fargate's 120 s."
  }

  # The worker would accept 30.5, but stopTimeout (grace + 5) is an integer field: ECS rejects 35.5.
  validation {
    condition     = floor(var.shutdown_grace_seconds) == var.shutdown_grace_seconds
    error_message = "shutdown_grace_seconds must be a whole number of seconds (ECS stopTimeout is an integer)."
  }
}

variable "retry_base_seconds" {
  description = "RETRY_BASE_SECONDS: first backoff of a failed message (applied through its visibility timeout)."
  type        = number
  default     = 5
  nullable    = false

  # The worker's accepted range (common/settings.py): a visibility timeout of at most SQS's 12 hours.
  validation {
    condition     = var.retry_base_seconds >= 0 && var.retry_base_seconds <= 43200
    error_message = "retry_base_seconds must be 0-43200 (what the worker accepts; SQS caps a visibility timeout at 12 h)."
  }
}

variable "retry_max_seconds" {
  description = "RETRY_MAX_SECONDS: longest backoff of a failed message; not below retry_base_seconds."
  type        = number
  default     = 900
  nullable    = false

  validation {
    condition     = var.retry_max_seconds >= 0 && var.retry_max_seconds <= 43200
    error_message = "retry_max_seconds must be 0-43200 (what the worker accepts; SQS caps a visibility timeout at 12 h)."
  }

  validation {
    condition     = var.retry_max_seconds >= var.retry_base_seconds
    error_message = "retry_max_seconds must not be below retry_base_seconds, or every backoff is capped below its own base."
  }
}

variable "logs_outage_cooldown_seconds" {
  description = "LOGS_OUTAGE_COOLDOWN_SECONDS: after a failed CloudWatch Logs call, how long background jobs write their events to stdout before probing Logs again."
  type        = number
  default     = 30
  nullable    = false

  validation {
    condition     = var.logs_outage_cooldown_seconds >= 0 && var.logs_outage_cooldown_seconds <= 3600
    error_message = "logs_outage_cooldown_seconds must be 0-3600 (what the worker accepts)."
  }
}

variable "job_time_limit" {
  description = <<-EOT
    Runaway jobs (docs/reliability.md): JOB_TIMEOUT_SECONDS, the time limit of a job whose type declares
    none (TIMEOUT_SECONDS beside its run function); MIN_LIVE_SLOTS_SHARE, below which share of live slots
    a worker whose slots are held by timed-out jobs exits to be replaced; HUNG_SLOT_UNHEALTHY_SECONDS and
    HUNG_SLOT_EXIT_SECONDS, how long past its deadline a held slot fails the health check, and makes the
    worker exit.
  EOT
  type = object({
    default_seconds             = optional(number, 3600)
    min_live_slots_share        = optional(number, 0.5)
    hung_slot_unhealthy_seconds = optional(number, 60)
    hung_slot_exit_seconds      = optional(number, 900)
  })
  default  = {}
  nullable = false

  # SQS keeps a message invisible at most 12 hours from its receive (ChangeMessageVisibility): a limit
  # must end before that, less the visibility timeout (the worker checks the exact bound at start).
  validation {
    condition     = var.job_time_limit.default_seconds > 0 && var.job_time_limit.default_seconds < 43200
    error_message = "job_time_limit.default_seconds must be above 0 and below 43200 (SQS's 12-hour visibility cap)."
  }

  validation {
    condition     = var.job_time_limit.min_live_slots_share >= 0 && var.job_time_limit.min_live_slots_share <= 1
    error_message = "job_time_limit.min_live_slots_share must be 0-1."
  }

  validation {
    condition = alltrue([
      for value in [var.job_time_limit.hung_slot_unhealthy_seconds, var.job_time_limit.hung_slot_exit_seconds] :
      value >= 0 && value <= 43200
    ])
    error_message = "job_time_limit.hung_slot_unhealthy_seconds and hung_slot_exit_seconds must be 0-43200."
  }
}

variable "log_level" {
  description = "LOG_LEVEL of both workers."
  type        = string
  default     = "INFO"
  nullable    = false

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the workers' EMF metrics (METRICS_NAMESPACE); the alarms and dashboard read the same one."
  type        = string
  default     = "MessageDrivenFleet"
  nullable    = false
}

################################################################################
# Queues
################################################################################

variable "trigger_queue_visibility_timeout_seconds" {
  description = "Visibility timeout of the trigger queue; also main-job's VISIBILITY_TIMEOUT_SECONDS. Must exceed the time to handle one trigger."
  type        = number
  default     = 60
  nullable    = false

  validation {
    condition     = var.trigger_queue_visibility_timeout_seconds >= 10 && var.trigger_queue_visibility_timeout_seconds <= 43200
    error_message = "Visibility timeout must be 10-43200 s (the worker's accepted range; SQS caps it at 12 h)."
  }

  validation {
    condition     = floor(var.trigger_queue_visibility_timeout_seconds) == var.trigger_queue_visibility_timeout_seconds
    error_message = "Visibility timeout must be a whole number of seconds (SQS and the worker take integers)."
  }
}

variable "background_queue_visibility_timeout_seconds" {
  description = "Visibility timeout of the background queue; also background-job's VISIBILITY_TIMEOUT_SECONDS. Must exceed the job time limit."
  type        = number
  default     = 60
  nullable    = false

  validation {
    condition     = var.background_queue_visibility_timeout_seconds >= 10 && var.background_queue_visibility_timeout_seconds <= 43200
    error_message = "Visibility timeout must be 10-43200 s (the worker's accepted range; SQS caps it at 12 h)."
  }

  validation {
    condition     = floor(var.background_queue_visibility_timeout_seconds) == var.background_queue_visibility_timeout_seconds
    error_message = "Visibility timeout must be a whole number of seconds (SQS and the worker take integers)."
  }
}

variable "max_receive_count" {
  description = "Receives before SQS moves a message to its DLQ (redrive maxReceiveCount); also MAX_RECEIVE_COUNT of the workers. A high backstop for poison messages only: the give-up is max_attempts runs, moved to the DLQ with its reason by the worker; receives that start no run (a release, a busy copy, a stale buffer) must never dead-letter a job."
  type        = number
  default     = 20
  nullable    = false

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000 && floor(var.max_receive_count) == var.max_receive_count
    error_message = "max_receive_count must be a whole number 1-1000."
  }
}

variable "max_attempts" {
  description = "Runs a job may start before the worker gives up and moves its message to the DLQ with the reason (MAX_ATTEMPTS). Counted by the job ledger's attempts, or by receives with the ledger off. Keep it below max_receive_count."
  type        = number
  default     = 5
  nullable    = false

  validation {
    condition     = var.max_attempts >= 1 && var.max_attempts <= 1000 && floor(var.max_attempts) == var.max_attempts
    error_message = "max_attempts must be a whole number 1-1000."
  }
}

variable "queue_message_retention_seconds" {
  description = "Message retention of the two source queues (default 4 days)."
  type        = number
  default     = 345600
  nullable    = false

  validation {
    condition     = var.queue_message_retention_seconds >= 60 && var.queue_message_retention_seconds <= 1209600
    error_message = "Retention must be 60-1209600 s."
  }
}

variable "dlq_message_retention_seconds" {
  description = "Message retention of the two DLQs (default 14 days, the SQS maximum); must be longer than the source queues'."
  type        = number
  default     = 1209600
  nullable    = false

  validation {
    condition     = var.dlq_message_retention_seconds >= 60 && var.dlq_message_retention_seconds <= 1209600
    error_message = "Retention must be 60-1209600 s."
  }
}

################################################################################
# Logs, encryption
################################################################################

variable "log_retention_days" {
  description = "Retention of both log groups (including the per-job streams), in days."
  type        = number
  default     = 365
  nullable    = false

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of the values CloudWatch Logs accepts."
  }
}

variable "kms_deletion_window_days" {
  description = "Waiting period before the KMS key is deleted after destroy (7-30 days)."
  type        = number
  default     = 30
  nullable    = false

  validation {
    condition     = var.kms_deletion_window_days >= 7 && var.kms_deletion_window_days <= 30
    error_message = "kms_deletion_window_days must be 7-30."
  }
}

################################################################################
# Alarms and scaling thresholds
################################################################################

variable "alarm_email" {
  description = "Email address subscribed to the alarm topic (confirm the subscription mail). null: no subscription."
  type        = string
  default     = null
}

variable "oldest_message_age_alarm_seconds" {
  description = "Latency budget per source queue: alarm when its oldest message is older than this."
  type = object({
    trigger    = optional(number, 300)
    background = optional(number, 900)
  })
  default  = {}
  nullable = false
}

variable "backlog_alarm_threshold" {
  description = "Alarm when a source queue has more visible messages than this for 15 minutes (autoscaling is not keeping up)."
  type = object({
    trigger    = optional(number, 1000)
    background = optional(number, 500)
  })
  default  = {}
  nullable = false
}

variable "cpu_alarm_percent" {
  description = "Alarm when a service's average CPU utilization stays above this percentage for 15 minutes."
  type        = number
  default     = 80
  nullable    = false
}

variable "memory_alarm_percent" {
  description = "Alarm when a service's average memory utilization stays above this percentage for 15 minutes."
  type        = number
  default     = 80
  nullable    = false
}

variable "job_failure_rate_alarm_percent" {
  description = "Alarm when JobsFailed / (JobsSucceeded + JobsFailed) exceeds this percentage over 10 minutes."
  type        = number
  default     = 10
  nullable    = false
}

variable "log_delivery_failures_alarm_threshold" {
  description = "Alarm when background-job reports at least this many per-job log delivery failures in 5 minutes."
  type        = number
  default     = 1
  nullable    = false
}

variable "scale_to_zero_idle_minutes" {
  description = "Minutes a source queue must have no visible and no in-flight messages before its service scales in to min_capacity."
  type        = number
  default     = 15
  nullable    = false

  validation {
    condition     = var.scale_to_zero_idle_minutes >= 1 && var.scale_to_zero_idle_minutes <= 1440
    error_message = "scale_to_zero_idle_minutes must be 1-1440."
  }
}

################################################################################
# Job ledger (tf/dynamodb.tf)
################################################################################

variable "job_ledger_retention_days" {
  description = "JOB_LEDGER_RETENTION_DAYS: a ledger item expires (DynamoDB TTL) this many days after its last update."
  type        = number
  default     = 30
  nullable    = false

  validation {
    condition     = var.job_ledger_retention_days >= 1 && var.job_ledger_retention_days <= 3650 && floor(var.job_ledger_retention_days) == var.job_ledger_retention_days
    error_message = "job_ledger_retention_days must be a whole number 1-3650 (what the worker accepts)."
  }
}

variable "job_ledger_unavailable" {
  description = "JOB_LEDGER_UNAVAILABLE of background-job: retry (fail the attempt, retry through visibility; nothing runs unclaimed) or run (run unclaimed, at least once)."
  type        = string
  default     = "retry"
  nullable    = false

  validation {
    condition     = contains(["retry", "run"], var.job_ledger_unavailable)
    error_message = "job_ledger_unavailable must be retry or run."
  }
}

variable "job_ledger_deletion_protection" {
  description = "Deletion protection of the job ledger table. Set false and apply before destroying the deployment."
  type        = bool
  default     = true
  nullable    = false
}
