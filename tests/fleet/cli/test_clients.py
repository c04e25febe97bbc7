"""Tests for where the operator CLI's AWS calls go."""

from __future__ import annotations

from .conftest import REGION


def test_aws_region_alone_is_enough(fleet, monkeypatch):
    """With only AWS_REGION set (no AWS_DEFAULT_REGION), fleet commands run in that region."""
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", REGION)

    result = fleet.run("dlq", "peek", "triggers")

    assert ("", 0) == (result.err, result.code)
    assert "no messages\n" == result.out


def test_aws_region_wins_over_aws_default_region(fleet, monkeypatch):
    """AWS_REGION takes precedence over AWS_DEFAULT_REGION, as in the AWS CLI."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-north-1")
    monkeypatch.setenv("AWS_REGION", REGION)

    result = fleet.run("dlq", "peek", "triggers")

    assert ("", 0) == (result.err, result.code)
