"""A stand-in for aws, docker, terraform, git (and a venv's tools) that records how it was called.

Installed under the tool's name in a directory put first on PATH. Every call appends
``[name, *argv]`` as one JSON line to $FAKE_LOG. Behaviour is steered by environment variables:

- FAKE_FAIL: ``;``-separated prefixes of "name arg ..."; a matching call prints an error and exits 1.
- FAKE_TF_OUTPUTS: JSON object of terraform outputs. FAKE_TF_FRESH=1: no outputs until an apply ran.
  ``terraform output`` answers as terraform 1.11 does: ``-json`` prints every output's metadata (``{}``
  when there are none); ``[-raw] NAME`` with no outputs at all prints a warning box on stdout and
  exits 0; a NAME missing among other outputs is an error (exit 1).
- FAKE_TF_UNINITIALISED=1: terraform (except ``init``) fails as it does before ``terraform init``, with
  its "Backend initialization required" box on stderr.
- FAKE_ECR_EXISTING: ``,``-separated "repository:tag" images that describe-images finds.
- FAKE_GIT_STATUS: what ``git status --porcelain`` prints.
- FAKE_EXIT_<NAME>: exit status for a tool (for example FAKE_EXIT_MYPY=1); FAKE_EXIT_PYTEST for
  ``python -m pytest``.
- update's smoke test: ``ecs run-task`` starts ``task-<service>``; FAKE_RUN_TASK_FAILS=<service> makes
  it start none. FAKE_TASK_STATES: JSON object task id -> "lastStatus<TAB>healthStatus" (default
  RUNNING, HEALTHY). FAKE_JOB_IDS: the job IDs ``dynamodb query`` lists from the by-day index
  (default one, SMOKE_JOB_ID); FAKE_JOB_SUCCEEDED: what ``dynamodb batch-get-item`` counts as the smoke
  job succeeded (default 1).

As ``python3``, ``-m venv DIR`` makes a fake venv whose python, ruff, mypy, shellcheck and hadolint
are this fake too; its ``python -c`` runs the real interpreter (deploy.sh hashes pyproject.toml so).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

ECR_PASSWORD = "fake-ecr-password"
GIT_SHA = "abc1234"
SMOKE_JOB_ID = "01KBNJ5W000000000000000000"
IMAGES = [{"imageDigest": "sha256:aaaa", "imageTag": GIT_SHA}, {"imageDigest": "sha256:bbbb"}]


def _option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1] if name in args else ""


def _previous_calls(log: Path) -> list[list[str]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line]


NO_OUTPUTS_WARNING = """
╷
│ Warning: No outputs found
│
│ The state file either has no outputs defined, or all the defined outputs
│ are empty. Please define an output in your configuration with the `output`
│ keyword and run `terraform refresh` for it to become available. If you are
│ using interpolation, please verify the interpolated value is not empty. You
│ can use the `terraform show` command to view the state.
╵
"""


BACKEND_BOX = """╷
│ Error: Backend initialization required, please run "terraform init"
│
│ Reason: Initial configuration of the requested backend "s3"
│
│ Changes to backend configurations require reinitialization. This allows
│ Terraform to set up the new configuration, copy existing state, etc. Please
│ run "terraform init" with either the "-reconfigure" or "-migrate-state" flags
│ to use the current configuration.
╵
"""


def _terraform(args: list[str], history: list[list[str]], _stdin: str) -> int:
    if os.environ.get("FAKE_TF_UNINITIALISED") and args[1:2] != ["init"]:
        sys.stderr.write(BACKEND_BOX)
        return 1
    if args[1:2] != ["output"]:
        return 0
    outputs = json.loads(os.environ.get("FAKE_TF_OUTPUTS", "{}"))
    applied = any(call[:3] == ["terraform", args[0], "apply"] for call in history)
    if os.environ.get("FAKE_TF_FRESH") and not applied:
        outputs = {}
    flags = [arg for arg in args[2:] if arg.startswith("-")]
    names = [arg for arg in args[2:] if not arg.startswith("-")]
    if not names and "-json" in flags:
        document = {name: {"sensitive": False, "type": "string", "value": value} for name, value in outputs.items()}
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return 0
    if not outputs and "-json" not in flags:
        sys.stdout.write(NO_OUTPUTS_WARNING)  # terraform prints warnings on stdout, and exits 0
        return 0
    name = names[-1] if names else ""
    if name not in outputs:
        sys.stderr.write(f'Error: Output "{name}" not found\n')
        return 1
    sys.stdout.write(json.dumps(outputs[name]) if "-json" in flags else outputs[name])
    return 0


def _aws(args: list[str], history: list[list[str]], _stdin: str) -> int:
    command = args[:2]
    if command[:2] == ["ecr", "get-login-password"]:
        sys.stdout.write(ECR_PASSWORD + "\n")
    elif command[:2] == ["ecr", "describe-images"]:
        tag = _option(args, "--image-ids").removeprefix("imageTag=")
        image = f"{_option(args, '--repository-name')}:{tag}"
        if image not in os.environ.get("FAKE_ECR_EXISTING", "").split(","):
            sys.stderr.write("An error occurred (ImageNotFoundException)\n")
            return 254
        sys.stdout.write('{"imageDetails": []}\n')
    elif command[:2] == ["ecr", "list-images"]:
        repository = _option(args, "--repository-name")
        emptied = any("batch-delete-image" in call and repository in call for call in history)
        sys.stdout.write(json.dumps([] if emptied else IMAGES, indent=4) + "\n")
    elif command[:2] == ["ecs", "describe-services"]:
        sys.stdout.write(_describe_services(args))
    else:
        return _aws_smoke(args)
    return 0


TASK_DEFINITION = "arn:aws:ecs:eu-west-1:123456789012:task-definition/{service}:7"
NETWORK = {"awsvpcConfiguration": {"subnets": ["subnet-1"], "securityGroups": ["sg-1"], "assignPublicIp": "DISABLED"}}
STOPPED_REASON = "STOPPED\tUNKNOWN\tEssentialContainerExited\tEssential container in task exited\tNone\t1"


def _describe_services(args: list[str]) -> str:
    query = _option(args, "--query")
    service = _option(args, "--services")
    if query == "services[0].taskDefinition":
        return TASK_DEFINITION.format(service=service) + "\n"
    if query == "services[0].networkConfiguration":
        return json.dumps(NETWORK) + "\n"
    return "| fake describe-services table |\n"


def _aws_smoke(args: list[str]) -> int:
    """The calls of update's smoke test: run-task, describe-tasks, logs, the trigger and the ledger."""
    command = args[:2]
    if command == ["ecs", "run-task"]:
        service = _option(args, "--task-definition").rsplit("/", 1)[-1].split(":")[0]
        failing = os.environ.get("FAKE_RUN_TASK_FAILS")
        started = failing is None or failing != service
        sys.stdout.write(f"arn:aws:ecs:eu-west-1:123456789012:task/cluster/task-{service}\n" if started else "None\n")
    elif command == ["ecs", "describe-tasks"]:
        task = _option(args, "--tasks").rsplit("/", 1)[-1]
        state = json.loads(os.environ.get("FAKE_TASK_STATES", "{}")).get(task, "RUNNING\tHEALTHY")
        long_query = _option(args, "--query").count(",") > 1
        sys.stdout.write((STOPPED_REASON if long_query else state) + "\n")
    elif command == ["logs", "get-log-events"]:
        sys.stdout.write(f"fake last log line of {_option(args, '--log-stream-name')}\n")
    elif command == ["sqs", "send-message"]:
        sys.stdout.write("fake-message-id\n")
    elif command == ["dynamodb", "query"]:
        sys.stdout.write(os.environ.get("FAKE_JOB_IDS", SMOKE_JOB_ID) + "\n")
    elif command == ["dynamodb", "batch-get-item"]:
        sys.stdout.write(os.environ.get("FAKE_JOB_SUCCEEDED", "1") + "\n")
    return 0


