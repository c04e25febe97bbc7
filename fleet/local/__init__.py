"""The fleet on one machine: moto server as the AWS emulator, the real workers as child processes.

Nothing in here is imported by the workers; it plays the part of Terraform and ECS locally.
"""
