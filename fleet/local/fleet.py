"""``./deploy.sh local``: moto server, the queues and log groups, and both workers as child processes.

It plays ECS's part too: each worker is started with exactly the container entry point
(``python -m main_job`` / ``python -m background_job``), is restarted when it dies, and is stopped with
SIGTERM and a grace period. Everything is pointed at the emulator through ``AWS_ENDPOINT_URL`` only;
the workers contain no emulator-specific code.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from common.names import BACKGROUND_JOB_SERVICE, DEFAULT_PROJECT_NAME, MAIN_JOB_SERVICE, FleetNames
from common.settings import (
    ENV_BACKGROUND_DLQ_URL,
    ENV_BACKGROUND_QUEUE_URL,
    ENV_HEARTBEAT_FILE,
    ENV_JOB_LEDGER_TABLE,
    ENV_JOB_LOG_GROUP,
    ENV_RECEIVE_WAIT_SECONDS,
    ENV_SHUTDOWN_GRACE_SECONDS,
    ENV_TRIGGER_DLQ_URL,
    ENV_TRIGGER_QUEUE_URL,
    Settings,
)
from fleet.local import task_counts
from fleet.local.aws_proxy import FAULT_KINDS, AwsProxy
from fleet.local.emulator import EmulatorError, child_preexec, port_is_free, start_emulator, stop_emulator
from fleet.local.log_shipper import LogShipper
from fleet.local.provision import QueueUrls, provision
from fleet.local.scheduler import SchedulerPlayer
from fleet.schedules import api as scheduler_api
from fleet.schedules.declaration import (
    DEFAULT_PATH,
    ENV_SCHEDULES_FILE,
    DeclaredSchedule,
    InvalidDeclaration,
    load,
)

DEFAULT_PORT = 4566
#: The workers' long poll locally, unless RECEIVE_WAIT_SECONDS says otherwise: SIGTERM stops within ~1 s.
LOCAL_RECEIVE_WAIT_SECONDS = 1
#: Running jobs' time to finish on Ctrl-C locally, unless SHUTDOWN_GRACE_SECONDS says otherwise (ECS: 25 s).
#: A person at a terminal expects the fleet gone in seconds; a job still running then has its message
#: released, so the next start (or another worker) runs it again.
LOCAL_SHUTDOWN_GRACE_SECONDS = 2
#: ECS's stopTimeout is the grace period plus this: then the supervisor kills what is left, as ECS does.
KILL_AFTER_GRACE_SECONDS = 5
HOST = "127.0.0.1"
REGION = "us-east-1"
#: The emulator accepts any credentials; fixed dummy ones keep real ones from ever being sent to it.
EMULATOR_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
SERVICES = {MAIN_JOB_SERVICE: "main_job", BACKGROUND_JOB_SERVICE: "background_job"}
_MAX_RESTART_DELAY = 30.0
_STARTUP_DEADLINE_SECONDS = 30.0


class FleetError(RuntimeError):
    """The local fleet cannot start; the message says what to do."""


@dataclass(slots=True)
class Worker:
    """One supervised worker process, restarted with growing delays if it keeps dying."""

    service: str
    instance: int
    env: Mapping[str, str]
    process: subprocess.Popen[str] | None = None
    restarts: int = 0
    started_at: float = 0.0
    not_before: float = 0.0
    pumps: list[threading.Thread] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.service}-{self.instance}"


class LocalFleet:
    def __init__(
        self,
        *,
        port: int,
        environment: str,
        background_workers: int,
        echo: bool,
        proxy: bool = False,
        fault_rate: float = 0.0,
    ) -> None:
        self.port = port
        self.endpoint = f"http://{HOST}:{port}"
        self.environment = environment
        self.names = FleetNames.for_deployment(os.environ.get("FLEET_PROJECT_NAME", DEFAULT_PROJECT_NAME), environment)
        self.settings = Settings.from_env(MAIN_JOB_SERVICE, _with_placeholder_urls(_with_local_defaults(os.environ)))
        self._background_workers = background_workers
        self._echo = echo
        self._stopping = threading.Event()
        self._state_dir = Path()
        self._emulator: subprocess.Popen[bytes] | None = None
        self._workers: list[Worker] = []
        self._shipper: LogShipper | None = None
        self._want_proxy = proxy or fault_rate > 0
        self._fault_rate = fault_rate
        self._proxy: AwsProxy | None = None
        self._scheduler: SchedulerPlayer | None = None
        self._urls: QueueUrls | None = None

    def run(self) -> int:
        schedules = self._declared_schedules()  # a bad declaration fails before anything starts
        self._state_dir = Path(tempfile.mkdtemp(prefix="fleet-local-"))
        try:
            self._start_emulator()
            self._start_proxy()
            urls = self._provision()
            self._start_workers(urls)
            self._start_scheduler(urls, schedules)
            self._announce(urls)
            self._supervise()
        finally:
            self._stop()
        return 0

    def request_stop(self, signum: int, _frame: FrameType | None) -> None:
        if self._stopping.is_set():
            self._force_stop()
        grace = self.settings.shutdown_grace_seconds
        _say(
            f"received {signal.Signals(signum).name}: stopping the fleet; running jobs get {grace:g}s "
            f"({ENV_SHUTDOWN_GRACE_SECONDS}), then their messages are released for the next start. "
            "Press Ctrl-C again to force the stop"
        )
        self._stopping.set()

    def _force_stop(self) -> None:
        """The second Ctrl-C: kill every child now (their messages come back after the visibility timeout)."""
        children = [w.process for w in self._workers if w.process is not None] + [self._emulator]
        for process in children:
            if process is not None and process.poll() is None:
                process.kill()
        shutil.rmtree(self._state_dir, ignore_errors=True)
        _say(
            f"forced stop: killed the workers and the emulator; messages they held would have come back after "
            f"{self.settings.visibility_timeout_seconds}s, but the emulator's state is gone with it"
        )
        os._exit(130)

    # --- start-up ---------------------------------------------------------------------------------
    def _start_emulator(self) -> None:
        if not port_is_free(self.port, HOST):
            raise FleetError(f"port {self.port} is in use: stop what holds it or set FLEET_LOCAL_PORT to a free port")
        try:
            self._emulator = start_emulator(
                self.port,
                host=HOST,
                log_path=self._state_dir / "emulator.log",
                timeout=_STARTUP_DEADLINE_SECONDS,
                stop=self._stopping,
            )
        except EmulatorError as error:
            raise FleetError(str(error)) from error
        _say(f"emulator (moto server) listening on {self.endpoint}")

    def _start_proxy(self) -> None:
        if not self._want_proxy:
            return
        self._proxy = AwsProxy(upstream_port=self.port).start()
        if self._fault_rate > 0:
            share = self._fault_rate / len(FAULT_KINDS)
            self._proxy.state.set_rules([{"operation": "*", "kind": kind, "rate": share} for kind in FAULT_KINDS])
        _say(f"AWS proxy on {self._proxy.endpoint} (fault rate {self._fault_rate:.1%}); stats at /__proxy__/stats")

    def _worker_endpoint(self) -> str:
        return self._proxy.endpoint if self._proxy is not None else self.endpoint

    def _client_env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            **EMULATOR_CREDENTIALS,
        }

    def _session(self) -> boto3.session.Session:
        env = self._client_env()
        return boto3.session.Session(
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=REGION,
        )

    def _provision(self) -> QueueUrls:
        session = self._session()
        logs = session.client("logs", endpoint_url=self.endpoint)
        urls = provision(
            sqs=session.client("sqs", endpoint_url=self.endpoint),
            logs=logs,
            dynamodb=session.client("dynamodb", endpoint_url=self.endpoint),
            names=self.names,
            visibility_timeout=self.settings.visibility_timeout_seconds,
            max_receive_count=self.settings.max_receive_count,
        )
        self._shipper = LogShipper(logs, sys.stdout, quiet=not self._echo)
        self._urls = urls
        return urls

    def _declared_schedules(self) -> tuple[Path, list[DeclaredSchedule]]:
        path = Path(os.environ.get(ENV_SCHEDULES_FILE, "").strip() or DEFAULT_PATH)
        try:
            return path, load(path)
        except InvalidDeclaration as error:
            raise FleetError(f"{path}: {error}") from error

    def _start_scheduler(self, urls: QueueUrls, schedules: tuple[Path, list[DeclaredSchedule]]) -> None:
        """Create the declared schedules in the emulator, as terraform apply does, then play Scheduler."""
        session = self._session()
        scheduler = session.client("scheduler", endpoint_url=self.endpoint)
        sqs = session.client("sqs", endpoint_url=self.endpoint)
        path, declared = schedules
        arns = {
            url: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            for url in (urls.trigger, urls.trigger_dlq)
        }
        wiring = scheduler_api.Wiring.for_queues(
            self.names, queue_arn=arns[urls.trigger], dlq_arn=arns[urls.trigger_dlq]
        )
        scheduler_api.ensure_group(scheduler, wiring.group)
        for schedule in declared:
            scheduler_api.create_declared(scheduler, schedule, wiring)
        self._scheduler = SchedulerPlayer(scheduler=scheduler, sqs=sqs, group=wiring.group, say=_say).start()
        _say(f"playing EventBridge Scheduler for group {wiring.group}: {len(declared)} schedule(s) from {path}")
        for name, state, due in self._scheduler.next_fire_times():
            when = due.strftime("%Y-%m-%dT%H:%M:%SZ") if due is not None else "never"
            _say(f"  schedule {name}: {state}, next fire {when if state == 'ENABLED' else '(paused)'}")

    def _start_workers(self, urls: QueueUrls) -> None:
        base = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
            **self._client_env(),
            "AWS_ENDPOINT_URL": self._worker_endpoint(),
            "PYTHONUNBUFFERED": "1",
            ENV_TRIGGER_QUEUE_URL: urls.trigger,
            ENV_TRIGGER_DLQ_URL: urls.trigger_dlq,
            ENV_BACKGROUND_QUEUE_URL: urls.background,
            ENV_BACKGROUND_DLQ_URL: urls.background_dlq,
            ENV_JOB_LOG_GROUP: self.names.background_job_log_group,
            # A person at a terminal expects Ctrl-C to stop the fleet at once: the SIGTERMed workers wait
            # out their current long poll and their grace period, so locally both are short (on ECS: 20 s
            # and 25 s). The supervisor's own deadline is computed from the same settings.
            ENV_RECEIVE_WAIT_SECONDS: str(self.settings.receive_wait_seconds),
            ENV_SHUTDOWN_GRACE_SECONDS: str(self.settings.shutdown_grace_seconds),
        }
        # As tf/ecs.tf: only background_job is told the ledger; main_job writes nothing to it.
        only = {
            MAIN_JOB_SERVICE: {},
            BACKGROUND_JOB_SERVICE: {
                ENV_JOB_LEDGER_TABLE: os.environ.get(ENV_JOB_LEDGER_TABLE, self.names.job_ledger_table)
            },
        }
        base.pop(ENV_JOB_LEDGER_TABLE, None)
        counts = {MAIN_JOB_SERVICE: 1, BACKGROUND_JOB_SERVICE: self._background_workers}
        for service, count in counts.items():
            for instance in range(1, count + 1):
                heartbeat = self._state_dir / f"{service}-{instance}.heartbeat"
                worker = Worker(service, instance, {**base, **only[service], ENV_HEARTBEAT_FILE: str(heartbeat)})
                self._workers.append(worker)
                self._spawn(worker)

    def _spawn(self, worker: Worker) -> None:
        worker.process = subprocess.Popen(  # noqa: S603 - the container entry point, as ECS runs it
            [sys.executable, "-m", SERVICES[worker.service]],
            env=dict(worker.env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,  # the fleet forwards signals itself, in order
            preexec_fn=child_preexec(os.getpid()),  # noqa: PLW1509 - only prctl/getppid: dies with the fleet
        )
        worker.started_at = time.monotonic()
        group = (
            self.names.main_job_log_group if worker.service == MAIN_JOB_SERVICE else self.names.background_job_log_group
        )
        stream = f"{worker.service}/{worker.service}/{worker.instance}-{worker.process.pid}"
        assert self._shipper is not None  # noqa: S101 - provisioned before workers start
        assert worker.process.stdout is not None  # noqa: S101
        worker.pumps.append(self._shipper.follow(worker.process.stdout, group=group, stream=stream, label=worker.label))
        _say(f"started {worker.label} (pid {worker.process.pid})")

    def _announce(self, urls: QueueUrls) -> None:
        jobs_group = self.names.background_job_log_group
        today = time.strftime("%Y-%m-%d", time.gmtime())
        aws = f"aws --endpoint-url {self.endpoint} --region {REGION}"  # any AWS CLI v2 on PATH
        trigger = json.dumps({"trigger": "api_call", "data": {"userId": "test123", "action": "process_data"}})
        lines = [
            "",
            "The fleet is running. In another terminal (the emulator takes any credentials):",
            "  export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local",
            "",
            "Send a trigger:",
            f"  {aws} sqs send-message --queue-url {urls.trigger} --message-body '{trigger}'",
            "",
            "Follow each service's logs:",
            f"  {aws} logs tail {self.names.main_job_log_group} --follow",
            f"  {aws} logs tail {self.names.background_job_log_group} --follow",
            "",
            "Follow today's job streams, or one job's (main-job's trigger.received line names it):",
            f"  {aws} logs tail {jobs_group} --log-stream-name-prefix job-streams/{today}/ --follow",
            f"  {aws} logs tail {jobs_group} --log-stream-names job-streams/{today}/<jobId> --follow",
            f"  {aws} logs tail {jobs_group} --filter-pattern '{{ $.message = \"job.succeeded\" }}'",
            "",
            "Or use the operator CLI (same emulator, same names):",
            f"  export AWS_ENDPOINT_URL={self.endpoint} AWS_REGION={REGION} FLEET_ENVIRONMENT={self.environment}",
            "  .venv/bin/fleet status",
            "  .venv/bin/fleet send --trigger api_call --wait 30",
            "  .venv/bin/fleet job <jobId> --follow",
            "  .venv/bin/fleet job --message-id <the MessageId send-message printed>",
            "  .venv/bin/fleet schedules",
            "  .venv/bin/fleet send --trigger api_call --in 20m",
            "",
            "Stop with Ctrl-C.",
            "",
        ]
        print("\n".join(lines), flush=True)
        ready = {
            "event": "fleet.ready",
            "endpoint": self.endpoint,
            "worker_endpoint": self._worker_endpoint(),
            "queues": dataclasses.asdict(urls),
        }
        print(json.dumps(ready), flush=True)

    # --- supervision --------------------------------------------------------------------------------
    def _supervise(self) -> None:
        reported: dict[str, tuple[int, int]] = {}
        while not self._stopping.wait(0.5):
            if self._emulator is not None and self._emulator.poll() is not None:
                raise FleetError("moto server exited unexpectedly")
            for worker in self._workers:
                self._check(worker)
            reported = self._report_task_counts(reported)

    def _task_report_paths(self) -> set[Path]:
        """Found by `fleet top` through either endpoint the CLI may point at: the emulator or the proxy."""
        return {task_counts.report_path(self.names, url) for url in (self.endpoint, self._worker_endpoint())}

    def _report_task_counts(self, reported: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
        """Running and desired workers per service, for `fleet top` (what ECS reports on AWS)."""
        counts = {
            service: (
                sum(1 for w in self._workers if w.service == service and w.process and w.process.poll() is None),
                sum(1 for w in self._workers if w.service == service),
            )
            for service in SERVICES
        }
        if counts != reported:
            for path in self._task_report_paths():
                task_counts.write(path, counts)
        return counts

    def _check(self, worker: Worker) -> None:
        now = time.monotonic()
        if worker.process is not None and worker.process.poll() is None:
            return
        if worker.process is not None:
            code = worker.process.returncode
            uptime = now - worker.started_at
            worker.restarts = 0 if uptime > 60 else worker.restarts + 1
            delay = min(_MAX_RESTART_DELAY, 2.0 ** max(0, worker.restarts - 1)) if worker.restarts else 0.0
            worker.not_before = now + delay
            _say(f"{worker.label} exited with status {code} after {uptime:.0f}s; restarting in {delay:.0f}s")
            worker.process = None
        if now >= worker.not_before:
            self._spawn(worker)

    # --- shutdown -------------------------------------------------------------------------------------
    def _stop(self) -> None:
        self._stopping.set()
        if self._scheduler is not None:
            self._scheduler.stop()
        self._stop_workers()
        if self._shipper is not None:
            self._shipper.stop()
        if self._proxy is not None:
            _say(f"AWS calls through the proxy: {json.dumps(self._proxy.state.snapshot())}")
            self._proxy.stop()
        left = self._still_queued()
        if self._emulator is not None and self._emulator.poll() is None:
            stop_emulator(self._emulator)
        shutil.rmtree(self._state_dir, ignore_errors=True)
        for path in self._task_report_paths():
            task_counts.remove(path)
        if self._emulator is not None:  # a start that failed before it has its one error line only
            _say(
                "fleet stopped. The emulator kept everything in memory: its queues, DLQs, job ledger and logs "
                f"are gone{left}, and the next start begins empty"
            )

    def _still_queued(self) -> str:
        """What the stop throws away, counted before the emulator goes: ``" (2 triggers, ...)"`` or ``""``.

        Found by a probe: a restart silently dropped 7 of 240 accepted triggers (issue 32, item 9b).
        """
        if self._urls is None or self._emulator is None or self._emulator.poll() is not None:
            return ""
        sqs = self._session().client(
            "sqs", endpoint_url=self.endpoint, config=Config(retries={"total_max_attempts": 1}, read_timeout=2)
        )
        counts = []
        for label, url in (
            ("triggers", self._urls.trigger),
            ("background jobs", self._urls.background),
            ("trigger DLQ messages", self._urls.trigger_dlq),
            ("background DLQ messages", self._urls.background_dlq),
        ):
            try:
                found = sqs.get_queue_attributes(
                    QueueUrl=url,
                    AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
                )["Attributes"]
            except (BotoCoreError, ClientError):
                return ""
            counts.append(f"{sum(int(value) for value in found.values())} {label}")
        return f" (with {', '.join(counts)} still queued)"

    def _stop_workers(self) -> None:
        """SIGTERM every worker, wait out their grace period, then kill what is left (as ECS does)."""
        running = [w.process for w in self._workers if w.process is not None and w.process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        # A worker notices the signal at once (its long poll returns within the receive wait at most),
        # then gives running jobs the grace period; after that ECS (and this supervisor) kills.
        settings = self.settings
        budget = max(settings.shutdown_grace_seconds, settings.receive_wait_seconds) + KILL_AFTER_GRACE_SECONDS
        if running:
            _say(f"waiting for {len(running)} worker(s) to finish or release their jobs (killed after {budget:g}s)")
        deadline = time.monotonic() + budget
        for process in running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _say(f"pid {process.pid} did not stop within its grace period: killing it")
                process.kill()
                process.wait()
        for worker in self._workers:
            for pump in worker.pumps:
                pump.join(timeout=5)


def _with_local_defaults(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment with the local fleet's short long poll and grace period, unless set explicitly."""
    return {
        ENV_RECEIVE_WAIT_SECONDS: str(LOCAL_RECEIVE_WAIT_SECONDS),
        ENV_SHUTDOWN_GRACE_SECONDS: str(LOCAL_SHUTDOWN_GRACE_SECONDS),
        **environ,
    }


