"""AWS resource names derived from one prefix.

Terraform (``tf/``), the local fleet and the operator tools all derive their names here or from the
same rule, and a test checks that Terraform agrees, so there is one source of truth.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.ledger.schema import JOB_LEDGER_TABLE_SUFFIX

DEFAULT_PROJECT_NAME = "message-driven-microservices"
MAIN_JOB_SERVICE = "main-job"
BACKGROUND_JOB_SERVICE = "background-job"
JOB_STREAM_ROOT = "job-streams"


@dataclass(frozen=True, slots=True)
class FleetNames:
    """Every name of a deployment, from ``<project>-<environment>``."""

    prefix: str

    @classmethod
    def for_deployment(cls, project_name: str, environment: str) -> FleetNames:
        return cls(prefix=f"{project_name}-{environment}")

    @property
    def trigger_queue(self) -> str:
        return f"{self.prefix}-main-job-triggers"

    @property
    def trigger_dlq(self) -> str:
        return f"{self.prefix}-main-job-triggers-dlq"

    @property
    def background_queue(self) -> str:
        return f"{self.prefix}-background-jobs"

    @property
    def background_dlq(self) -> str:
        return f"{self.prefix}-background-jobs-dlq"

    @property
    def main_job_log_group(self) -> str:
        return f"/ecs/{self.prefix}/{MAIN_JOB_SERVICE}"

    @property
    def background_job_log_group(self) -> str:
        return f"/ecs/{self.prefix}/{BACKGROUND_JOB_SERVICE}"

    @property
    def job_ledger_table(self) -> str:
        return f"{self.prefix}-{JOB_LEDGER_TABLE_SUFFIX}"

    @property
    def schedule_group(self) -> str:
        """EventBridge Scheduler's group for the declared schedules and ``fleet send --at``'s one-offs."""
        return self.prefix

    @property
    def scheduler_role(self) -> str:
        """The role Scheduler assumes to send triggers (tf/schedules.tf)."""
        return f"{self.prefix}-scheduler"

    def queues(self) -> dict[str, str]:
        """Source queue name to its DLQ name."""
        return {self.trigger_queue: self.trigger_dlq, self.background_queue: self.background_dlq}
