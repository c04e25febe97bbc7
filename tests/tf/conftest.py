"""Load ``tf/`` with python-hcl2 into one shape the Terraform tests query through ``tf_config``.

There is no terraform binary here, so the tests read the configuration the way checkov does. Two
incompatible packages install the ``hcl2`` module: python-hcl2 (8.x keeps string quotes and marks
blocks with ``__is_block__``) and checkov's fork bc-python-hcl2 (wraps every attribute value in a
one-element list). Whichever one ``import hcl2`` finds, :func:`load_config` normalises its output so
that attributes are plain values and blocks (and object-valued attributes) are lists of dicts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest

TF_DIR = Path(__file__).resolve().parents[2] / "tf"

_META_KEYS = frozenset({"__start_line__", "__end_line__", "__is_block__", "__comments__", "__inline_comments__"})
_SIMPLE_REF = re.compile(r"^\$\{(var|local)\.([A-Za-z_][\w-]*)((?:\.[A-Za-z_][\w-]*)*)\}$")


@dataclass(frozen=True, slots=True)
class _Dialect:
    """How the installed hcl2 package renders a file."""

    wraps_attributes: bool
    quotes_strings: bool


@cache
def _dialect() -> _Dialect:
    """Probe the installed parser once with a one-line document."""
    probe = hcl2.loads('a = "x"\n')["a"]
    wraps = isinstance(probe, list)
    value = probe[0] if wraps else probe
    return _Dialect(wraps_attributes=wraps, quotes_strings=value == '"x"')


def _unquote(text: str, dialect: _Dialect) -> str:
    if dialect.quotes_strings and len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


def _canon(value: Any, dialect: _Dialect) -> Any:
    """Return ``value`` with quotes stripped, metadata dropped and attribute wrapping removed."""
    if isinstance(value, str):
        return _unquote(value, dialect)
    if isinstance(value, Mapping):
        return {
            _unquote(str(key), dialect): _canon_attribute(item, dialect)
            for key, item in value.items()
            if key not in _META_KEYS
        }
    if isinstance(value, list):
        return [_canon(item, dialect) for item in value]
    return value


def _canon_attribute(value: Any, dialect: _Dialect) -> Any:
    """Blocks and object attributes become lists of dicts; every other attribute a plain value."""
    if isinstance(value, Mapping):
        return [_canon(value, dialect)]
    if isinstance(value, list) and value and all(isinstance(item, Mapping) for item in value):
        return [_canon(item, dialect) for item in value]
    if dialect.wraps_attributes and isinstance(value, list) and len(value) == 1:
        return _canon(value[0], dialect)
    return _canon(value, dialect)


@dataclass(frozen=True, slots=True)
class Block:
    """One labelled top-level block (resource, data, variable, output) and where it was declared."""

    kind: str
    labels: tuple[str, ...]
    body: dict[str, Any]
    file: str

    @property
    def address(self) -> str:
        return ".".join(self.labels)


@dataclass(slots=True)
class TerraformConfig:
    """Every top-level block of ``tf/``, plus the merged ``locals``."""

    blocks: list[Block] = field(default_factory=list)
    locals: dict[str, Any] = field(default_factory=dict)
    raw_text: dict[str, str] = field(default_factory=dict)

    directory: Path = TF_DIR

    @staticmethod
    def strings_in(value: Any) -> list[str]:
        """Every string anywhere inside ``value``, keys excluded."""
        return list(strings_in(value))

    def of_kind(self, kind: str) -> list[Block]:
        return [block for block in self.blocks if block.kind == kind]

    def resources(self, resource_type: str | None = None) -> list[Block]:
        return [b for b in self.of_kind("resource") if resource_type is None or b.labels[0] == resource_type]

    def resource(self, resource_type: str, name: str) -> dict[str, Any]:
        matches = [b.body for b in self.resources(resource_type) if b.labels[1] == name]
        assert len(matches) == 1, f"expected one {resource_type}.{name}, found {len(matches)}"
        return matches[0]

    def data(self, data_type: str, name: str) -> dict[str, Any]:
        matches = [b.body for b in self.of_kind("data") if b.labels == (data_type, name)]
        assert len(matches) == 1, f"expected one data.{data_type}.{name}, found {len(matches)}"
        return matches[0]

    @property
    def variables(self) -> dict[str, dict[str, Any]]:
        return {block.labels[0]: block.body for block in self.of_kind("variable")}

    @property
    def outputs(self) -> dict[str, dict[str, Any]]:
        return {block.labels[0]: block.body for block in self.of_kind("output")}

    def default(self, variable: str) -> Any:
        return self.variables[variable]["default"]

    def resolve(self, value: Any) -> Any:
        """Follow a bare ``${var.x}`` or ``${local.x}`` to its default or value, repeatedly."""
        for _ in range(10):
            if not isinstance(value, str):
                return value
            match = _SIMPLE_REF.match(value)
            if match is None:
                return value
            kind, name, path = match.groups()
            value = self.default(name) if kind == "var" else self.locals[name]
            for attribute in filter(None, path.split(".")):
                value = _single(value)[attribute]
        raise AssertionError(f"reference chain too long: {value!r}")

    def render(self, template: str) -> str:
        """Substitute every bare ``${var.x}``/``${local.x.y}`` inside a string template."""

        def substitute(match: re.Match[str]) -> str:
            return str(self.render(str(self.resolve(match.group(0)))))

        return re.sub(r"\$\{(?:var|local)\.[A-Za-z_][\w.-]*\}", substitute, template)


def _single(value: Any) -> Any:
    """An object value is canonically a one-element list of dicts; return the dict."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], Mapping):
        return value[0]
    return value


def _blocks_of(kind: str, entries: list[Any], file: str) -> Iterator[Block]:
    """Yield one Block per label path; resources and data have two labels, the rest one."""
    depth = 2 if kind in {"resource", "data"} else 1
    for entry in entries:
        yield from _walk_labels(kind, entry, (), depth, file)


def _walk_labels(kind: str, node: dict[str, Any], labels: tuple[str, ...], depth: int, file: str) -> Iterator[Block]:
    for label, child in node.items():
        body = child[0] if isinstance(child, list) else child
        if len(labels) + 1 == depth:
            yield Block(kind=kind, labels=(*labels, label), body=body, file=file)
        else:
            yield from _walk_labels(kind, body, (*labels, label), depth, file)


@cache
def load_config() -> TerraformConfig:
    """Parse every ``*.tf`` file once per test session."""
    dialect = _dialect()
    config = TerraformConfig()
    for path in sorted(TF_DIR.glob("*.tf")):
        text = path.read_text(encoding="utf-8")
        config.raw_text[path.name] = text
        document = _canon(hcl2.loads(text), dialect)
        for kind, entries in document.items():
            if kind == "locals":
                for group in entries:
                    config.locals.update(group)
            elif kind in {"resource", "data", "variable", "output", "provider"}:
                config.blocks.extend(_blocks_of(kind, entries, path.name))
    return config


@pytest.fixture(scope="session")
def tf_config() -> TerraformConfig:
    """The parsed ``tf/`` directory, shared by every Terraform test."""
    return load_config()


def strings_in(value: Any) -> Iterator[str]:
    """Every string anywhere inside ``value``, keys excluded."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)