def _with_placeholder_urls(environ: Mapping[str, str]) -> dict[str, str]:
    """Worker settings (timeouts, retries) from the environment; URLs are known only after provisioning."""
    placeholder = "http://provisioned-later"
    return {
        ENV_TRIGGER_QUEUE_URL: placeholder,
        ENV_TRIGGER_DLQ_URL: placeholder,
        ENV_BACKGROUND_QUEUE_URL: placeholder,
        **environ,
    }


def _say(text: str) -> None:
    print(f"[fleet] {text}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./deploy.sh local", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=int(os.environ.get("FLEET_LOCAL_PORT", DEFAULT_PORT)))
    parser.add_argument("--environment", default=os.environ.get("FLEET_ENVIRONMENT", "local"))
    parser.add_argument("--background-workers", type=int, default=1, help="background_job processes (default 1)")
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="hide the workers' JSON log and metric lines; keep the fleet's own lines and one short line per "
        "worker start, stop, warning and error (everything still goes to the log groups)",
    )
    parser.add_argument("--proxy", action="store_true", help="route worker AWS calls through a counting proxy")
    parser.add_argument(
        "--fault-rate",
        type=float,
        default=0.0,
        help="inject throttles, 503s and resets into this share of worker calls",
    )
    args = parser.parse_args(argv)
    fleet = LocalFleet(
        port=args.port,
        environment=args.environment,
        background_workers=args.background_workers,
        echo=not args.quiet,
        proxy=args.proxy,
        fault_rate=args.fault_rate,
    )
    signal.signal(signal.SIGTERM, fleet.request_stop)
    signal.signal(signal.SIGINT, fleet.request_stop)
    try:
        return fleet.run()
    except FleetError as error:
        _say(f"error: {error}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
