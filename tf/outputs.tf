# deploy.sh reads these with `terraform output -raw <name>`: keep the names stable.

output "aws_region" {
  description = "Region everything was created in."
  value       = var.aws_region
}

output "trigger_queue_url" {
  description = "URL of the trigger queue (send triggers for main-job here)."
  value       = aws_sqs_queue.source["trigger"].url
}

output "trigger_dlq_url" {
  description = "URL of the trigger queue's dead-letter queue."
  value       = aws_sqs_queue.dlq["trigger"].url
}

output "background_queue_url" {
  description = "URL of the background job queue (main-job enqueues, background-job consumes)."
  value       = aws_sqs_queue.source["background"].url
}

output "background_dlq_url" {
  description = "URL of the background job queue's dead-letter queue."
  value       = aws_sqs_queue.dlq["background"].url
}

output "ecs_cluster_name" {
  description = "Name of the ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "main_job_service_name" {
  description = "Name of the main-job ECS service."
  value       = aws_ecs_service.this["main_job"].name
}

output "background_job_service_name" {
  description = "Name of the background-job ECS service."
  value       = aws_ecs_service.this["background_job"].name
}

output "main_job_log_group_name" {
  description = "CloudWatch log group of main-job."
  value       = aws_cloudwatch_log_group.this["main_job"].name
}

output "background_job_log_group_name" {
  description = "CloudWatch log group of background-job, including the per-job streams job-streams/YYYY-MM-DD/<job id>."
  value       = aws_cloudwatch_log_group.this["background_job"].name
}

output "main_job_ecr_repository_url" {
  description = "ECR repository URL deploy.sh pushes the main-job image to."
  value       = aws_ecr_repository.this["main_job"].repository_url
}

output "background_job_ecr_repository_url" {
  description = "ECR repository URL deploy.sh pushes the background-job image to."
  value       = aws_ecr_repository.this["background_job"].repository_url
}

output "sns_topic_arn" {
  description = "ARN of the encrypted SNS topic every alarm notifies."
  value       = aws_sns_topic.alarms.arn
}

output "kms_key_arn" {
  description = "ARN of the customer-managed KMS key (queues, logs, topic, images)."
  value       = aws_kms_key.this.arn
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "metrics_namespace" {
  description = "CloudWatch namespace of the workers' EMF metrics."
  value       = var.metrics_namespace
}

output "job_ledger_table_name" {
  description = "Job ledger table (JOB_LEDGER_TABLE of both workers)."
  value       = aws_dynamodb_table.jobs.name
}

output "job_ledger_table_arn" {
  description = "ARN of the job ledger table."
  value       = aws_dynamodb_table.jobs.arn
}

output "job_ledger_day_index_name" {
  description = "GSI of the job ledger that lists jobs by the UTC day of their job ID (queuedDay, jobId; keys only)."
  value       = one([for index in aws_dynamodb_table.jobs.global_secondary_index : index.name if index.hash_key == "queuedDay"])
}

output "job_ledger_failures_index_name" {
  description = "Sparse GSI of the job ledger that lists dead jobs by the UTC day they died (failedDay, jobId; keys only)."
  value       = one([for index in aws_dynamodb_table.jobs.global_secondary_index : index.name if index.hash_key == "failedDay"])
}

output "job_canceller_policy_json" {
  description = "IAM policy for operators running fleet cancel: UpdateItem on the table limited to the cancel's attributes, kms:Decrypt through DynamoDB."
  value       = data.aws_iam_policy_document.job_canceller.json
}

output "job_ledger_reader_policy_json" {
  description = "IAM policy for operators (fleet job / fleet jobs / fleet top): GetItem and BatchGetItem on the table, Query on the by-day and failures indexes, kms:Decrypt through DynamoDB."
  value       = data.aws_iam_policy_document.job_ledger_reader.json
}

output "trigger_producer_policy_json" {
  description = "IAM policy for a producer of triggers: SendMessage to the encrypted trigger queue and the KMS calls SQS makes for it."
  value       = data.aws_iam_policy_document.trigger_producer.json
}
