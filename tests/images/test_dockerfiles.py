"""Static checks of Dockerfile.main, Dockerfile.background and .dockerignore (no Docker engine here)."""

from __future__ import annotations

import re
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HADOLINT = REPO / ".venv" / "bin" / "hadolint"
IMAGES = {"Dockerfile.main": "main_job", "Dockerfile.background": "background_job"}


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped."""
    text = (REPO / dockerfile).read_text()
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    pairs = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def final_stage(dockerfile: str) -> list[tuple[str, str]]:
    """The instructions of the last stage, from its FROM on."""
    pairs = instructions(dockerfile)
    last_from = max(index for index, (keyword, _) in enumerate(pairs) if keyword == "FROM")
    return pairs[last_from:]


def copy_sources(dockerfile: str) -> list[str]:
    """Sources of every COPY that reads the build context (not --from another stage)."""
    sources = []
    for keyword, rest in instructions(dockerfile):
        words = shlex.split(rest)
        if keyword == "COPY" and not any(word.startswith("--from") for word in words):
            sources += [word for word in words if not word.startswith("--")][:-1]
    return sources


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            out, index = out + "(?:.*/)?", index + 3
        elif pattern.startswith("**", index):
            out, index = out + ".*", index + 2
        elif pattern[index] == "*":
            out, index = out + "[^/]*", index + 1
        elif pattern[index] == "?":
            out, index = out + "[^/]", index + 1
        elif pattern[index] == "[":
            end = pattern.index("]", index)
            out, index = out + pattern[index : end + 1], end + 1
        else:
            out, index = out + re.escape(pattern[index]), index + 1
    return re.compile(out)


def ignored(path: str) -> bool:
    """Whether Docker leaves ``path`` out of the build context (last matching .dockerignore line wins)."""
    lines = (REPO / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    parts = path.split("/")
    prefixes = ["/".join(parts[: count + 1]) for count in range(len(parts))]
    result = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = _pattern_regex(pattern.lstrip("!").strip("/"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            result = not negated
    return result


@pytest.mark.parametrize("dockerfile", sorted(IMAGES))
def test_every_copied_path_exists_and_is_in_the_build_context(dockerfile):
    """Each COPY source exists in the repository and .dockerignore lets it into the context."""
    sources = copy_sources(dockerfile)

    assert {"pyproject.toml", "common", IMAGES[dockerfile]} <= set(sources)
    for source in sources:
        assert (REPO / source).exists(), source
        assert not ignored(source), source


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        "tests/common/test_settings.py",
        "tf/terraform.tfstate",
        "tf/terraform.tfstate.backup",
        "tf/.terraform/providers/x",
        ".git/HEAD",
        "common/__pycache__/settings.cpython-311.pyc",
        ".mypy_cache/3.11/x.json",
        ".pytest_cache/v/cache/lastfailed",
        ".fleet-local/state.json",
        "fleet/cli/cli.py",
        "fleet/local/emulator.py",
        "fleet/pyproject.toml",
        "bench/peers/run.py",
    ],
)
def test_dockerignore_keeps_venv_tests_state_and_caches_out(path):
    """The venv, tests, operator tools, benchmarks, Terraform state, git history and caches stay out of the context."""
    assert ignored(path)


@pytest.mark.parametrize("path", ["pyproject.toml", "README.md", "common/settings.py", "background_job/jobs/x.py"])
def test_dockerignore_lets_the_package_sources_in(path):
    """What the wheel build needs is in the build context."""
    assert not ignored(path)


@pytest.mark.parametrize("dockerfile", sorted(IMAGES))
def test_hadolint_reports_nothing_at_warning_or_above(dockerfile):
    """hadolint passes with failure threshold warning."""
    result = subprocess.run(
        [str(HADOLINT), "--failure-threshold", "warning", dockerfile],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def _global_args(dockerfile: str) -> dict[str, str]:
    """ARGs declared before the first FROM (the only ones a FROM line can use), with their defaults."""
    pairs = instructions(dockerfile)
    first_from = next(index for index, (keyword, _) in enumerate(pairs) if keyword == "FROM")
    return dict(rest.split("=", 1) for keyword, rest in pairs[:first_from] if keyword == "ARG")


@pytest.mark.parametrize("dockerfile", sorted(IMAGES))
def test_both_stages_use_a_pinned_slim_python_311_base(dockerfile):
    """Every FROM names an exact python 3.11.x slim tag, never latest or a floating minor."""
    args = _global_args(dockerfile)
    bases = [rest.split()[0] for keyword, rest in instructions(dockerfile) if keyword == "FROM"]
    resolved = [re.sub(r"\$\{(\w+)\}", lambda match: args[match.group(1)], base) for base in bases]

    assert len(resolved) == 2
    for base in resolved:
        assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base), base


@pytest.mark.parametrize("dockerfile", sorted(IMAGES))
def test_both_stages_take_their_base_from_one_arg(dockerfile):
    """The runtime venv runs the build stage's interpreter: two literal tags could drift apart."""
    args = _global_args(dockerfile)
    bases = [rest.split()[0] for keyword, rest in instructions(dockerfile) if keyword == "FROM"]

    assert ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"] == bases
    assert ["PYTHON_IMAGE"] == list(args)


