"""What the images run, proven without Docker: the wheel, installed as the final stage installs it.

The project wheel is built and installed with its runtime dependencies only, pinned by
constraints.txt, into a fresh venv, like the build stage does for /opt/venv. Each entrypoint then
runs from that venv, outside the source tree, against a moto server: it must log
``worker.started``, pass ``python -m common.health`` while it runs, and exit 0 on SIGTERM.
"""

from __future__ import annotations

import os
import queue
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from tests.images.test_dockerfiles import copy_sources, final_stage

REPO = Path(__file__).resolve().parents[2]
DEV_PYTHON = REPO / ".venv" / "bin" / "python"
CONSTRAINTS = REPO / "constraints.txt"
REGION = "us-east-1"
START_DEADLINE_SECONDS = 60.0
STOP_DEADLINE_SECONDS = 30.0
HEALTH_DEADLINE_SECONDS = 30.0


@dataclass(frozen=True)
class RuntimeVenv:
    """A venv holding only the project wheel and its runtime dependencies."""

    python: Path
    workdir: Path


def _run(*args: str | Path, cwd: Path | None = None, timeout: float = 600) -> str:
    result = subprocess.run(
        [str(arg) for arg in args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result.stdout


def _pip(python: Path, *args: str | Path, cwd: Path) -> str:
    """The dev venv's pip acting on the venv of ``python``, which has no pip of its own."""
    return _run(DEV_PYTHON, "-m", "pip", "--python", python, *args, cwd=cwd)


def _copy_build_context(destination: Path) -> Path:
    """What the Dockerfile's COPY instructions take from the build context, without byte-code."""
    destination.mkdir()
    for name in copy_sources("Dockerfile.background"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=shutil.ignore_patterns("__pycache__", "*.py[cod]"))
        else:
            shutil.copy2(source, destination / name)
    return destination


@pytest.fixture(scope="module")
def runtime_venv(tmp_path_factory: pytest.TempPathFactory) -> RuntimeVenv:
    """Build the wheel (pip wheel --no-deps) and install it, without extras, into a fresh venv, as the image does.

    The wheel is built from a copy of exactly what the Dockerfile copies, as the image's build stage
    does: building in the checkout would read (and leave) a stale ``build/`` directory there.
    """
    root = tmp_path_factory.mktemp("image")
    sources = _copy_build_context(root / "src")
    wheels = root / "wheels"
    _run(DEV_PYTHON, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", wheels, sources, cwd=root)
    [wheel] = wheels.glob("message_driven_fleet-*.whl")
    # As the build stage does: a venv without pip, installed into from outside with pip --python.
    _run(sys.executable, "-m", "venv", "--without-pip", root / "venv")
    python = root / "venv" / "bin" / "python"
    _pip(python, "install", "--quiet", "--constraint", CONSTRAINTS, wheel, cwd=root)
    workdir = root / "work"
    workdir.mkdir()
    return RuntimeVenv(python=python, workdir=workdir)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """A moto server on a free 127.0.0.1 port, up until the module's tests are done."""
    port = _free_port()
    server = subprocess.Popen(
        [str(DEV_PYTHON), "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):  # noqa: S310 - local http
                    break
            except OSError:
                assert server.poll() is None, "moto server exited"
                assert time.monotonic() < deadline, "moto server did not start within 30 s"
                time.sleep(0.1)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def worker_env(moto_endpoint: str, tmp_path: Path) -> dict[str, str]:
    """The environment ECS gives a task: queue URLs, log group, region, credentials; fresh queues."""
    prefix = f"image-test-{tmp_path.name[-12:].strip('_').replace('_', '-')}"
    credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=moto_endpoint, **credentials)
    logs = boto3.client("logs", region_name=REGION, endpoint_url=moto_endpoint, **credentials)
    urls = {
        name: sqs.create_queue(QueueName=f"{prefix}-{suffix}")["QueueUrl"]
        for name, suffix in (
            ("TRIGGER_QUEUE_URL", "main-job-triggers"),
            ("TRIGGER_DLQ_URL", "main-job-triggers-dlq"),
            ("BACKGROUND_QUEUE_URL", "background-jobs"),
            ("BACKGROUND_DLQ_URL", "background-jobs-dlq"),
        )
    }
    for service in ("main-job", "background-job"):
        logs.create_log_group(logGroupName=f"/ecs/{prefix}/{service}")
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        **urls,
        "JOB_LOG_GROUP": f"/ecs/{prefix}/background-job",
        "RECEIVE_WAIT_SECONDS": "1",
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }


class OutputReader:
    """Collects a process's output lines on a thread, so the test can wait for one with a deadline."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(process,), daemon=True)
        self._thread.start()

    def _pump(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, text: str, deadline_seconds: float) -> bool:
        """True once a line containing ``text`` appears; False at end of output or the deadline."""
        deadline = time.monotonic() + deadline_seconds
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                return False
            if line is None:
                return False
            self.lines.append(line)
            if text in line:
                return True
        return False

    def drain(self) -> str:
        self._thread.join(timeout=10)
        while not self._queue.empty():
            line = self._queue.get()
            if line is not None:
                self.lines.append(line)
        return "".join(self.lines)


def _health(runtime_venv: RuntimeVenv, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(runtime_venv.python), "-m", "common.health"],
        cwd=runtime_venv.workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_runtime_venv_holds_the_installed_package_and_no_dev_tools(runtime_venv: RuntimeVenv):
    """The image's packages come from the wheel, not the source tree, and dev tools are absent."""
    code = (
        "import importlib.util, main_job, background_job, common;"
        "print(main_job.__file__); print(background_job.__file__); print(common.__file__);"
        "print([m for m in ('pytest', 'moto', 'ruff', 'mypy') if importlib.util.find_spec(m)])"
    )

    out = _run(runtime_venv.python, "-c", code, cwd=runtime_venv.workdir).splitlines()

    venv = str(runtime_venv.python.parent.parent)
    assert all(path.startswith(venv) for path in out[:3]), out
    assert out[3] == "[]"


#: What only the operator's tools, the tests or the benchmarks use: the images must carry none of it.
NOT_IN_THE_IMAGE = (
    "fleet",
    "moto",
    "waitress",
    "watchtower",
    "pytest",
    "sqs_workers",
    "dramatiq",
    "dramatiq_sqs",
    "celery",
    "pyqs",
    "common.local",
    "common.ops",
)


def test_runtime_venv_holds_no_operator_tool_emulator_or_bench_peer(runtime_venv: RuntimeVenv):
    """Neither the fleet CLI nor the local fleet, its emulator (moto, waitress) or a bench peer is in the image."""
    code = (
        "import importlib.util, sys;"
        "print([m for m in sys.argv[1:] if importlib.util.find_spec(m.split('.')[0]) and importlib.util.find_spec(m)])"
    )

    found = _run(runtime_venv.python, "-c", code, *NOT_IN_THE_IMAGE, cwd=runtime_venv.workdir).strip()
    scripts = sorted(path.name for path in runtime_venv.python.parent.glob("fleet*"))

    assert "[]" == found
    assert ["fleet-background-job", "fleet-health", "fleet-main-job"] == scripts


#: Installers and build tools: nothing in the image runs them, they are about 25 of the venv's 63 MB, and
#: they are what an image scan flags.
INSTALLERS = ("pip", "setuptools", "pkg_resources", "_distutils_hack", "wheel")


def test_runtime_venv_holds_no_pip_setuptools_or_pkg_resources(runtime_venv: RuntimeVenv):
    """The venv is made --without-pip and installed into from outside, so no installer is left in it."""
    code = "import importlib.util, sys; print([m for m in sys.argv[1:] if importlib.util.find_spec(m)])"

    found = _run(runtime_venv.python, "-I", "-c", code, *INSTALLERS, cwd=runtime_venv.workdir).strip()
    scripts = sorted(
        path.name for path in runtime_venv.python.parent.iterdir() if path.name.startswith(("pip", "easy"))
    )

    assert "[]" == found
    assert [] == scripts


def _image_env(dockerfile: str) -> dict[str, str]:
    """The final stage's ENV settings (KEY=value pairs), as the container starts with them."""
    settings: dict[str, str] = {}
    for keyword, rest in final_stage(dockerfile):
        if keyword == "ENV":
            settings.update(pair.split("=", 1) for pair in shlex.split(rest))
    return settings


@pytest.mark.parametrize("dockerfile", ["Dockerfile.main", "Dockerfile.background"])
def test_a_module_written_to_the_writable_workdir_cannot_replace_the_health_check(
    runtime_venv: RuntimeVenv, tmp_path: Path, dockerfile: str
):
    """WORKDIR /tmp is writable: without PYTHONSAFEPATH a /tmp/common/health.py ran instead of the real one."""
    workdir = tmp_path / "tmp"
    (workdir / "common").mkdir(parents=True)
    (workdir / "common" / "__init__.py").write_text("")
    (workdir / "common" / "health.py").write_text("print('decoy health check')\n")
    image = _image_env(dockerfile)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HEARTBEAT_FILE": str(tmp_path / "no-heartbeat"),
        **{key: value for key, value in image.items() if key.startswith("PYTHON")},
    }

    health = subprocess.run(
        [str(runtime_venv.python), "-m", "common.health"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    path = subprocess.run(
        [str(runtime_venv.python), "-c", "import sys; print(sys.path)"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    assert "decoy" not in health.stdout + health.stderr
    assert 0 != health.returncode  # the real check: no heartbeat yet
    assert str(workdir) not in path
    assert "''" not in path


def _pins(text: str) -> set[str]:
    lines = (line.split("#")[0].strip().lower() for line in text.splitlines())
    return {line for line in lines if line and not line.startswith("message-driven-fleet")}


def test_constraints_pin_exactly_the_runtime_dependency_set(runtime_venv: RuntimeVenv):
    """Every package the image installs is pinned, and nothing pinned is missing or stale."""
    frozen = _pip(runtime_venv.python, "freeze", cwd=runtime_venv.workdir)

    assert _pins(CONSTRAINTS.read_text()) == _pins(frozen)


@pytest.mark.parametrize("module", ["main_job", "background_job"])
@pytest.mark.parametrize("region_variables", [("AWS_REGION",), ("AWS_REGION", "AWS_DEFAULT_REGION")])
def test_entrypoint_starts_is_healthy_and_exits_0_on_sigterm(
    runtime_venv: RuntimeVenv,
    worker_env: dict[str, str],
    tmp_path: Path,
    module: str,
    region_variables: tuple[str, ...],
):
    """python -m <service> logs worker.started, passes the health check, and exits 0 on SIGTERM; AWS_REGION
    alone (what tf/ecs.tf sets; ECS adds AWS_DEFAULT_REGION only on Fargate) is enough."""
    service = module.replace("_", "-")
    env = {**worker_env, "HEARTBEAT_FILE": str(tmp_path / f"{service}.heartbeat")}
    env = {k: v for k, v in env.items() if not k.endswith("REGION") or k in region_variables}
    env["AWS_CONFIG_FILE"] = str(tmp_path / "no-config")
    before = _health(runtime_venv, env)
    process = subprocess.Popen(
        [str(runtime_venv.python), "-m", module],
        cwd=runtime_venv.workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    reader = OutputReader(process)
    try:
        started = reader.wait_for('"worker.started"', START_DEADLINE_SECONDS)
        assert started, f"no worker.started within {START_DEADLINE_SECONDS} s:\n{reader.drain()}"
        deadline = time.monotonic() + HEALTH_DEADLINE_SECONDS
        while (health := _health(runtime_venv, env)).returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert process.poll() is None, reader.drain()

        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=STOP_DEADLINE_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        output = reader.drain()
        assert process.stdout is not None
        process.stdout.close()

    assert before.returncode != 0, "health passed before any worker ran"
    assert health.returncode == 0, f"{health.stdout}{health.stderr}\n{output}"
    assert exit_code == 0, output
