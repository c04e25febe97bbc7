"""State goes to S3 when `deploy.sh init FILE` is given a backend file (issue 17, item 5)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import hcl2
import pytest

from tests.deploy import conftest as deploy_fixtures
from tests.deploy.conftest import CLOUD_TOOLS, Deploy, install_fakes

#: Arguments of the S3 backend a backend file may set (Terraform's S3 backend documentation).
S3_BACKEND_FILE_KEYS = {"bucket", "key", "region", "kms_key_id", "workspace_key_prefix", "profile", "role_arn"}
#: The session fixture of tests/deploy: every system command except the cloud tools.
system_bin = deploy_fixtures.system_bin


@pytest.fixture
def deploy(tmp_path: Path, system_bin: Path) -> Deploy:
    """deploy.sh with fake terraform (and the other cloud tools) recording its calls."""
    fakes = tmp_path / "fakes"
    install_fakes(fakes, CLOUD_TOOLS)
    (fakes / "python3").symlink_to(sys.executable)
    return Deploy(fakes=fakes, system_bin=system_bin, log=tmp_path / "calls.log", env={"AWS_REGION": "eu-west-1"})


def _backend(tf_config) -> dict:
    text = tf_config.raw_text["backend.tf"]
    document = hcl2.loads(text)
    (terraform,) = document["terraform"]
    (backend,) = terraform["backend"]
    assert ["s3"] == [label.strip('"') for label in backend]
    return next(iter(backend.values()))


def test_configuration_declares_a_partial_s3_backend_with_native_locking(tf_config) -> None:
    """Without a backend block terraform ignores -backend-config and silently keeps local state."""
    body = str(_backend(tf_config))
    assert re.search(r"use_lockfile\W+(True|true)", body)
    assert re.search(r"encrypt\W+(True|true)", body)
    for argument in ("bucket", "key", "region", "dynamodb_table"):
        assert f"'{argument}'" not in body, argument


def test_init_with_the_example_backend_file_hands_it_to_terraform(tf_config, deploy: Deploy, tmp_path: Path) -> None:
    """deploy.sh init FILE runs terraform init -backend-config=FILE with a file the S3 backend accepts."""
    example = tf_config.directory / "backend.s3.tfbackend.example"
    settings = {k for k in hcl2.loads(example.read_text(encoding="utf-8")) if not k.startswith("__")}
    assert {"bucket", "key", "region"} <= settings <= S3_BACKEND_FILE_KEYS
    backend_file = tmp_path / "prod.s3.tfbackend"
    backend_file.write_text(example.read_text(encoding="utf-8"))

    result = deploy.run("init", str(backend_file))

    assert 0 == result.returncode, result.stderr
    assert [["terraform", "-chdir=tf", "init", "-input=false", f"-backend-config={backend_file}"]] == deploy.calls()
