"""Shared runtime for the message-driven worker fleet: settings, logging, job IDs, contracts, consumer."""
