"""The job ledger: one DynamoDB item per job ID, so that a job's effect happens once.

Entry points: ``client.JobLedger`` (the table's writes), ``gate.LedgerGate`` (the consumer's hooks) and
``schema`` (table, index and attribute names, shared with Terraform, the local fleet and the CLI).
"""
