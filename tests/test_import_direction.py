"""Imports only go down: the operator's tools over the services, the services over the runtime.

``common/`` is the runtime both images carry, so it may import neither a service nor anything above the
services (the tools, the benchmarks, the tests); the services may import ``common`` but never the tools,
which the images do not carry. Read from the source with ``ast``, so a lazy import inside a function
counts as much as one at the top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ABOVE_THE_RUNTIME = ("fleet", "main_job", "background_job", "bench", "tests")
ABOVE_THE_SERVICES = ("fleet", "bench", "tests")
SERVICES = ("main_job", "background_job")


def imported_modules(path: Path) -> set[str]:
    """Every absolute module name ``path`` imports, at any depth of its code."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def forbidden_imports(package: str, forbidden: tuple[str, ...]) -> list[str]:
    """``module -> imported`` for each import under ``package`` of a top-level package in ``forbidden``."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in sorted(imported_modules(path)):
            if name.split(".")[0] in forbidden:
                found.append(f"{path.relative_to(ROOT)} -> {name}")
    return found


def test_the_runtime_imports_no_service_tool_bench_or_test():
    """Nothing under common/ reaches up: the images carry common/ without what lies above it."""
    assert [] == forbidden_imports("common", ABOVE_THE_RUNTIME)


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_imports_no_tool_bench_or_test(service: str):
    """A service imports common/ and itself, never the operator's tools, which its image does not carry."""
    assert [] == forbidden_imports(service, ABOVE_THE_SERVICES)


def test_the_runtime_packages_hold_no_operator_tools():
    """The operator's tools live in fleet/, not inside the runtime package the images copy whole."""
    assert [] == [path.name for path in (ROOT / "common").iterdir() if path.name in {"ops", "local", "cli"}]


def test_the_check_sees_an_import_inside_a_function(tmp_path: Path):
    """A lazy import counts: the walk reaches a function body and a relative import is not a package name."""
    module = tmp_path / "lazy.py"
    module.write_text("from . import sibling\n\ndef later():\n    import fleet.local.emulator\n")

    assert {"fleet.local.emulator"} == imported_modules(module)
