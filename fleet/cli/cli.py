"""``fleet``: the operator's command line for queue status, job timelines and DLQ redrive.

Each command lives in its own module; this one parses arguments, builds the AWS clients from boto3's
standard configuration, and turns every expected failure into one line on stderr and exit status 1
(2 for a usage error, 130 for Ctrl-C). Nothing here prints a traceback for an AWS or input problem.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, TextIO

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
)
from botocore.exceptions import ConnectionError as AwsConnectionError

from common.job_ids import InvalidJobId, require_job_id
from fleet.cli import (
    cancel,
    dlq,
    fleet_status,
    job_lookup,
    jobs,
    ledger,
    redrive,
    schedules,
    send,
    send_later,
    timeline,
    top,
)
from fleet.cli.clients import Clients, endpoint_description
from fleet.cli.deployment import Deployment, NoDeploymentChosen, local_endpoint
from fleet.cli.errors import OpsError, UsageError
from fleet.cli.journal import Journal, default_path
from fleet.cli.queues import resolve, resolve_dlq, source_of

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130
_FIXED_MESSAGES: Final = (
    (
        NoCredentialsError,
        "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
    ),
    (NoRegionError, "no AWS region configured: set AWS_REGION (or AWS_DEFAULT_REGION)"),
)


class Runtime:
    """What a command needs besides its arguments; tests replace ``sleep`` and the streams."""

    def __init__(self, *, out: TextIO, err: TextIO, sleep: Callable[[float], None]) -> None:
        self.out = out
        self.err = err
        self.sleep = sleep
        self._clients: Clients | None = None

    @property
    def clients(self) -> Clients:
        if self._clients is None:
            self._clients = Clients.from_environment()
        return self._clients


def main(
    argv: Sequence[str] | None = None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    runtime = Runtime(out=out or sys.stdout, err=err or sys.stderr, sleep=sleep)
    args = parser().parse_args(argv)
    try:
        deployment = Deployment.from_env(project=args.project, environment=args.environment)
    except NoDeploymentChosen as error:
        runtime.err.write(f"fleet: {error}\n")
        return EXIT_USAGE
    try:
        return int(args.command(args, deployment, runtime))
    except KeyboardInterrupt:
        runtime.err.write("fleet: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`fleet jobs | head`): nothing to report, and nothing more to write.
        if runtime.out is sys.stdout:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except Exception as error:  # noqa: BLE001 - the boundary: every failure becomes one readable line
        runtime.err.write(f"fleet: {describe(error)}\n")
        return EXIT_USAGE if isinstance(error, UsageError) else EXIT_ERROR


def describe(error: Exception) -> str:
    """One line an operator can act on."""
    if isinstance(error, OpsError | InvalidJobId):
        return str(error)
    for kind, text in _FIXED_MESSAGES:
        if isinstance(error, kind):
            return text
    if isinstance(error, AwsConnectionError):
        return unreachable()
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code, message = details.get("Code", "?"), details.get("Message", "")
        return f"{error.operation_name} failed: {code}: {message}".rstrip()
    return str(error) if isinstance(error, BotoCoreError) else f"unexpected {type(error).__name__}: {error}"


def unreachable() -> str:
    """Where the calls went and the likely fix: start the emulator, or point the CLI at it."""
    if os.environ.get("AWS_ENDPOINT_URL", "").strip():
        return f"cannot reach {endpoint_description()}: is the local emulator running (./deploy.sh local)?"
    return (
        f"cannot reach {endpoint_description()}: check the network, "
        f"or for the local fleet set AWS_ENDPOINT_URL={local_endpoint()}"
    )


def cmd_status(args: argparse.Namespace, deployment: Deployment, runtime: Runtime) -> int:
    emulator = bool(os.environ.get("AWS_ENDPOINT_URL", "").strip())  # the local fleet: no ECS to ask
    report = fleet_status.collect(runtime.clients, deployment, now=datetime.now(UTC), emulator=emulator)
    runtime.out.write(fleet_status.to_json(report) if args.json else fleet_status.render(report))
    return EXIT_OK


def cmd_send(args: argparse.Namespace, deployment: Deployment, runtime: Runtime) -> int:
    if args.file is not None:
        body = sys.stdin.read() if args.file == "-" else _read_file(args.file)
    elif args.trigger is not None:
        body = send.trigger_from_flags(
            trigger=args.trigger,
            job_type=args.job_type,
            correlation_id=args.correlation_id,
            data=args.data,
            background_job=not args.no_background_job,
            now=datetime.now(UTC),
        )
    else:
        raise UsageError("give --trigger NAME, or --file PATH (or --file - for stdin)")
    send.validate(body)
    if send_later.wanted(args):
        return send_later.cmd(args, body, deployment, runtime)
    queue = resolve(runtime.clients.sqs, deployment.names, args.queue)
    sent = send.send(runtime.clients.sqs, queue.url, body)
    runtime.out.write(f"MessageId  {sent.message_id}\n")
    if args.wait <= 0:
        runtime.out.write(_job_id_pending(sent.message_id))
        return EXIT_OK
    found = job_lookup.wait_for_job_id(
        lambda: job_lookup.find_job_id(runtime.clients.logs, deployment.names, sent.message_id, sent.window),
        timeout_seconds=args.wait,
        poll_seconds=2.0,
        sleep=runtime.sleep,
        clock=time.monotonic,
    )
    if found is None:
        runtime.out.write(_job_id_pending(sent.message_id))
        runtime.err.write(f"fleet: main_job did not pick the trigger up within {args.wait:g}s\n")
        return EXIT_ERROR
    runtime.out.write(f"jobId      {found[0]}  (from the {found[1]})\n")
    return EXIT_OK


def _job_id_pending(message_id: str) -> str:
    return (
        "jobId      not known yet: main_job derives it from the MessageId and the SentTimestamp SQS\n"
        "           assigns, which SendMessage does not return. It will end in "
        f"...{job_lookup.job_id_suffix(message_id)}\n"
        "           (use --wait SECONDS to look it up once main_job has it, or: fleet jobs --since 5m)\n"
    )


def _ledger(deployment: Deployment, runtime: Runtime) -> ledger.Ledger:
    return ledger.Ledger(runtime.clients.dynamodb, ledger.table_name(deployment.names, os.environ))


def _ledger_job(job_id: str, deployment: Deployment, runtime: Runtime) -> ledger.LedgerJob | None:
    """The ledger's item for the job; None (after a one-line note) when the ledger cannot say."""
    try:
        return _ledger(deployment, runtime).get(job_id)
    except ledger.LedgerUnavailable as note:
        runtime.err.write(f"fleet: note: {note}\n")
        return None


