"""Operator tools that read a deployed fleet: queue depths, task counts."""
