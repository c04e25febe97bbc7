"""Benchmarks for the fleet (issue 7): ``python -m bench [--quick]``.

Every figure is a ratio measured side by side in one run against one local emulator, never an
absolute claim: these machines are shared and noisy. See docs/performance.md for how to read them.
"""
