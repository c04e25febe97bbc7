"""Which deployment the CLI talks to, and how operators name its queues.

The names come from :class:`common.names.FleetNames`, like everything else in the fleet. The project
defaults to ``message-driven-microservices`` (``FLEET_PROJECT_NAME``); the environment is
``FLEET_ENVIRONMENT``, else ``local`` when ``AWS_ENDPOINT_URL`` points at an emulator, else ``prod``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from common.names import DEFAULT_PROJECT_NAME, FleetNames

ENV_PROJECT_NAME: Final = "FLEET_PROJECT_NAME"
ENV_ENVIRONMENT: Final = "FLEET_ENVIRONMENT"
LOCAL_ENVIRONMENT: Final = "local"
AWS_DEFAULT_ENVIRONMENT: Final = "prod"


@dataclass(frozen=True, slots=True)
class Deployment:
    """The project and environment whose resources a command reads."""

    project: str
    environment: str

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        project: str | None = None,
        environment: str | None = None,
    ) -> Deployment:
        env = os.environ if environ is None else environ
        default_environment = LOCAL_ENVIRONMENT if env.get("AWS_ENDPOINT_URL", "").strip() else AWS_DEFAULT_ENVIRONMENT
        return cls(
            project=project or env.get(ENV_PROJECT_NAME, "").strip() or DEFAULT_PROJECT_NAME,
            environment=environment or env.get(ENV_ENVIRONMENT, "").strip() or default_environment,
        )

    @property
    def names(self) -> FleetNames:
        return FleetNames.for_deployment(self.project, self.environment)

    @property
    def cluster(self) -> str:
        """The ECS cluster is named after the prefix (tf/ecs.tf)."""
        return self.names.prefix
