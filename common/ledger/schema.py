"""The job ledger's contract: table, index and attribute names, and the job states.

One DynamoDB item per job ID in ``<prefix>-jobs``. Terraform (``tf/dynamodb.tf``), the local fleet's
emulator provisioning, the workers' ledger client (``common/ledger/client.py``) and the operator CLI all take
their names from here, so a test can check that they agree.

States and who writes them::

    queued     background_job, a claim given back unstarted (released at shutdown or from a stale
               receive-ahead buffer). main_job writes nothing: a job has no item until its first claim
               (or ``fleet cancel``), which sets ``queuedAt``/``queuedDay`` from the job ID's ULID time
    running    background_job, by a conditional claim before the job runs (attempt, worker, lease)
    succeeded  background_job, before the message is deleted (finishedAt, durationMs, result)
    retrying   background_job, an attempt failed and the job will be retried (lastError, attempt)
    dead       background_job, quarantined or handed to the DLQ on its last attempt (deadReason): the
               job's final failure, the only state ``fleet jobs --failed`` lists
    cancelled  an operator (``fleet cancel``: cancelRequestedAt, cancelledBy, cancelReason), or
               background_job when a job stopped on the request (raised JobCancelled)

One vocabulary everywhere: the ledger, the CLI's reading of the logs when the ledger is off, and the CLI
(issue 34). ``retrying`` was written ``failed`` before; :data:`LEGACY_RETRYING` reads such items (they
expire with the table's TTL) as ``retrying``, never as a final failure.

A claim succeeds when the item does not exist or is not ``succeeded``, is not cancelled (neither
``cancelled`` nor carrying ``cancelRequestedAt``), and is not ``running`` under a lease that is still
live. Timestamps are UTC ISO-8601 with milliseconds and a ``Z`` (``2026-12-02T17:05:00.123Z``), so
they sort as strings; the lease is epoch milliseconds, so conditions can compare it as a number.

Two global secondary indexes list jobs without a Scan, each written as rarely as a listing allows
(issue 28: an index write is billed like a table write, and a change of an index key costs two):

- ``by-day`` (hash ``queuedDay``, range ``jobId``, KEYS_ONLY): every job, by the UTC day of its job ID's
  ULID time. The write that creates the item sets ``queuedDay`` (``if_not_exists``) and nothing changes
  it, so a job enters the index once and later updates (which touch no projected attribute) write
  nothing to it. A ULID sorts by time, so "jobs queued since T" is a range on ``jobId``.
- ``failures`` (hash ``failedDay``, range ``jobId``, KEYS_ONLY), sparse: only the write that makes a
  job ``dead`` sets ``failedDay`` (the UTC day it died), so a success never enters it.

Both project keys only: the listing attributes come from BatchGetItem on the table, so neither index
ever carries ``result`` (up to 32 KiB) and its cost does not grow with it. The day strings come from
:mod:`common.ledger.days`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    RETRYING = "retrying"
    DEAD = "dead"
    CANCELLED = "cancelled"


#: What ``retrying`` was written as before issue 34; readers map it to RETRYING.
LEGACY_RETRYING: Final = "failed"


#: The table is ``<prefix>-jobs`` (common.names.FleetNames.job_ledger_table).
JOB_LEDGER_TABLE_SUFFIX: Final = "jobs"
#: GSI: partition ``queuedDay``, sort ``jobId``, KEYS_ONLY: the jobs queued on a UTC day, in time order.
DAY_INDEX: Final = "by-day"
#: Sparse GSI: partition ``failedDay``, sort ``jobId``, KEYS_ONLY: the jobs that died on a UTC day.
FAILURES_INDEX: Final = "failures"

# Attribute names (the item is camelCase, like the message contract).
ATTR_JOB_ID: Final = "jobId"  # S, table hash key
ATTR_STATUS: Final = "status"  # S
ATTR_UPDATED_AT: Final = "updatedAt"  # S ISO-8601, the last write's time (in no index)
ATTR_QUEUED_DAY: Final = "queuedDay"  # S YYYY-MM-DD, by-day hash key: UTC day of the job ID's time, never changed
ATTR_FAILED_DAY: Final = "failedDay"  # S YYYY-MM-DD, failures hash key: UTC day the job became dead
ATTR_JOB_TYPE: Final = "jobType"  # S
ATTR_CORRELATION_ID: Final = "correlationId"  # S
ATTR_QUEUED_AT: Final = "queuedAt"  # S ISO-8601
ATTR_STARTED_AT: Final = "startedAt"  # S ISO-8601, start of the current/last attempt
ATTR_FINISHED_AT: Final = "finishedAt"  # S ISO-8601
ATTR_ATTEMPT: Final = "attempt"  # N, SQS ApproximateReceiveCount of the current/last attempt
ATTR_ATTEMPTS: Final = "attempts"  # N, number of claims (runs started)
ATTR_WORKER_ID: Final = "workerId"  # S, the claiming process
ATTR_MESSAGE_ID: Final = "messageId"  # S, the SQS MessageId of the claiming delivery
ATTR_LEASE_UNTIL: Final = "leaseUntilMs"  # N, epoch ms; a claim is live until then
ATTR_DURATION_MS: Final = "durationMs"  # N
ATTR_RESULT: Final = "result"  # S, the job's JSON result text (at most MAX_RESULT_BYTES)
ATTR_LAST_ERROR: Final = "lastError"  # S, at most 1000 characters
ATTR_DEAD_REASON: Final = "deadReason"  # S, at most 1000 characters
ATTR_DUPLICATES_SKIPPED: Final = "duplicatesSkipped"  # N, redeliveries skipped because it had succeeded
ATTR_EXPIRES_AT: Final = "expiresAt"  # N, epoch seconds: the table's TTL attribute
ATTR_CANCEL_REQUESTED_AT: Final = "cancelRequestedAt"  # S ISO-8601, kept whatever the job's outcome
ATTR_CANCELLED_BY: Final = "cancelledBy"  # S, who asked (user@host of the operator)
ATTR_CANCEL_REASON: Final = "cancelReason"  # S, at most 1000 characters
ATTR_PROGRESS: Final = "progress"  # N, the job's latest job.progress() value (a fraction or a count)
ATTR_PROGRESS_NOTE: Final = "progressNote"  # S, at most 200 characters
ATTR_PROGRESS_AT: Final = "progressAt"  # S ISO-8601, when the job reported it

#: A result is stored in the item; DynamoDB items are at most 400 KB, and a ledger is no blob store.
MAX_RESULT_BYTES: Final = 32 * 1024
#: Final states: a cancel request is refused once a job is in one of them.
FINAL_STATUSES: Final = (JobStatus.SUCCEEDED, JobStatus.DEAD)
#: Text attributes written from operator or job input are cut to these lengths.
MAX_REASON_CHARS: Final = 1000
MAX_PROGRESS_NOTE_CHARS: Final = 200
#: Items expire this long after their last update unless JOB_LEDGER_RETENTION_DAYS says otherwise.
DEFAULT_RETENTION_DAYS: Final = 30