def _job_id_of(args: argparse.Namespace, deployment: Deployment, runtime: Runtime) -> str:
    """JOB_ID as given, or the jobId main_job derived for ``--message-id`` (what send-message printed)."""
    if (args.job_id is None) == (args.message_id is None):
        raise UsageError("give a JOB_ID or --message-id MESSAGE_ID (the MessageId `aws sqs send-message` printed)")
    if args.job_id is not None:
        return require_job_id(args.job_id.strip().upper())
    message_id = args.message_id.strip()
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    since_ms = int(jobs.parse_since(args.since).total_seconds() * 1000)
    window = job_lookup.SendWindow(before_ms=now_ms - since_ms, after_ms=now_ms)
    found = job_lookup.find_job_id(runtime.clients.logs, deployment.names, message_id, window)
    if found is None:
        raise OpsError(
            f"no job for MessageId {message_id} in the last {args.since} "
            f"(searched {deployment.names.main_job_log_group} and the job streams; --since widens it)"
        )
    job_id, where = found
    runtime.err.write(f"fleet: note: MessageId {message_id} is job {job_id} (from the {where})\n")
    return job_id


def cmd_job(args: argparse.Namespace, deployment: Deployment, runtime: Runtime) -> int:
    job_id = _job_id_of(args, deployment, runtime)
    logs = runtime.clients.logs
    if args.follow:
        summary = timeline.follow(
            logs,
            deployment.names,
            job_id,
            write=runtime.out.write,
            note=lambda text: runtime.err.write(f"fleet: note: {text}\n"),
            sleep=runtime.sleep,
            poll_seconds=args.poll,
            first_event_timeout=args.wait,
            progress=lambda: _progress_of(job_id, deployment, runtime),
        )
        if summary is None:
            raise OpsError(
                f"no events for job {job_id} after {args.wait:g}s: check the ID "
                "(or look it up with --message-id, from the MessageId that send-message printed)"
            )
        runtime.out.write("\n" + timeline.render_summary(summary))
        return EXIT_OK if summary.status == "succeeded" else EXIT_ERROR
    recorded = _ledger_job(job_id, deployment, runtime)
    found = timeline.read(logs, deployment.names, job_id)
    if recorded is None and not found.events:
        raise OpsError(
            f"no events for job {job_id} in {deployment.names.main_job_log_group} "
            f"or {deployment.names.background_job_log_group}"
        )
    if args.json:
        document = {
            "job_id": job_id,
            "status": found.summary.status,
            "attempts": found.summary.attempts,
            "job_type": found.summary.job_type,
            "duration_ms": found.summary.duration_ms,
            "ledger": recorded.view() if recorded else None,
            "events": [
                {
                    "at": event.at.isoformat(),
                    "source": event.source,
                    "event": event.name,
                    "fields": dict(event.fields),
                }
                for event in found.events
            ],
        }
        if recorded:
            document.update(status=recorded.status, attempts=recorded.attempts, duration_ms=recorded.duration_ms)
        runtime.out.write(json.dumps(document, indent=2) + "\n")
        return EXIT_OK
    header = jobs.render_ledger_job(recorded) if recorded else timeline.render_summary(found.summary)
    runtime.out.write(header + "\n")
    for event in found.events:
        runtime.out.write(timeline.render_event(event))
    return EXIT_OK


