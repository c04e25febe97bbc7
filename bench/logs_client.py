"""``python -m bench.logs_client``: client CPU for one job's log stream, botocore against a bare signed request.

The fleet's background worker spends most of its CPU on the two CloudWatch Logs calls each job's own
stream needs (CreateLogStream, PutLogEvents): a CPU-clock profile of a no-op run put about three
quarters of the worker's CPU under those two calls and under a tenth in the worker's own code
(docs/performance.md, "Where the CPU goes"). This probe measures that stack against the least any
Python caller must do for the same two requests: a JSON body, a SigV4 signature (botocore's signer)
and one urllib3 request on a kept-alive connection. The difference is what a thinner job-log client
would save per job; whether to build one is a product decision (issue 21), so the workers do not.

Both callers run in this process, interleaved, against one embedded emulator, each on a fresh log
group; the figures are this thread's CPU milliseconds per job (two requests), the median of ``--rounds``.
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any, Final

import boto3
import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config

from bench.client_probe import interleaved_medians, probe_emulator, probe_main
from bench.emulator import REGION

#: The Logs JSON protocol's target prefix (botocore's service model, ``targetPrefix``).
_TARGET_PREFIX: Final = "Logs_20140328"
_MESSAGE: Final = '{"event":"job.succeeded","level":"info"}'
BOTOCORE: Final = "botocore"
#: The floor botocore is compared with.
SIGNED: Final = "signed-urllib3"

Caller = Callable[[str, dict[str, Any]], object]


def botocore_caller(logs: Any) -> Caller:  # noqa: ANN401 - a boto3 Logs client
    """The job log's path: the boto3 client, one attempt per call as :mod:`common.job_log.calls` makes."""
    methods = {"CreateLogStream": logs.create_log_stream, "PutLogEvents": logs.put_log_events}
    return lambda operation, params: methods[operation](**params)


def signed_caller(endpoint: str, session: boto3.session.Session) -> Caller:
    """The floor: a SigV4-signed JSON POST on one kept-alive urllib3 connection, no client stack at all."""
    credentials = session.get_credentials()
    if credentials is None:
        raise RuntimeError("no AWS credentials in boto3's chain")
    pool = urllib3.PoolManager(maxsize=1)

    def call(operation: str, params: dict[str, Any]) -> object:
        body = json.dumps(params).encode()
        headers = {"X-Amz-Target": f"{_TARGET_PREFIX}.{operation}", "Content-Type": "application/x-amz-json-1.1"}
        request = AWSRequest(method="POST", url=f"{endpoint}/", data=body, headers=headers)
        SigV4Auth(credentials.get_frozen_credentials(), "logs", REGION).add_auth(request)
        response = pool.urlopen("POST", f"{endpoint}/", body=body, headers=dict(request.headers.items()), retries=False)
        if response.status >= 300:
            raise RuntimeError(f"{operation}: HTTP {response.status}: {response.data[:200]!r}")
        return json.loads(response.data or b"{}")

    return call


def job_cpu_ms(call: Caller, group: str, jobs: int) -> float:
    """This thread's CPU per job for ``jobs`` streams of one event each, as the job log writes them."""
    started = time.thread_time()
    for index in range(jobs):
        stream = f"job-streams/probe/{index:06d}"
        call("CreateLogStream", {"logGroupName": group, "logStreamName": stream})
        events = [{"timestamp": int(time.time() * 1000), "message": _MESSAGE}]
        call("PutLogEvents", {"logGroupName": group, "logStreamName": stream, "logEvents": events})
    return (time.thread_time() - started) / jobs * 1000


def measure(jobs: int, rounds: int) -> dict[str, float]:
    """Median CPU ms per job for each caller, interleaved round by round on one emulator."""
    with probe_emulator() as (endpoint, session):
        logs = session.client("logs", endpoint_url=endpoint, config=Config(retries={"total_max_attempts": 1}))
        groups = itertools.count()

        def on_a_fresh_group(call: Caller) -> float:
            group = f"probe-{next(groups)}"
            logs.create_log_group(logGroupName=group)
            return job_cpu_ms(call, group, jobs)

        callers = {BOTOCORE: botocore_caller(logs), SIGNED: signed_caller(endpoint, session)}
        try:
            samples = {name: partial(on_a_fresh_group, call) for name, call in callers.items()}
            return interleaved_medians(samples, rounds)
        finally:
            logs.close()


def main(argv: list[str] | None = None) -> int:
    return probe_main(
        argv,
        description=__doc__.splitlines()[0],
        prog="python -m bench.logs_client",
        measure=measure,
        floor=SIGNED,
        jobs=400,
    )


if __name__ == "__main__":
    sys.exit(main())
