"""deploy.sh local and test on a fresh checkout with only python3: the venv is made and kept up to date.

A copy of deploy.sh and pyproject.toml runs with a fake python3 whose venv holds fake tools, so these
tests check what deploy.sh runs, in which order, without installing anything. None of aws, docker,
terraform or git is on PATH.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .conftest import DEPLOY, REPO, Deploy, install_fakes

MAKE_VENV = ["python3", "-m", "venv", ".venv"]
#: `local` installs what runs (the runtime and the operator tools), never the dev tools or bench peers.
PIP_INSTALL = ["python", "-m", "pip", "install", "-c", "constraints.txt", "-e", ".", "-e", "./fleet"]
#: `test` adds the dev tools and the bench peers, under the same constraints (the images' SDK).
PIP_INSTALL_DEVELOP = ["python", "-m", "pip", "install", "-c", "constraints.txt", "-e", ".[dev,bench]", "-e", "./fleet"]
#: checkov, with its own boto3 pin, in a venv of its own.
CHECKOV_VENV = [["python3", "-m", "venv", ".venv-checkov"], ["python", "-m", "pip", "install", "checkov>=3.2,<4"]]
#: What a fresh checkout's `test` runs before its checks: the venv with the develop layer, then checkov's.
TEST_SETUP = [MAKE_VENV, PIP_INSTALL_DEVELOP, *CHECKOV_VENV]
CHECKS = [
    ["ruff", "check", "."],
    ["mypy"],
    ["shellcheck", "deploy.sh", ".ci/run", ".ci/images-test"],
    ["hadolint", "--failure-threshold", "warning", "Dockerfile.main", "Dockerfile.background"],
]


@pytest.fixture
def checkout(tmp_path: Path, system_bin: Path) -> Deploy:
    """A fresh checkout (deploy.sh and both pyproject.toml files, no .venv) with a fake python3 on PATH."""
    root = tmp_path / "checkout"
    root.mkdir()
    shutil.copy(DEPLOY, root / "deploy.sh")
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    shutil.copy(REPO / "constraints.txt", root / "constraints.txt")
    (root / "fleet").mkdir()
    shutil.copy(REPO / "fleet" / "pyproject.toml", root / "fleet" / "pyproject.toml")
    fakes = tmp_path / "fakes"
    install_fakes(fakes, ("python3",))
    return Deploy(fakes=fakes, system_bin=system_bin, log=tmp_path / "calls.log", script=root / "deploy.sh")


def test_local_on_a_fresh_checkout_creates_the_venv_installs_and_runs_the_fleet(checkout: Deploy):
    """local creates .venv, installs the package with dev extras, then runs the fleet with the args."""
    result = checkout.run("local", "--triggers", "3")

    assert result.returncode == 0, result.stderr
    assert checkout.calls() == [
        MAKE_VENV,
        PIP_INSTALL,
        ["python", "-m", "fleet.local.fleet", "--triggers", "3"],
    ]


@pytest.mark.parametrize("edited", ["pyproject.toml", "fleet/pyproject.toml", "constraints.txt"])
def test_local_installs_again_only_when_a_pyproject_changes(checkout: Deploy, edited: str):
    """A second run skips pip; editing either pyproject.toml or the SDK pins makes the next run install again."""
    checkout.run("local")
    checkout.log.unlink()

    checkout.run("local")
    unchanged = checkout.calls()
    checkout.log.unlink()
    pyproject = checkout.script.parent / edited
    pyproject.write_text(pyproject.read_text() + "\n# a new dependency\n")
    checkout.run("local")

    assert unchanged == [["python", "-m", "fleet.local.fleet"]]
    assert checkout.calls() == [PIP_INSTALL, ["python", "-m", "fleet.local.fleet"]]


def test_test_runs_ruff_mypy_shellcheck_hadolint_then_pytest_with_its_args(checkout: Deploy):
    """test runs every check in order, then pytest with the arguments given."""
    result = checkout.run("test", "-k", "consumer", "-x")

    assert result.returncode == 0, result.stderr
    assert checkout.calls() == [*TEST_SETUP, *CHECKS, ["python", "-m", "pytest", "-k", "consumer", "-x"]]


def test_local_after_test_installs_nothing_more(checkout: Deploy):
    """The develop layer includes what runs: a later `local` starts the fleet at once."""
    checkout.run("test")
    checkout.log.unlink()

    result = checkout.run("local")

    assert result.returncode == 0, result.stderr
    assert [["python", "-m", "fleet.local.fleet"]] == checkout.calls()


def test_test_after_local_adds_the_develop_layer_and_checkov(checkout: Deploy):
    """`test` after `local` installs the dev tools and peers (same constraints) and checkov's own venv."""
    checkout.run("local")
    checkout.log.unlink()

    checkout.run("test")

    assert [PIP_INSTALL_DEVELOP, *CHECKOV_VENV] == checkout.calls()[:3]


@pytest.mark.parametrize("failing", ["ruff", "mypy", "shellcheck", "hadolint"])
def test_test_stops_at_the_first_failing_check(checkout: Deploy, failing: str):
    """A failing check fails the run with its status and nothing after it runs."""
    result = checkout.run("test", env={f"FAKE_EXIT_{failing.upper()}": "3"})

    ran = [call[0] for call in checkout.calls()[4:]]
    assert result.returncode == 3
    assert f"{failing} failed" in result.stderr
    assert ran[-1] == failing
    assert "python" not in ran


TF_FMT = ["terraform", "fmt", "-check", "-diff", "-recursive", "tf"]


def test_test_checks_terraform_formatting_after_mypy_when_terraform_is_installed(checkout: Deploy):
    """With terraform on PATH, test runs terraform fmt -check on tf/ between mypy and shellcheck."""
    install_fakes(checkout.fakes, ("terraform",))

    result = checkout.run("test")

    assert result.returncode == 0, result.stderr
    assert [*CHECKS[:2], TF_FMT, *CHECKS[2:]] == checkout.calls()[len(TEST_SETUP) : -1]


def test_test_stops_when_tf_is_not_formatted(checkout: Deploy):
    """terraform fmt -check exits 3 on an unformatted file: the run fails with it before pytest."""
    install_fakes(checkout.fakes, ("terraform",))

    result = checkout.run("test", env={"FAKE_FAIL": "terraform fmt"})

    assert 1 == result.returncode
    assert "terraform fmt failed" in result.stderr
    assert "python" not in [call[0] for call in checkout.calls()[len(TEST_SETUP) :]]


def test_test_without_terraform_says_the_format_check_is_skipped_and_runs_the_rest(checkout: Deploy):
    """terraform is optional for test: its absence is one clear line, and every other check still runs."""
    result = checkout.run("test")

    assert 0 == result.returncode, result.stderr
    assert "terraform fmt: skipped, terraform is not on PATH" in result.stderr
    assert [*TEST_SETUP, *CHECKS, ["python", "-m", "pytest"]] == checkout.calls()


def test_test_fails_when_pytest_collects_no_tests(checkout: Deploy):
    """pytest's exit 5 (no tests collected) is the exit status of deploy.sh test."""
    result = checkout.run("test", "-k", "nothing-matches", env={"FAKE_EXIT_PYTEST": "5"})

    assert result.returncode == 5
    assert "pytest failed" in result.stderr


def test_local_without_python3_names_it(checkout: Deploy):
    """On a machine with no python3 and no .venv, local says python3 is missing."""
    result = checkout.without("python3").run("local")

    assert result.returncode != 0
    assert "python3" in result.stderr
