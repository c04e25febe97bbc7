"""Schedules: the declaration Terraform and the local fleet both read, and Scheduler's expressions."""
