"""The default job type: what the original project's background job did with a trigger's data."""

from __future__ import annotations

from typing import Final

from background_job.api import JobContext

JOB_TYPE: Final = "main-job-processing"


def run(job: JobContext) -> dict[str, object]:
    data = job.data
    job.log.info("job.step", step="validate_input", trigger=job.trigger.get("trigger"), data_keys=sorted(data))
    # Business logic goes here. The original pipeline recorded who asked for what; keep that contract.
    job.log.info("job.step", step="process", user_id=data.get("userId"), action=data.get("action"))
    # The result lands in the job ledger, so `fleet job <id>` answers "what did it do" in one lookup.
    return {"userId": data.get("userId"), "action": data.get("action"), "processed": True}
