#!/usr/bin/env bash
#
# Build, deploy, inspect and tear down the message-driven worker fleet, or run it locally.
#
# Subcommands (./deploy.sh --help for details):
#   build [TAG]       build both images for linux/amd64 and push them to ECR
#   update [--yes]    terraform apply with the images of this commit, then wait for stable services
#   destroy [--yes]   empty the ECR repositories, then terraform destroy
#   info              queue URLs, log groups, services, and ready-to-paste AWS CLI commands
#   status            queue and DLQ depths, oldest message age, running/desired tasks
#   local [ARGS]      the whole fleet locally on moto server (python -m fleet.local.fleet)
#   test [ARGS]       ruff, mypy, terraform fmt, shellcheck, hadolint, then pytest with ARGS
#   init [FILE]       terraform init, with an optional backend config file
#
# The shell only orchestrates; anything with logic lives in Python (fleet/cli/, fleet/local/).

set -euo pipefail

ROOT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
readonly ROOT_DIR
readonly CALLER_DIR="${PWD}"
readonly TF_DIR="tf"
readonly VENV_DIR=".venv"
# checkov pins an old boto3, so it has a venv of its own that only `test` makes; .venv keeps the images' SDK.
readonly CHECKOV_VENV_DIR=".venv-checkov"
readonly CHECKOV_SPEC="checkov>=3.2,<4"
readonly PLATFORM="linux/amd64"
# Created on the first build, before the rest of the stack, so that images can be pushed before the
# first update. These are the resource addresses in tf/ecr.tf (one instance per service).
readonly -a ECR_TARGETS=(
  "-target=aws_ecr_repository.this"
  "-target=aws_ecr_lifecycle_policy.this"
)
# Prints one value of `terraform output -json` (read on stdin); exits 1 if it is missing or empty.
readonly TF_OUTPUT_VALUE='import json, sys
try:
    value = json.load(sys.stdin).get(sys.argv[1], {}).get("value")
except (ValueError, AttributeError):
    sys.exit(1)
if value is None or value == "":
    sys.exit(1)
print(value if isinstance(value, str) else json.dumps(value))'
# tf_output's exit status when Terraform has no backend set up (./deploy.sh init never ran here).
readonly EXIT_NOT_INITIALISED=3
readonly NOT_INITIALISED="no Terraform state is set up here: run './deploy.sh init backends/<env>.s3.tfbackend' first (README: Deploy to AWS)"
readonly SAMPLE_TRIGGER='{"trigger":"api_call","triggerBackgroundJob":true,"data":{"userId":"test123","action":"process_data"}}'

usage() {
  cat <<'EOF'
Usage: ./deploy.sh [OPTIONS] COMMAND [ARGS]

Commands:
  init [BACKEND_CONFIG]  terraform init in tf/; BACKEND_CONFIG is an optional -backend-config file
                         for remote state (S3 bucket, key, region; S3-native locking). Every
                         other command needs it first.
  build [TAG]            Build both images for linux/amd64, tagged with the short git SHA (and TAG),
                         log in to ECR and push. Checks the Docker daemon and AWS credentials first;
                         creates the ECR repositories on the first run. Pulls the base image first;
                         FLEET_BUILD_PULL=0 uses the one already loaded.
                         ECR tags are immutable: an image already pushed for this commit is skipped.
  update [--yes]         terraform apply with both images at this commit's SHA, wait until both
                         ECS services are stable, then prove the new revision: one task of each new
                         task definition must run healthy and a diagnostic job succeed end to end
                         (FLEET_UPDATE_SMOKE=0 skips that). Without --yes terraform shows the plan
                         and asks; without a terminal, --yes is required.
  destroy [--yes]        Delete the deployment: empty both ECR repositories, then terraform destroy.
                         Asks for confirmation; without a terminal, --yes is required.
  info                   Queue URLs, log groups, services, and the exact `aws sqs send-message` and
                         `aws logs tail` commands for this deployment.
  status                 Queue and DLQ depths, age of the oldest message, running/desired tasks.
  local [ARGS]           Run the whole fleet locally on moto server (no AWS account needed).
  test [PYTEST_ARGS]     ruff, mypy, terraform fmt (when terraform is installed), shellcheck,
                         hadolint, then pytest; stops at the first failure.

Options (before COMMAND):
  --region REGION        AWS region. Default: $AWS_REGION, then $AWS_DEFAULT_REGION, then the region
                         of the existing deployment (terraform output aws_region), else Terraform's
                         default (us-east-1).
  --profile PROFILE      AWS named profile. Default: $AWS_PROFILE.
  --env ENVIRONMENT      Deployment environment (Terraform var environment). Default:
                         $FLEET_ENVIRONMENT, else Terraform's default. Use the same value every time
                         for one state; use one backend config (state key) per environment.
  -h, --help             Show this help.

Requires: local and test need only python3 (they create .venv and install the package under
constraints.txt, the images' SDK pins; local installs what runs, test adds the dev tools and bench
peers, and checkov in a venv of its own, .venv-checkov). build needs
git, terraform, aws, docker and python3; update needs git, terraform, aws and python3; destroy needs
terraform, aws and python3; info and status need terraform and python3; init needs terraform.
EOF
}