def _progress_of(job_id: str, deployment: Deployment, runtime: Runtime) -> str | None:
    """The job's latest progress from the ledger (one GetItem per poll), None without a report or a ledger."""
    try:
        recorded = _ledger(deployment, runtime).get(job_id)
    except ledger.LedgerUnavailable:
        return None
    return recorded.progress_text() if recorded and recorded.progress is not None else None


def cmd_jobs(args: argparse.Namespace, deployment: Deployment, runtime: Runtime) -> int:
    now = datetime.now(UTC)
    since = now - jobs.parse_since(args.since)
    statuses = _statuses(args)
    reader = _ledger(deployment, runtime)
    try:
        if args.failed and not args.status:  # died since, from the sparse failures index
            listing = reader.failed_since(since, now=now)
        else:  # queued since, from by-day; the state is filtered from the items
            listing = reader.queued_since(since, now=now, statuses=statuses)
    except ledger.LedgerUnavailable as note:
        runtime.err.write(f"fleet: note: {note}\n")
    else:
        runtime.out.write(jobs.ledger_to_json(listing.jobs) if args.json else jobs.render_ledger(listing.jobs))
        runtime.err.write(listing.cost_note() + "\n")
        return EXIT_OK
    found = jobs.recent_jobs(runtime.clients.logs, deployment.names.background_job_log_group, since=since, now=now)
    found = [summary for summary in found if summary.status in statuses]
    runtime.out.write(jobs.to_json(found) if args.json else jobs.render(found))
    return EXIT_OK


def _statuses(args: argparse.Namespace) -> tuple[str, ...]:
    if args.status:
        if args.status not in ledger.ALL_STATUSES:
            raise UsageError(f"--status {args.status!r}: expected one of {', '.join(ledger.ALL_STATUSES)}")
        return (args.status,)
    return ledger.FAILED_STATUSES if args.failed else ledger.ALL_STATUSES


