"""Which deployment the CLI talks to, and how operators name its queues.

The names come from :class:`common.names.FleetNames`, like everything else in the fleet. The project
defaults to ``message-driven-microservices`` (``FLEET_PROJECT_NAME``); the environment is
``--environment`` or ``FLEET_ENVIRONMENT``, else ``local`` when ``AWS_ENDPOINT_URL`` points at an
emulator. With neither, the CLI refuses to guess: falling back to ``prod`` sent a newcomer who forgot
``AWS_ENDPOINT_URL`` to the production fleet (issue 34).
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
ENV_LOCAL_PORT: Final = "FLEET_LOCAL_PORT"
DEFAULT_LOCAL_PORT: Final = 4566


class NoDeploymentChosen(ValueError):
    """Neither an emulator endpoint nor an environment was given: the CLI will not guess one."""


def local_endpoint(environ: Mapping[str, str] | None = None) -> str:
    """The local fleet's endpoint on the port it was started with (``FLEET_LOCAL_PORT``, 4566)."""
    env = os.environ if environ is None else environ
    return f"http://127.0.0.1:{env.get(ENV_LOCAL_PORT, '').strip() or DEFAULT_LOCAL_PORT}"


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
        chosen = environment or env.get(ENV_ENVIRONMENT, "").strip()
        if not chosen and not env.get("AWS_ENDPOINT_URL", "").strip():
            raise NoDeploymentChosen(
                f"no deployment chosen: for the local fleet export AWS_ENDPOINT_URL={local_endpoint(env)}; "
                f"for AWS pass --environment NAME or export {ENV_ENVIRONMENT}=NAME (for example prod)"
            )
        return cls(
            project=project or env.get(ENV_PROJECT_NAME, "").strip() or DEFAULT_PROJECT_NAME,
            environment=chosen or LOCAL_ENVIRONMENT,
        )

    @property
    def names(self) -> FleetNames:
        return FleetNames.for_deployment(self.project, self.environment)

    @property
    def cluster(self) -> str:
        """The ECS cluster is named after the prefix (tf/ecs.tf)."""
        return self.names.prefix