def test_both_images_are_built_from_the_same_base():
    """main-job and background-job share the base, so one stand-in or one scan covers both."""
    assert 1 == len({_global_args(dockerfile)["PYTHON_IMAGE"] for dockerfile in IMAGES})


@pytest.mark.parametrize("dockerfile", sorted(IMAGES))
def test_no_syntax_directive_and_no_buildx_needed(dockerfile):
    """A `# syntax=` line makes every BuildKit build fetch a frontend from Docker Hub; buildx is not in Debian."""
    text = (REPO / dockerfile).read_text()

    assert not re.search(r"^#\s*syntax\s*=", text, re.IGNORECASE | re.MULTILINE)
    assert "docker buildx" not in text
    assert not any(rest.startswith("--mount") for keyword, rest in instructions(dockerfile) if keyword == "RUN")


@pytest.mark.parametrize("dockerfile", sorted(IMAGES))
def test_build_stage_makes_the_venv_without_pip_and_installs_into_it_from_outside(dockerfile):
    """pip, setuptools and pkg_resources in /opt/venv were a quarter of the image and what scans flag."""
    (build,) = [rest for keyword, rest in instructions(dockerfile) if keyword == "RUN" and "venv" in rest]

    assert "python -m venv --without-pip /opt/venv" in build
    assert "python -m pip --python /opt/venv/bin/python install --constraint constraints.txt" in build
    assert "/opt/venv/bin/python -m pip" not in build


@pytest.mark.parametrize("dockerfile", sorted(IMAGES))
def test_final_stage_keeps_the_writable_workdir_off_sys_path(dockerfile):
    """WORKDIR /tmp is writable: PYTHONSAFEPATH=1 stops `python -m` from importing what is written there."""
    stage = final_stage(dockerfile)
    env = " ".join(rest for keyword, rest in stage if keyword == "ENV")

    assert "/tmp" == dict(stage)["WORKDIR"]
    assert "PYTHONSAFEPATH=1" in env.split()


def test_the_build_backend_is_pinned_exactly():
    """The image's `pip wheel` resolves the backend at build time: `setuptools>=68` could build differently."""
    build_system = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]

    assert build_system["requires"]
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==[\w.]+", requirement) for requirement in build_system["requires"])


@pytest.mark.parametrize("dockerfile", sorted(IMAGES))
def test_final_stage_runs_the_service_as_uid_10001_with_exec_form_entrypoint(dockerfile):
    """The runtime stage is non-root, stops on SIGTERM, has a health check and no port or tools."""
    stage = final_stage(dockerfile)
    settings = dict(stage)
    env = " ".join(rest for keyword, rest in stage if keyword == "ENV")

    assert settings["USER"].split(":")[0] == "10001"
    assert settings["STOPSIGNAL"] == "SIGTERM"
    assert settings["ENTRYPOINT"] == f'["python", "-m", "{IMAGES[dockerfile]}"]'
    assert settings["HEALTHCHECK"].endswith('CMD ["python", "-m", "common.health"]')
    assert "PYTHONUNBUFFERED=1" in env
    assert "EXPOSE" not in settings
    assert not any("apt-get" in rest or "pip" in rest for keyword, rest in stage if keyword == "RUN")
    assert [rest for keyword, rest in stage if keyword == "COPY"] == ["--from=build /opt/venv /opt/venv"]


@pytest.mark.parametrize("dockerfile", sorted(IMAGES))
def test_dockerfile_says_temp_files_go_to_tmp(dockerfile):
    """The read-only root filesystem is documented: temporary files and the heartbeat live in /tmp."""
    text = (REPO / dockerfile).read_text()

    assert "read-only root filesystem" in text
    assert "HEARTBEAT_FILE=/tmp/" in text