err() {
  echo "deploy.sh: error: $*" >&2
}

log() {
  echo "==> $*" >&2
}

die() {
  err "$@"
  exit 1
}

require_tools() {
  local missing=()
  local tool
  for tool in "$@"; do
    if ! command -v "${tool}" >/dev/null 2>&1; then
      missing+=("${tool}")
    fi
  done
  if (( ${#missing[@]} > 0 )); then
    die "required tool not found on PATH: ${missing[*]}"
  fi
}

# Refuses unless --yes was given or a person at a terminal can answer the prompt.
require_approval() {
  local action="$1"
  local yes="$2"
  if [[ "${yes}" == "yes" ]]; then
    return 0
  fi
  if [[ ! -t 0 ]]; then
    die "refusing to ${action} without a terminal to confirm: pass --yes"
  fi
}

# Parses the only flag update and destroy take.
parse_yes() {
  local command="$1"
  shift
  case "$#:${1:-}" in
    0:) echo "no" ;;
    1:--yes) echo "yes" ;;
    *) err "usage: ./deploy.sh ${command} [--yes]"; exit 2 ;;
  esac
}

# One Terraform output. `terraform output -json` is read, not `-raw NAME`: with no outputs in the state,
# terraform 1.x answers `-raw NAME` with exit status 0 and a warning box on stdout, which would pass
# for the value; `-json` answers `{}`, so a missing output is always told apart from a value.
# Terraform's own errors are kept for the one case they say more than this line: without `init`, its
# 20-line "Backend initialization required" box suggests -reconfigure/-migrate-state, which is wrong advice
# for a first run, so that case is one line naming ./deploy.sh init (exit status EXIT_NOT_INITIALISED).
tf_output() {
  local name="$1"
  local json
  local value
  local errors
  errors="$(mktemp)"
  if ! json="$(terraform -chdir="${TF_DIR}" output -json 2>"${errors}")"; then
    if grep -q "Backend initialization required" "${errors}"; then
      rm -f "${errors}"
      err "${NOT_INITIALISED}"
      exit "${EXIT_NOT_INITIALISED}"
    fi
    cat "${errors}" >&2
    rm -f "${errors}"
    die "terraform output '${name}' is not available: run './deploy.sh init', then build and update"
  fi
  rm -f "${errors}"
  if ! value="$(python3 -c "${TF_OUTPUT_VALUE}" "${name}" <<<"${json}")"; then
    die "terraform output '${name}' is not available: run './deploy.sh init', then build and update"
  fi
  echo "${value}"
}

# The region for AWS CLI calls: the flag or environment, else the deployment's own region.
resolve_region() {
  if [[ -n "${REGION}" ]]; then
    echo "${REGION}"
  else
    tf_output aws_region
  fi
}

# Terraform variables common to apply and destroy; only what the user set, so state is not flipped.
tf_common_vars() {
  TF_VARS=()
  if [[ -n "${REGION}" ]]; then
    TF_VARS+=("-var=aws_region=${REGION}")
  fi
  if [[ -n "${ENVIRONMENT}" ]]; then
    TF_VARS+=("-var=environment=${ENVIRONMENT}")
  fi
}

git_sha() {
  git rev-parse --short HEAD
}

ecr_image_exists() {
  local region="$1"
  local repository_url="$2"
  local tag="$3"
  aws ecr describe-images --region "${region}" --repository-name "${repository_url#*/}" \
    --image-ids "imageTag=${tag}" >/dev/null 2>&1
}

# Whether the ECR repositories are in the Terraform state: 0 yes, 1 not yet (the first build), or
# EXIT_NOT_INITIALISED (after printing the one line that says to run init).
ecr_in_state() {
  local status=0
  (tf_output main_job_ecr_repository_url) >/dev/null 2>&1 || status=$?
  if (( status == EXIT_NOT_INITIALISED )); then
    err "${NOT_INITIALISED}"
  fi
  return "${status}"
}

# On the first build of a deployment, creates just the ECR repositories (and what they depend on).
create_ecr_repositories() {
  log "No ECR repositories in the Terraform state yet: creating them first"
  tf_common_vars
  terraform -chdir="${TF_DIR}" apply -input=false -auto-approve ${TF_VARS[@]+"${TF_VARS[@]}"} \
    "${ECR_TARGETS[@]}"
}

# The region build checks credentials in before anything exists: the flag or environment, else the
# deployment's, else (a first build) Terraform's default.
build_region() {
  if [[ -n "${REGION}" ]]; then
    echo "${REGION}"
  elif ! (tf_output aws_region 2>/dev/null); then
    echo "us-east-1"
  fi
}

