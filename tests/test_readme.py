"""README.md's "Add a job type", followed to the letter in a copy of the tree.

The two code blocks of that section are applied as a newcomer applies them (the module written to the
path its first line names; the registry block's import line and REGISTRY entry put into the real
``background_job/jobs/__init__.py``); then the copy is linted, imported, tested where the registry is
read, and run on the real local fleet until ``fleet job`` says ``succeeded``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Add a job type"
_NOT_COPIED = shutil.ignore_patterns(
    ".venv*", ".git", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", "*.egg-info", ".terraform"
)
_ENTRY = re.compile(r"^\s+(\w+\.JOB_TYPE: \w+\.run,)$", re.MULTILINE)


def python_blocks(markdown: str, section: str) -> list[str]:
    """The ```python blocks of one ``## `` section, in order."""
    start = markdown.index(section)
    end = markdown.find("\n## ", start + len(section))
    body = markdown[start : end if end != -1 else len(markdown)]
    return re.findall(r"```python\n(.*?)```", body, flags=re.DOTALL)


def apply_readme_steps(tree: Path) -> str:
    """Write the README's job module and registry line into ``tree``; returns the new job type."""
    module, registry = python_blocks((ROOT / "README.md").read_text(), SECTION)
    path = module.splitlines()[0].removeprefix("# ").strip()
    (tree / path).write_text(module.split("\n", 1)[1].lstrip("\n"))
    init = tree / "background_job/jobs/__init__.py"
    [readme_import] = [line for line in registry.splitlines() if line.startswith("from background_job.jobs import")]
    [entry] = _ENTRY.findall(registry)
    text = re.sub(r"^from background_job\.jobs import .*$", readme_import, init.read_text(), flags=re.MULTILINE)
    text = re.sub(r"\n}\n", f"\n    {entry}\n}}\n", text, count=1)
    init.write_text(text)
    [job_type] = re.findall(r'^JOB_TYPE: Final = "([a-z0-9._-]+)"$', module, flags=re.MULTILINE)
    return job_type


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    copy = tmp_path_factory.mktemp("newcomer") / "repo"
    shutil.copytree(ROOT, copy, ignore=_NOT_COPIED)
    return copy, apply_readme_steps(copy)


def _run_in(tree: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """A command with the copy first on sys.path (ahead of the editable install of this worktree)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(args, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def test_the_readme_blocks_are_a_module_and_a_registry_line() -> None:
    """The section has exactly the two blocks the test applies, the module naming its path first."""
    module, registry = python_blocks((ROOT / "README.md").read_text(), SECTION)

    assert "# background_job/jobs/send_invoice.py" == module.splitlines()[0]
    assert 1 == len(_ENTRY.findall(registry))


def test_the_new_job_type_lints_clean_with_the_projects_rules(tree: tuple[Path, str]) -> None:
    """ruff, with the repository's configuration, passes on the README's module and the edited registry."""
    copy, _ = tree
    ruff = Path(sys.executable).with_name("ruff")

    result = _run_in(copy, str(ruff), "check", "background_job/jobs/send_invoice.py", "background_job/jobs/__init__.py")

    assert 0 == result.returncode, result.stdout + result.stderr


def test_the_new_job_type_is_in_the_registry_the_workers_import(tree: tuple[Path, str]) -> None:
    """Importing the edited registry (as background_job does) knows the README's job type."""
    copy, job_type = tree

    result = _run_in(copy, sys.executable, "-c", "from background_job.jobs import REGISTRY; print(*sorted(REGISTRY))")

    assert 0 == result.returncode, result.stderr
    assert "send-invoice" == job_type
    assert job_type in result.stdout.split()


def test_the_tests_that_read_the_registry_stay_green_with_the_new_type(tree: tuple[Path, str]) -> None:
    """The tests about known job types read the registry, so a new type does not break them."""
    copy, _ = tree

    result = _run_in(
        copy, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
        "tests/fleet/cli/test_send.py", "tests/background_job/test_runner.py",
    )  # fmt: skip

    assert 0 == result.returncode, result.stdout[-3000:]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def local_fleet(tree: tuple[Path, str]) -> Iterator[dict[str, str]]:
    """``./deploy.sh local`` started from the copy (after the README's restart), on a free port."""
    copy, _ = tree
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(copy), "FLEET_ENVIRONMENT": "readme", "FLEET_LOCAL_PORT": str(port)}
    process = subprocess.Popen(
        [sys.executable, "-m", "fleet.local.fleet", "--quiet"],
        cwd=copy, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    console: list[str] = []
    pump = threading.Thread(target=lambda: console.extend(iter(process.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    pump.start()

    def ready() -> bool:
        assert process.poll() is None, "".join(console)
        return any(line.startswith('{"event": "fleet.ready"') for line in list(console))

    wait_until(ready, timeout=60, what="fleet.ready")
    yield {
        **env,
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
    }
    process.send_signal(signal.SIGTERM)
    assert 0 == process.wait(timeout=60), "".join(console[-40:])
    pump.join(timeout=10)
    process.stdout.close()  # type: ignore[union-attr]


@pytest.mark.e2e
def test_the_new_job_type_succeeds_on_the_local_fleet(tree: tuple[Path, str], local_fleet: dict[str, str]) -> None:
    """The README's trigger for the new type runs it: `fleet job` shows succeeded and the returned result."""
    copy, job_type = tree
    fleet = [sys.executable, "-c", "import sys; from fleet.cli.cli import main; sys.exit(main())"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*fleet, *args], cwd=copy, env=local_fleet, capture_output=True, text=True, timeout=60, check=False
        )

    sent = run("send", "--trigger", "order_paid", "--job-type", job_type, "--data", '{"orderId":"o-1"}', "--wait", "30")
    assert 0 == sent.returncode, sent.stderr
    [job_id] = re.findall(r"^jobId\s+([0-9A-Z]{26})", sent.stdout, flags=re.MULTILINE)

    def succeeded() -> dict[str, object] | None:
        shown = run("job", job_id, "--json")
        view = json.loads(shown.stdout) if shown.returncode == 0 else {}
        return view if view.get("status") == "succeeded" else None

    view = wait_until(succeeded, timeout=60, interval=1, what=f"{job_type} job {job_id} to succeed")
    assert {"invoice": "INV-o-1"} == view["ledger"]["result"]  # type: ignore[index]