def cmd_cancel(args: argparse.Namespace, deployment: Deployment, runtime: Runtime) -> int:
    job_id = require_job_id(args.job_id.strip().upper())
    table = ledger.table_name(deployment.names, os.environ)
    report = cancel.cancel(
        runtime.clients.dynamodb, table, job_id, reason=args.reason, by=cancel.operator_identity(), environ=os.environ
    )
    (runtime.out if report.ok else runtime.err).write(cancel.render(report))
    return EXIT_OK if report.ok else EXIT_ERROR


def cmd_top(args: argparse.Namespace, deployment: Deployment, runtime: Runtime) -> int:
    return top.run(
        runtime.clients,
        deployment,
        ledger_table=ledger.table_name(deployment.names, os.environ),
        out=runtime.out,
        interval=args.interval,
        once=args.once,
    )


def cmd_dlq_peek(args: argparse.Namespace, deployment: Deployment, runtime: Runtime) -> int:
    queue = resolve_dlq(runtime.clients.sqs, deployment.names, args.queue)
    filters = [dlq.parse_filter(text) for text in args.filter]
    messages = dlq.peek(runtime.clients.sqs, queue.url, limit=args.max, filters=filters)
    runtime.out.write(dlq.to_json(messages) if args.json else dlq.render(messages))
    note = dlq.more_note(runtime.clients.sqs, queue.url, shown=len(messages), filtered=bool(filters))
    if note:
        runtime.err.write(f"fleet: note: {note}\n")  # stderr: --json output stays one JSON document
    return EXIT_OK


def cmd_redrive(args: argparse.Namespace, deployment: Deployment, runtime: Runtime) -> int:
    sqs = runtime.clients.sqs
    source = resolve_dlq(sqs, deployment.names, args.queue)
    target = source_of(sqs, deployment.names, source)
    options = redrive.RedriveOptions(
        limit=args.max,
        loop_limit=args.loop_limit,
        force=args.force,
        dry_run=args.dry_run,
        filters=[dlq.parse_filter(text) for text in args.filter],
    )
    run = redrive.Redrive(
        sqs=sqs,
        dlq=source,
        target=target,
        journal=Journal(Path(args.journal) if args.journal else default_path()),
        options=options,
        progress=lambda report: runtime.err.write(redrive.progress_line(report)),
        progress_every=args.progress_every,
    )
    report = run.run()
    runtime.out.write(redrive.render(report, dlq=source, target=target))
    return EXIT_OK if report.ok else EXIT_ERROR


