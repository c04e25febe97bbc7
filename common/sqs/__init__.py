"""The SQS consumer both services run: receive, dispatch to handlers, keep visibility, settle.

Entry points: ``consumer.Consumer`` (the loop), ``dispatch.PoolDispatcher`` (the slots),
``outcome.Outcome`` (what a handler returns) and ``hooks.DeliveryHooks`` (where the job ledger plugs in).
"""