# Before build creates anything on AWS: a docker binary is not a daemon, and an AWS CLI is not credentials.
require_docker_and_aws() {
  local region="$1"
  if ! docker info >/dev/null 2>&1; then
    die "the Docker daemon is not reachable ('docker info' failed): start Docker (or fix DOCKER_HOST), then build again"
  fi
  if ! aws sts get-caller-identity --region "${region}" >/dev/null 2>&1; then
    die "AWS credentials do not work in ${region} ('aws sts get-caller-identity' failed): set AWS_PROFILE, or run 'aws configure' / 'aws sso login'"
  fi
}

# --pull refreshes the pinned base tag (Debian security updates are published under the same tag).
# FLEET_BUILD_PULL=0 builds from the base image already loaded, for a builder without Docker Hub (a
# registry mirror, or the stand-in base the image check makes: docs/deploy.md).
build_pull_flags() {
  BUILD_PULL_FLAGS=()
  if [[ "${FLEET_BUILD_PULL:-1}" != "0" ]]; then
    BUILD_PULL_FLAGS=(--pull)
  fi
}

cmd_build() {
  if (( $# > 1 )); then
    err "usage: ./deploy.sh build [TAG]"
    exit 2
  fi
  local extra_tag="${1:-}"
  if [[ -n "${extra_tag}" && ! "${extra_tag}" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]]; then
    die "invalid image tag '${extra_tag}'"
  fi
  require_tools git terraform aws docker python3

  local sha
  sha="$(git_sha)"
  local dirty
  dirty="$(git status --porcelain --untracked-files=no)"
  if [[ -n "${dirty}" ]]; then
    err "warning: uncommitted changes are built into images tagged ${sha}"
  fi
  local in_state=0
  ecr_in_state || in_state=$?
  if (( in_state == EXIT_NOT_INITIALISED )); then
    exit "${EXIT_NOT_INITIALISED}"
  fi
  require_docker_and_aws "$(build_region)"
  if (( in_state != 0 )); then
    create_ecr_repositories
  fi
  local region
  region="$(resolve_region)"
  local main_url
  main_url="$(tf_output main_job_ecr_repository_url)"
  local background_url
  background_url="$(tf_output background_job_ecr_repository_url)"
  local -a repository_urls=("${main_url}" "${background_url}")
  local -a dockerfiles=("Dockerfile.main" "Dockerfile.background")

  local -a to_build=()
  local i
  for i in 0 1; do
    if ecr_image_exists "${region}" "${repository_urls[i]}" "${sha}"; then
      log "${repository_urls[i]}:${sha} is already in ECR (tags are immutable): skipping"
    else
      to_build+=("${i}")
    fi
  done
  if (( ${#to_build[@]} == 0 )); then
    log "Both images for ${sha} are already in ECR. Deploy them with: ./deploy.sh update"
    return 0
  fi

  log "Logging in to ECR"
  aws ecr get-login-password --region "${region}" \
    | docker login --username AWS --password-stdin "${repository_urls[0]%%/*}"

  local -a pushes=()
  local -a tags
  build_pull_flags
  for i in "${to_build[@]}"; do
    tags=(-t "${repository_urls[i]}:${sha}")
    pushes+=("${repository_urls[i]}:${sha}")
    if [[ -n "${extra_tag}" ]]; then
      tags+=(-t "${repository_urls[i]}:${extra_tag}")
      pushes+=("${repository_urls[i]}:${extra_tag}")
    fi
    log "Building ${dockerfiles[i]} for ${PLATFORM}"
    docker build --platform "${PLATFORM}" ${BUILD_PULL_FLAGS[@]+"${BUILD_PULL_FLAGS[@]}"} \
      --label "org.opencontainers.image.revision=${sha}" \
      -f "${dockerfiles[i]}" "${tags[@]}" .
  done

  local ref
  for ref in "${pushes[@]}"; do
    log "Pushing ${ref}"
    docker push "${ref}"
  done
  log "Pushed images for ${sha}. Deploy them with: ./deploy.sh update"
}

cmd_update() {
  local yes
  yes="$(parse_yes update "$@")"
  require_tools git terraform aws python3
  require_approval "apply changes" "${yes}"

  local sha
  sha="$(git_sha)"
  local main_url
  main_url="$(tf_output main_job_ecr_repository_url)"
  local background_url
  background_url="$(tf_output background_job_ecr_repository_url)"
  local region
  region="$(resolve_region)"
  local url
  for url in "${main_url}" "${background_url}"; do
    if ! ecr_image_exists "${region}" "${url}" "${sha}"; then
      die "image ${url}:${sha} is not in ECR: run './deploy.sh build' first"
    fi
  done

  tf_common_vars
  # Without --yes terraform shows the plan and asks (it cannot ask with -input=false).
  local -a apply_args=()
  if [[ "${yes}" == "yes" ]]; then
    apply_args+=(-input=false -auto-approve)
  fi
  log "Applying Terraform with image tag ${sha}"
  terraform -chdir="${TF_DIR}" apply ${apply_args[@]+"${apply_args[@]}"} \
    ${TF_VARS[@]+"${TF_VARS[@]}"} \
    "-var=main_job_image_tag=${sha}" "-var=background_job_image_tag=${sha}"

  local cluster
  cluster="$(tf_output ecs_cluster_name)"
  local main_service
  main_service="$(tf_output main_job_service_name)"
  local background_service
  background_service="$(tf_output background_job_service_name)"
  local -a services=("${main_service}" "${background_service}")
  log "Waiting for ${services[*]} to be stable (up to 10 minutes)"
  local stable="yes"
  aws ecs wait services-stable --region "${region}" --cluster "${cluster}" \
    --services "${services[@]}" || stable="no"
  aws ecs describe-services --region "${region}" --cluster "${cluster}" --services "${services[@]}" \
    --query 'services[].{service:serviceName,running:runningCount,desired:desiredCount,taskDefinition:taskDefinition}' \
    --output table
  if [[ "${stable}" != "yes" ]]; then
    die "services did not become stable; see their events: aws ecs describe-services --region ${region} --cluster ${cluster} --services ${services[*]}"
  fi
  if [[ "${FLEET_UPDATE_SMOKE:-1}" == "0" ]]; then
    log "Deployed ${sha}: both services are stable (smoke test skipped: FLEET_UPDATE_SMOKE=0)"
    return 0
  fi
  smoke_test_revision "${region}" "${cluster}" "${sha}"
  log "Deployed ${sha}: both services are stable and the new revision ran a job end to end"
}

# --- update's smoke test: the new revision must start and run a job, even at 0 tasks ---------------
#
# At min_capacity 0 the services are "stable" at 0/0 right after apply, and the deployment circuit
# breaker has nothing to judge: a bad image, a missing permission or a wrong variable would show only
# when the first trigger scales a service up. So update runs one standalone task of each service's new
# task definition (run-task: the services and their autoscaling are never touched, there is nothing
# to hand back but the two tasks, stopped on every path), waits until each is RUNNING with a healthy
# container health check, sends one diagnostic trigger through the deployed trigger queue and waits for
# its ledger item to read succeeded. On failure it prints the task's stopped reason and its last log
# lines and exits 1. FLEET_UPDATE_SMOKE=0 skips it; FLEET_SMOKE_TIMEOUT_SECONDS (600) bounds each wait.

SMOKE_TASKS=()

# Starts one task of the service's current (just applied) task definition; prints its ARN.
smoke_start_task() {
  local region="$1" cluster="$2" service="$3"
  local task_definition network arn
  task_definition="$(aws ecs describe-services --region "${region}" --cluster "${cluster}" \
    --services "${service}" --query 'services[0].taskDefinition' --output text)"
  network="$(aws ecs describe-services --region "${region}" --cluster "${cluster}" \
    --services "${service}" --query 'services[0].networkConfiguration' --output json)"
  log "Smoke test: starting one ${service} task of ${task_definition##*/}"
  arn="$(aws ecs run-task --region "${region}" --cluster "${cluster}" \
    --task-definition "${task_definition}" --count 1 --launch-type FARGATE \
    --network-configuration "${network}" --started-by deploy-smoke \
    --query 'tasks[0].taskArn' --output text)" || arn=""
  if [[ "${arn}" != arn:* ]]; then
    err "could not start a task of ${task_definition}: see aws ecs run-task's failures"
    return 1
  fi
  echo "${arn}"
}

# Waits until the task is RUNNING and its health check passes: 0; it stopped: 1; the deadline: 2.
smoke_wait_healthy() {
  local region="$1" cluster="$2" arn="$3"
  local deadline=$((SECONDS + ${FLEET_SMOKE_TIMEOUT_SECONDS:-600}))
  local state last_status health
  while true; do
    state="$(aws ecs describe-tasks --region "${region}" --cluster "${cluster}" --tasks "${arn}" \
      --query 'tasks[0].[lastStatus,healthStatus]' --output text)" || state=""
    read -r last_status health <<<"${state}" || true
    if [[ "${last_status}" == "STOPPED" ]]; then
      return 1
    fi
    if [[ "${last_status}" == "RUNNING" && "${health}" == "HEALTHY" ]]; then
      return 0
    fi
    if (( SECONDS >= deadline )); then
      return 2
    fi
    sleep "${FLEET_SMOKE_POLL_SECONDS:-10}"
  done
}

# Why the task failed: its status and stopped reason, then the last lines its container logged.
smoke_report_task() {
  local region="$1" cluster="$2" arn="$3" service="$4" group="$5"
  err "task ${arn##*/} of ${service}:"
  aws ecs describe-tasks --region "${region}" --cluster "${cluster}" --tasks "${arn}" \
    --query 'tasks[0].[lastStatus,healthStatus,stopCode,stoppedReason,containers[0].reason,containers[0].exitCode]' \
    --output text >&2 || true
  # tf/ecs.tf names the container and the awslogs stream prefix after the service.
  err "its last log lines (${group}, stream ${service}/${service}/${arn##*/}):"
  aws logs get-log-events --region "${region}" --log-group-name "${group}" \
    --log-stream-name "${service}/${service}/${arn##*/}" --limit 30 \
    --query 'events[].message' --output text >&2 || err "(no log stream: the container never started)"
}

# Sends one diagnostic job through the deployed trigger queue; waits for its ledger item to succeed.
# The job ID is a ULID of the trigger's SentTimestamp, which SQS stamps during the send: the job is in
# the by-day index (keys only) between the smallest ULID of "before the send" and the largest of "after
# it", widened by FLEET_SMOKE_CLOCK_SLACK_SECONDS (30) for this machine's clock. Those few keys are read
# with BatchGetItem (100 a request) and the one carrying the smoke's correlationId must read succeeded.
smoke_run_job() {
  local region="$1" sha="$2"
  local queue table index correlation low high day count
  queue="$(tf_output trigger_queue_url)"
  table="$(tf_output job_ledger_table_name)"
  index="$(tf_output job_ledger_day_index_name)"
  correlation="deploy-smoke-${sha}-$(date +%s)"
  low="$(smoke_ulid_bound "-${FLEET_SMOKE_CLOCK_SLACK_SECONDS:-30}" 0000000000000000)"
  log "Smoke test: sending a diagnostic job (correlationId ${correlation})"
  if ! aws sqs send-message --region "${region}" --queue-url "${queue}" --query MessageId --output text \
    --message-body "{\"trigger\":\"deploy-smoke\",\"jobType\":\"diagnostic-sleep\",\"data\":{\"seconds\":0},\"correlationId\":\"${correlation}\"}" >/dev/null; then
    err "could not send the diagnostic trigger to ${queue}"
    return 1
  fi
  high="$(smoke_ulid_bound "${FLEET_SMOKE_CLOCK_SLACK_SECONDS:-30}" ZZZZZZZZZZZZZZZZ)"
  local deadline=$((SECONDS + ${FLEET_SMOKE_TIMEOUT_SECONDS:-600}))
  while true; do
    count=0
    for day in $(smoke_ulid_days "${low}" "${high}"); do
      count=$((count + $(smoke_count_succeeded "${region}" "${table}" "${index}" "${day}" "${low}" "${high}" "${correlation}")))
    done
    if ((count > 0)); then
      return 0
    fi
    if (( SECONDS >= deadline )); then
      err "the diagnostic job (correlationId ${correlation}) did not succeed within ${FLEET_SMOKE_TIMEOUT_SECONDS:-600}s"
      return 1
    fi
    sleep "${FLEET_SMOKE_POLL_SECONDS:-10}"
  done
}

# The ULID bound of now + OFFSET seconds: its 10 time characters (Crockford base32 epoch ms) + SUFFIX.
smoke_ulid_bound() {
  python3 -c 'import sys, time
ms = int((time.time() + float(sys.argv[1])) * 1000)
alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
print("".join(alphabet[(ms >> (5 * i)) & 31] for i in range(9, -1, -1)) + sys.argv[2])' "$1" "$2"
}

# The UTC days (by-day partitions) from the time in ULID LOW to that in ULID HIGH: one, or two across midnight.
smoke_ulid_days() {
  python3 -c 'import sys, datetime as d
alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
days = []
for ulid in sys.argv[1:]:
    ms = 0
    for char in ulid[:10]:
        ms = ms * 32 + alphabet.index(char)
    day = d.datetime.fromtimestamp(ms / 1000, d.timezone.utc).strftime("%Y-%m-%d")
    days += [day] if day not in days else []
print(" ".join(days))' "$1" "$2"
}

# How many of the jobs queued on DAY between ULIDs LOW and HIGH carry CORRELATION and read succeeded.
smoke_count_succeeded() {
  local region="$1" table="$2" index="$3" day="$4" low="$5" high="$6" correlation="$7"
  local ids id total=0
  local batch=()
  ids="$(aws dynamodb query --region "${region}" --table-name "${table}" --index-name "${index}" \
    --key-condition-expression 'queuedDay = :d AND jobId BETWEEN :low AND :high' \
    --expression-attribute-values "{\":d\":{\"S\":\"${day}\"},\":low\":{\"S\":\"${low}\"},\":high\":{\"S\":\"${high}\"}}" \
    --query 'Items[].jobId.S' --output text)" || ids=""
  for id in ${ids}; do
    [[ "${id}" == "None" ]] && continue
    batch+=("${id}")
    if ((${#batch[@]} == 100)); then # BatchGetItem's limit
      total=$((total + $(smoke_batch_succeeded "${region}" "${table}" "${correlation}" "${batch[@]}")))
      batch=()
    fi
  done
  if ((${#batch[@]} > 0)); then
    total=$((total + $(smoke_batch_succeeded "${region}" "${table}" "${correlation}" "${batch[@]}")))
  fi
  echo "${total}"
}

# One BatchGetItem of the job IDs after the first three arguments: how many carry CORRELATION and succeeded.
smoke_batch_succeeded() {
  local region="$1" table="$2" correlation="$3" keys="" id found
  shift 3
  for id in "$@"; do
    keys="${keys:+${keys},}{\"jobId\":{\"S\":\"${id}\"}}"
  done
  found="$(aws dynamodb batch-get-item --region "${region}" \
    --request-items "{\"${table}\":{\"Keys\":[${keys}],\"ProjectionExpression\":\"correlationId, #s\",\"ExpressionAttributeNames\":{\"#s\":\"status\"}}}" \
    --query "length(Responses.\"${table}\"[?correlationId.S=='${correlation}' && status.S=='succeeded'])" \
    --output text)" || found=0
  [[ "${found}" =~ ^[0-9]+$ ]] || found=0
  echo "${found}"
}

smoke_stop_tasks() {
  local region="$1" cluster="$2"
  local arn
  for arn in ${SMOKE_TASKS[@]+"${SMOKE_TASKS[@]}"}; do
    aws ecs stop-task --region "${region}" --cluster "${cluster}" --task "${arn}" \
      --reason "deploy.sh update smoke test finished" >/dev/null || err "could not stop smoke task ${arn}"
  done
  SMOKE_TASKS=()
}

# Runs the whole smoke test; on any failure stops the tasks it started and exits 1.
smoke_test_revision() {
  local region="$1" cluster="$2" sha="$3"
  local main_service background_service main_group background_group
  main_service="$(tf_output main_job_service_name)"
  background_service="$(tf_output background_job_service_name)"
  main_group="$(tf_output main_job_log_group_name)"
  background_group="$(tf_output background_job_log_group_name)"
  local -a services=("${main_service}" "${background_service}")
  local -a groups=("${main_group}" "${background_group}")
  local i arn status
  for i in 0 1; do
    if ! arn="$(smoke_start_task "${region}" "${cluster}" "${services[i]}")"; then
      smoke_stop_tasks "${region}" "${cluster}"
      die "smoke test failed: the new ${services[i]} revision could not be started"
    fi
    SMOKE_TASKS+=("${arn}")
  done
  for i in 0 1; do
    status=0
    smoke_wait_healthy "${region}" "${cluster}" "${SMOKE_TASKS[i]}" || status=$?
    if (( status != 0 )); then
      if (( status == 1 )); then
        err "smoke test: the new ${services[i]} task stopped"
      else
        err "smoke test: the new ${services[i]} task did not become RUNNING and healthy within ${FLEET_SMOKE_TIMEOUT_SECONDS:-600}s"
      fi
      smoke_report_task "${region}" "${cluster}" "${SMOKE_TASKS[i]}" "${services[i]}" "${groups[i]}"
      smoke_stop_tasks "${region}" "${cluster}"
      die "smoke test failed: the new revision of ${services[i]} does not start; nothing was rolled back, fix and update again"
    fi
    log "Smoke test: ${services[i]} task is RUNNING and healthy"
  done
  if ! smoke_run_job "${region}" "${sha}"; then
    for i in 0 1; do
      smoke_report_task "${region}" "${cluster}" "${SMOKE_TASKS[i]}" "${services[i]}" "${groups[i]}"
    done
    smoke_stop_tasks "${region}" "${cluster}"
    die "smoke test failed: the new revision starts but does not run a job end to end"
  fi
  smoke_stop_tasks "${region}" "${cluster}"
  log "Smoke test: a diagnostic job succeeded end to end; the smoke tasks are stopped"
}

ecr_empty_repository() {
  local region="$1"
  local repository="$2"
  local ids
  local round
  # batch-delete-image takes at most 100 image IDs per call; give up if the repository never empties.
  for (( round = 1; round <= 100; round++ )); do
    ids="$(aws ecr list-images --region "${region}" --repository-name "${repository}" \
      --max-items 100 --query 'imageIds' --output json)"
    if [[ -z "${ids//[[:space:]]/}" || "${ids//[[:space:]]/}" == "[]" ]]; then
      return 0
    fi
    log "Deleting images from ${repository} (batch ${round})"
    aws ecr batch-delete-image --region "${region}" --repository-name "${repository}" \
      --image-ids "${ids}" >/dev/null
  done
  die "could not empty ECR repository ${repository}"
}

cmd_destroy() {
  local yes
  yes="$(parse_yes destroy "$@")"
  require_tools terraform aws python3
  require_approval "destroy the deployment" "${yes}"

  local region
  region="$(resolve_region)"
  local main_url
  main_url="$(tf_output main_job_ecr_repository_url)"
  local background_url
  background_url="$(tf_output background_job_ecr_repository_url)"
  if [[ "${yes}" != "yes" ]]; then
    local answer
    read -r -p "Delete this deployment in ${region} with its messages, logs and images? Type 'yes': " \
      answer || answer=""
    if [[ "${answer}" != "yes" ]]; then
      die "not confirmed; nothing was deleted"
    fi
  fi

  ecr_empty_repository "${region}" "${main_url#*/}"
  ecr_empty_repository "${region}" "${background_url#*/}"
  tf_common_vars
  log "Destroying the Terraform stack"
  terraform -chdir="${TF_DIR}" destroy -input=false -auto-approve ${TF_VARS[@]+"${TF_VARS[@]}"}
  log "Destroyed"
}

cmd_info() {
  if (( $# > 0 )); then
    err "usage: ./deploy.sh info"
    exit 2
  fi
  require_tools terraform python3
  local region
  region="$(resolve_region)"
  local trigger_queue trigger_dlq background_queue background_dlq cluster main_service
  local background_service main_logs background_logs main_repo background_repo topic
  trigger_queue="$(tf_output trigger_queue_url)"
  trigger_dlq="$(tf_output trigger_dlq_url)"
  background_queue="$(tf_output background_queue_url)"
  background_dlq="$(tf_output background_dlq_url)"
  cluster="$(tf_output ecs_cluster_name)"
  main_service="$(tf_output main_job_service_name)"
  background_service="$(tf_output background_job_service_name)"
  main_logs="$(tf_output main_job_log_group_name)"
  background_logs="$(tf_output background_job_log_group_name)"
  main_repo="$(tf_output main_job_ecr_repository_url)"
  background_repo="$(tf_output background_job_ecr_repository_url)"
  topic="$(tf_output sns_topic_arn)"
  local cli="aws --region ${region}"
  if [[ -n "${PROFILE}" ]]; then
    cli+=" --profile ${PROFILE}"
  fi
  cat <<EOF
Region:            ${region}
Trigger queue:     ${trigger_queue}
Trigger DLQ:       ${trigger_dlq}
Background queue:  ${background_queue}
Background DLQ:    ${background_dlq}
ECS cluster:       ${cluster}
Services:          ${main_service} ${background_service}
Log groups:        ${main_logs} ${background_logs}
ECR repositories:  ${main_repo} ${background_repo}
Alarm topic:       ${topic}

Send a trigger:
  ${cli} sqs send-message --queue-url ${trigger_queue} --message-body '${SAMPLE_TRIGGER}'

Tail the services' logs:
  ${cli} logs tail ${main_logs} --follow
  ${cli} logs tail ${background_logs} --follow

Tail the jobs' own streams (one per job: job-streams/YYYY-MM-DD/<jobId>):
  ${cli} logs tail ${background_logs} --follow --log-stream-name-prefix job-streams/
EOF
}

# Creates a venv with python3 if missing.
make_venv() {
  local dir="$1"
  if [[ ! -x "${dir}/bin/python" ]]; then
    require_tools python3
    log "Creating ${dir}"
    python3 -m venv "${dir}"
  fi
}

# A hash of WORDS (the pip arguments) and the files that decide an install: a venv layer is installed
# again only when it changes.
install_hash() {
  local words="$1"
  shift
  "${VENV_DIR}/bin/python" -c \
    'import hashlib, sys; h = hashlib.sha256(sys.argv[1].encode()); [h.update(open(f, "rb").read()) for f in sys.argv[2:]]; print(h.hexdigest())' \
    "${words}" "$@"
}

# Makes .venv hold what a command needs, always under constraints.txt so that the local fleet and the
# tests run exactly the boto3/botocore the images pin. LAYER "run" (local, status) is the runtime and the
# operator tools; "develop" (test) adds the dev tools and the bench peers. Each layer keeps a hash of
# the files that decide it, and installs again only when one of them changed.
ensure_venv() {
  local layer="$1"
  make_venv "${VENV_DIR}"
  local -a specs=(-e . -e ./fleet)
  if [[ "${layer}" == "develop" ]]; then
    specs=(-e '.[dev,bench]' -e ./fleet)
  fi
  local want
  want="$(install_hash "${specs[*]}" pyproject.toml fleet/pyproject.toml constraints.txt)"
  local stamp="${VENV_DIR}/.installed-${layer}.sha256"
  local have=""
  if [[ -f "${stamp}" ]]; then
    have="$(<"${stamp}")"
  fi
  if [[ "${have}" != "${want}" ]]; then
    log "Installing the ${layer} environment into ${VENV_DIR} (boto3/botocore as constraints.txt pins them)"
    # pip's progress goes to stderr: stdout stays the command's own output (status, local).
    "${VENV_DIR}/bin/python" -m pip install -c constraints.txt "${specs[@]}" >&2
    echo "${want}" >"${stamp}"
    if [[ "${layer}" == "develop" ]]; then
      # develop is a superset of run: a later `local` has nothing to install.
      install_hash "-e . -e ./fleet" pyproject.toml fleet/pyproject.toml constraints.txt >"${VENV_DIR}/.installed-run.sha256"
    fi
  fi
}

# checkov in its own venv (tests/tf run it as a program): its boto3 pin never reaches .venv.
ensure_checkov_venv() {
  make_venv "${CHECKOV_VENV_DIR}"
  local stamp="${CHECKOV_VENV_DIR}/.installed.spec"
  if [[ ! -f "${stamp}" || "$(<"${stamp}")" != "${CHECKOV_SPEC}" ]]; then
    log "Installing ${CHECKOV_SPEC} into ${CHECKOV_VENV_DIR}"
    "${CHECKOV_VENV_DIR}/bin/python" -m pip install "${CHECKOV_SPEC}" >&2
    echo "${CHECKOV_SPEC}" >"${stamp}"
  fi
}

cmd_status() {
  if (( $# > 0 )); then
    err "usage: ./deploy.sh status"
    exit 2
  fi
  require_tools terraform python3
  local region
  region="$(resolve_region)"
  local -a args=(--region "${region}")
  local name
  local value
  for name in trigger_queue_url trigger_dlq_url background_queue_url background_dlq_url; do
    value="$(tf_output "${name}")"
    args+=(--queue "${value}")
  done
  value="$(tf_output ecs_cluster_name)"
  args+=(--cluster "${value}")
  for name in main_job_service_name background_job_service_name; do
    value="$(tf_output "${name}")"
    args+=(--service "${value}")
  done
  ensure_venv run
  exec "${VENV_DIR}/bin/python" -m fleet.cli.status "${args[@]}"
}

cmd_local() {
  ensure_venv run
  exec "${VENV_DIR}/bin/python" -m fleet.local.fleet "$@"
}

run_step() {
  local name="$1"
  shift
  log "${name}"
  local status=0
  "$@" || status=$?
  if (( status != 0 )); then
    err "${name} failed (exit ${status})"
    exit "${status}"
  fi
}

# terraform fmt -check on tf/: terraform is optional for local and test, so without it the step says
# it is skipped (the provider-schema test in tests/tf/ still checks tf/ without the binary).
check_tf_fmt() {
  if ! command -v terraform >/dev/null 2>&1; then
    log "terraform fmt: skipped, terraform is not on PATH (install it to check tf/ formatting)"
    return 0
  fi
  run_step "terraform fmt" terraform fmt -check -diff -recursive "${TF_DIR}"
}

cmd_test() {
  ensure_venv develop
  ensure_checkov_venv
  local bin="${VENV_DIR}/bin"
  run_step "ruff" "${bin}/ruff" check .
  run_step "mypy" "${bin}/mypy"
  check_tf_fmt
  run_step "shellcheck" "${bin}/shellcheck" deploy.sh .ci/run .ci/images-test
  run_step "hadolint" "${bin}/hadolint" --failure-threshold warning Dockerfile.main Dockerfile.background
  run_step "pytest" "${bin}/python" -m pytest "$@"
}

cmd_init() {
  if (( $# > 1 )); then
    err "usage: ./deploy.sh init [BACKEND_CONFIG]"
    exit 2
  fi
  require_tools terraform
  local -a args=(-input=false)
  if (( $# == 1 )); then
    local config="$1"
    if [[ "${config}" != /* ]]; then
      config="${CALLER_DIR}/${config}"
    fi
    if [[ ! -f "${config}" ]]; then
      die "backend config file not found: $1"
    fi
    args+=("-backend-config=${config}")
  elif [[ ! -f "${TF_DIR}/backend_override.tf" ]]; then
    # tf/backend.tf is a partial S3 backend: without its settings terraform would stop and prompt.
    err "init needs a backend config file for the S3 state: ./deploy.sh init backends/prod.s3.tfbackend"
    err "for a throwaway trial with local state, create tf/backend_override.tf (see docs/terraform.md)"
    exit 2
  fi
  terraform -chdir="${TF_DIR}" init "${args[@]}"
}

main() {
  REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-}}"
  PROFILE="${AWS_PROFILE:-}"
  ENVIRONMENT="${FLEET_ENVIRONMENT:-}"
  while (( $# > 0 )); do
    case "$1" in
      -h | --help | help)
        usage
        exit 0
        ;;
      --region | --profile | --env)
        if (( $# < 2 )) || [[ -z "$2" ]]; then
          err "$1 needs a value"
          usage >&2
          exit 2
        fi
        case "$1" in
          --region) REGION="$2" ;;
          --profile) PROFILE="$2" ;;
          --env) ENVIRONMENT="$2" ;;
        esac
        shift 2
        ;;
      -*)
        err "unknown option: $1"
        usage >&2
        exit 2
        ;;
      *) break ;;
    esac
  done
  readonly REGION PROFILE ENVIRONMENT
  if [[ -n "${PROFILE}" ]]; then
    export AWS_PROFILE="${PROFILE}"
  fi

  local command="${1:-}"
  if (( $# > 0 )); then
    shift
  fi
  cd "${ROOT_DIR}"
  case "${command}" in
    build) cmd_build "$@" ;;
    update) cmd_update "$@" ;;
    destroy) cmd_destroy "$@" ;;
    info) cmd_info "$@" ;;
    status) cmd_status "$@" ;;
    local) cmd_local "$@" ;;
    test) cmd_test "$@" ;;
    init) cmd_init "$@" ;;
    *)
      if [[ -n "${command}" ]]; then
        err "unknown command: ${command}"
      fi
      usage >&2
      exit 2
      ;;
  esac
}

main "$@"
