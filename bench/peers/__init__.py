"""The peers the fleet is measured against (issues 14 and 21), each run as its own processes on the bench's moto.

Every peer consumes a queue the bench fills, runs the same two jobs (no-op, 200 ms sleep) at the same
concurrency, and records each run in the same side-effect file (:mod:`bench.peers.effects`); its AWS
requests are counted by botocore hooks inside its own processes (:mod:`bench.peers.counting`).
"""