def _read_file(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise OpsError(f"cannot read {path}: {error.strerror}") from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _add_cancel_and_top(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    stop = commands.add_parser("cancel", help="cancel a job: it never runs, or a running one is told to stop")
    stop.add_argument("job_id", metavar="JOB_ID")
    stop.add_argument("--reason", default="", help="why, stored in the ledger and shown by fleet job")
    stop.set_defaults(command=cmd_cancel)

    live = commands.add_parser("top", help="a live view of queues, recent jobs and tasks (Ctrl-C to quit)")
    live.add_argument("--interval", type=float, default=2.0, metavar="SECONDS", help="refresh every (default: 2)")
    live.add_argument("--once", action="store_true", help="print one snapshot and exit (the default off a terminal)")
    live.set_defaults(command=cmd_top)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="fleet", description="Operate the message-driven worker fleet.")
    root.add_argument("--project", help="project name (default: $FLEET_PROJECT_NAME or message-driven-microservices)")
    root.add_argument(
        "--environment",
        help="environment (default: $FLEET_ENVIRONMENT, else local with AWS_ENDPOINT_URL; never guessed for AWS)",
    )
    commands = root.add_subparsers(title="commands", required=True, metavar="COMMAND")

    status = commands.add_parser("status", help="depths of the four queues, DLQs highlighted; ECS task counts")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(command=cmd_status)

    sender = commands.add_parser("send", help="validate and send a trigger; print its MessageId and jobId")
    sender.add_argument("--queue", default="triggers", help="queue alias, name or URL (default: triggers)")
    sender.add_argument("--trigger", help="trigger name")
    sender.add_argument("--job-type", help="jobType (default: main-job-processing)")
    sender.add_argument("--correlation-id", help="correlationId")
    sender.add_argument("--data", help="data, a JSON object")
    sender.add_argument("--no-background-job", action="store_true", help="triggerBackgroundJob: false")
    sender.add_argument("--file", help="a whole trigger as JSON from this file, or - for stdin")
    sender.add_argument("--wait", type=float, default=0, metavar="SECONDS", help="wait this long for the jobId")
    send_later.add_arguments(sender)
    sender.set_defaults(command=cmd_send)

    schedules.register(commands)

    _add_job_commands(commands)
    _add_cancel_and_top(commands)
    _add_dlq_commands(commands)
    return root


def _add_job_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``job`` and ``jobs``: one job's timeline, and recent jobs."""
    job = commands.add_parser("job", help="the timeline and status of one job")
    job.add_argument("job_id", metavar="JOB_ID", nargs="?", help="the job's ID (or give --message-id)")
    job.add_argument("--message-id", help="find the job by the trigger's MessageId (what send-message printed)")
    job.add_argument("--since", default="1h", help="with --message-id: how far back to look (default: 1h)")
    job.add_argument("--follow", action="store_true", help="keep tailing until the job ends")
    job.add_argument(
        "--wait",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="with --follow: how long to wait for a job with no events yet before giving up (default: 60)",
    )
    job.add_argument("--poll", type=float, default=5.0, metavar="SECONDS", help="poll interval for --follow")
    job.add_argument("--json", action="store_true", help="machine-readable output")
    job.set_defaults(command=cmd_job)

    listing = commands.add_parser("jobs", help="recent jobs, from the job ledger (else the job streams)")
    listing.add_argument(
        "--since", default="1h", help="jobs queued since (with --failed: died since), e.g. 30m, 1h, 2d (default: 1h)"
    )
    listing.add_argument(
        "--failed", action="store_true", help="only final failures (dead) that died in the window; retrying may succeed"
    )
    listing.add_argument(
        "--status", help="only jobs in this state: queued, running, retrying, succeeded, dead, cancelled"
    )
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(command=cmd_jobs)


def _add_dlq_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``dlq peek`` and ``redrive``: read the dead-letter queues, and move messages back."""
    dead = commands.add_parser("dlq", help="dead-letter queues")
    dead_commands = dead.add_subparsers(title="dlq commands", required=True, metavar="COMMAND")
    peek = dead_commands.add_parser("peek", help="show DLQ messages without consuming them")
    peek.add_argument("queue", metavar="QUEUE", help="triggers, background, or a DLQ name or URL")
    peek.add_argument("--max", type=_positive, default=10, help="at most this many messages (default: 10)")
    peek.add_argument("--filter", action="append", default=[], help="NAME=VALUE or NAME~TEXT (repeatable)")
    peek.add_argument("--json", action="store_true", help="machine-readable output")
    peek.set_defaults(command=cmd_dlq_peek)

    back = commands.add_parser("redrive", help="move DLQ messages back to their source queue")
    back.add_argument("queue", metavar="QUEUE", help="triggers, background, or a DLQ name or URL")
    back.add_argument("--max", type=_positive, default=1000, help="move at most this many (default: 1000)")
    back.add_argument("--dry-run", action="store_true", help="report what would move; change nothing")
    back.add_argument("--filter", action="append", default=[], help="NAME=VALUE or NAME~TEXT (repeatable)")
    back.add_argument("--force", action="store_true", help="also redrive quarantined (malformed) messages")
    back.add_argument(
        "--loop-limit",
        type=_positive,
        default=redrive.DEFAULT_LOOP_LIMIT,
        help=f"leave messages redriven this many times (default: {redrive.DEFAULT_LOOP_LIMIT})",
    )
    back.add_argument("--journal", help=f"redrive journal file (default: {default_path()})")
    back.add_argument("--progress-every", type=_positive, default=100, help=argparse.SUPPRESS)
    back.set_defaults(command=cmd_redrive)


if __name__ == "__main__":
    sys.exit(main())
