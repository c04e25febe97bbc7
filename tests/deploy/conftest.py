"""Runs deploy.sh with fake aws, docker, terraform and git first on PATH, recording their calls."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy.sh"
FAKE_SOURCE = Path(__file__).with_name("fake_tool.py")
CLOUD_TOOLS = ("aws", "docker", "terraform", "git")
#: Left out of the system bin dir so a test can take them away; fixtures put python3 back.
NOT_SYSTEM = (*CLOUD_TOOLS, "python3", "python")

ACCOUNT_REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
PREFIX = "message-driven-microservices-prod"
QUEUE_ROOT = "https://sqs.eu-west-1.amazonaws.com/123456789012"
TF_OUTPUTS: Mapping[str, str] = {
    "trigger_queue_url": f"{QUEUE_ROOT}/{PREFIX}-main-job-triggers",
    "trigger_dlq_url": f"{QUEUE_ROOT}/{PREFIX}-main-job-triggers-dlq",
    "background_queue_url": f"{QUEUE_ROOT}/{PREFIX}-background-jobs",
    "background_dlq_url": f"{QUEUE_ROOT}/{PREFIX}-background-jobs-dlq",
    "ecs_cluster_name": f"{PREFIX}-cluster",
    "main_job_service_name": f"{PREFIX}-main-job",
    "background_job_service_name": f"{PREFIX}-background-job",
    "main_job_log_group_name": f"/ecs/{PREFIX}/main-job",
    "background_job_log_group_name": f"/ecs/{PREFIX}/background-job",
    "main_job_ecr_repository_url": f"{ACCOUNT_REGISTRY}/{PREFIX}-main-job",
    "background_job_ecr_repository_url": f"{ACCOUNT_REGISTRY}/{PREFIX}-background-job",
    "sns_topic_arn": f"arn:aws:sns:eu-west-1:123456789012:{PREFIX}-alarms",
    "aws_region": "eu-west-1",
    "job_ledger_table_name": f"{PREFIX}-jobs",
    "job_ledger_day_index_name": "by-day",
}


def install_fakes(directory: Path, names: tuple[str, ...]) -> None:
    """Write one executable per name that runs fake_tool.py with this interpreter."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        script = directory / name
        script.write_text(f"#!{sys.executable}\n" + FAKE_SOURCE.read_text())
        script.chmod(0o755)


@pytest.fixture(scope="session")
def system_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every command on the real PATH except the cloud tools and python3, as symlinks in one dir."""
    directory = tmp_path_factory.mktemp("system-bin")
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        folder = Path(entry)
        if not folder.is_dir():
            continue
        for candidate in folder.iterdir():
            target = directory / candidate.name
            if candidate.name in NOT_SYSTEM or target.exists() or target.is_symlink():
                continue
            if candidate.is_file() and os.access(candidate, os.X_OK):
                target.symlink_to(candidate)
    return directory


@dataclass
class Deploy:
    """deploy.sh with its own fake tools, call log and environment."""

    fakes: Path
    system_bin: Path
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    script: Path = DEPLOY

    def run(self, *args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run deploy.sh without a terminal on stdin."""
        full_env = {
            "PATH": f"{self.fakes}{os.pathsep}{self.system_bin}",
            "HOME": str(self.log.parent),
            "LANG": "C.UTF-8",
            "FAKE_LOG": str(self.log),
            "FAKE_TF_OUTPUTS": json.dumps(dict(TF_OUTPUTS)),
            **self.env,
            **(env or {}),
        }
        return subprocess.run(
            [str(self.script), *args],
            env=full_env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def calls(self) -> list[list[str]]:
        """Every recorded call, in order, as [tool, *args]."""
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]

    def without(self, tool: str) -> Deploy:
        """The same setup with ``tool`` removed from PATH."""
        (self.fakes / tool).unlink()
        assert shutil.which(tool, path=f"{self.fakes}{os.pathsep}{self.system_bin}") is None
        return self


@pytest.fixture
def deploy(tmp_path: Path, system_bin: Path) -> Deploy:
    """deploy.sh with fakes for every cloud tool, region eu-west-1 from the environment."""
    fakes = tmp_path / "fakes"
    install_fakes(fakes, CLOUD_TOOLS)
    (fakes / "python3").symlink_to(sys.executable)
    return Deploy(fakes=fakes, system_bin=system_bin, log=tmp_path / "calls.log", env={"AWS_REGION": "eu-west-1"})
