"""Each job's own CloudWatch Logs stream, ``job-streams/YYYY-MM-DD/<jobId>``, shipped off the job's thread.

Entry points: ``log.JobLog`` (one job's log) and ``breaker.OutageBreaker`` (one per process).
"""