def _docker(args: list[str], _history: list[list[str]], stdin: str) -> int:
    if args[:1] == ["login"] and stdin.strip() != ECR_PASSWORD:
        sys.stderr.write("Error: login attempt failed: wrong password on stdin\n")
        return 1
    return 0


def _git(args: list[str], _history: list[list[str]], _stdin: str) -> int:
    if args[:1] == ["rev-parse"]:
        sys.stdout.write(GIT_SHA + "\n")
    elif args[:1] == ["status"]:
        sys.stdout.write(os.environ.get("FAKE_GIT_STATUS", ""))
    return 0


def _python(args: list[str], _history: list[list[str]], _stdin: str) -> int:
    if args[:2] == ["-m", "venv"]:
        bin_dir = Path(args[2]) / "bin"
        bin_dir.mkdir(parents=True)
        for tool in ("python", "ruff", "mypy", "shellcheck", "hadolint"):
            shutil.copy(__file__, bin_dir / tool)
            (bin_dir / tool).chmod(0o755)
    if args[:2] == ["-m", "pytest"]:
        return int(os.environ.get("FAKE_EXIT_PYTEST", "0"))
    return 0


def main() -> int:
    name = Path(sys.argv[0]).name
    args = sys.argv[1:]
    if name == "python" and args[:1] == ["-c"]:
        os.execv(sys.executable, [sys.executable, *args])  # noqa: S606 - the real interpreter
    log = Path(os.environ["FAKE_LOG"])
    # Read a piped password before logging, so a pipe's writer is always logged first.
    stdin = sys.stdin.read() if "--password-stdin" in args else ""
    history = _previous_calls(log)
    with log.open("a") as stream:
        stream.write(json.dumps([name, *args]) + "\n")
    call = " ".join([name, *args])
    if any(prefix and call.startswith(prefix) for prefix in os.environ.get("FAKE_FAIL", "").split(";")):
        sys.stderr.write(f"fake {name}: failing as asked\n")
        return 1
    handlers = {"terraform": _terraform, "aws": _aws, "docker": _docker, "git": _git, "python": _python}
    handler = handlers.get(name.removesuffix("3"))
    if handler is not None:
        return handler(args, history, stdin)
    return int(os.environ.get(f"FAKE_EXIT_{name.upper()}", "0"))


if __name__ == "__main__":
    sys.exit(main())
