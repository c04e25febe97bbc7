"""The structure of HCL files: which names are blocks and which are arguments, with their lines.

python-hcl2 and checkov's bc-python-hcl2 both install the ``hcl2`` module, and bc-python-hcl2 renders
``x = {}`` and ``x {}`` identically, so the provider-schema test cannot tell a block written as an
argument from the reverse through either. This scanner reads only the structure (values are skipped
whole: strings with ``${...}`` templates, heredocs, brackets, comments), which is all that test needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_HEREDOC = re.compile(r"<<-?([A-Za-z_][A-Za-z0-9_]*)\n")
_CLOSERS = {"(": ")", "[": "]", "{": "}"}


@dataclass
class Body:
    """One block's body: its arguments and nested blocks, in order, with the line each starts on."""

    kind: str = ""
    labels: tuple[str, ...] = ()
    line: int = 0
    arguments: dict[str, int] = field(default_factory=dict)
    blocks: list[Body] = field(default_factory=list)
    repeated_arguments: list[str] = field(default_factory=list)


class HclSyntaxError(ValueError):
    """The text is not HCL this scanner understands."""


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    @property
    def line(self) -> int:
        return self.text.count("\n", 0, self.pos) + 1

    def fail(self, what: str) -> HclSyntaxError:
        return HclSyntaxError(f"line {self.line}: {what}")

    def skip_space(self, *, newlines: bool) -> None:
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char in " \t\r" or (newlines and char == "\n"):
                self.pos += 1
            elif char == "#" or self.text.startswith("//", self.pos):
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            elif self.text.startswith("/*", self.pos):
                self.pos = self.text.index("*/", self.pos) + 2
            else:
                return

    def body(self, into: Body, *, closing: str | None) -> Body:
        while True:
            self.skip_space(newlines=True)
            if self.pos >= len(self.text):
                if closing is not None:
                    raise self.fail("unclosed block")
                return into
            if self.text[self.pos] == "}":
                if closing is None:
                    raise self.fail("unexpected '}'")
                self.pos += 1
                return into
            self.item(into)

    def item(self, into: Body) -> None:
        line = self.line
        name = self.identifier()
        self.skip_space(newlines=False)
        if self.text.startswith("=", self.pos) and not self.text.startswith("==", self.pos):
            self.pos += 1
            self.expression()
            if name in into.arguments:
                into.repeated_arguments.append(name)
            into.arguments[name] = line
            return
        labels = []
        while self.pos < len(self.text) and self.text[self.pos] != "{":
            if self.text[self.pos] == '"':
                start = self.pos
                self.string()
                labels.append(self.text[start + 1 : self.pos - 1])
            else:
                labels.append(self.identifier())
            self.skip_space(newlines=False)
        self.pos += 1
        into.blocks.append(self.body(Body(kind=name, labels=tuple(labels), line=line), closing="}"))

    def identifier(self) -> str:
        match = _IDENT.match(self.text, self.pos)
        if match is None:
            raise self.fail(f"expected a name, found {self.text[self.pos : self.pos + 20]!r}")
        self.pos = match.end()
        return match.group(0)

    def string(self) -> None:
        """A quoted string, from its opening quote to past its closing one, templates included."""
        self.pos += 1
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\":
                self.pos += 2
            elif char == '"':
                self.pos += 1
                return
            elif self.text.startswith(("${", "%{"), self.pos):
                self.pos += 2
                self.until("}")
            else:
                self.pos += 1
        raise self.fail("unterminated string")

    def until(self, closer: str) -> None:
        """Skip an expression up to and past ``closer``, across newlines."""
        while self.pos < len(self.text):
            self.skip_space(newlines=True)
            char = self.text[self.pos]
            if char == closer:
                self.pos += 1
                return
            self.token()
        raise self.fail(f"missing {closer!r}")

    def token(self) -> None:
        char = self.text[self.pos]
        if char == '"':
            self.string()
        elif char in _CLOSERS:
            self.pos += 1
            self.until(_CLOSERS[char])
        elif (heredoc := _HEREDOC.match(self.text, self.pos)) is not None:
            end = re.compile(rf"^\s*{heredoc.group(1)}\s*$", re.MULTILINE).search(self.text, heredoc.end())
            if end is None:
                raise self.fail("unterminated heredoc")
            self.pos = end.end()
        else:
            self.pos += 1

    def expression(self) -> None:
        """An argument's value: up to the end of its line (or the block's '}'), outside brackets."""
        while True:
            self.skip_space(newlines=False)
            if self.pos >= len(self.text) or self.text[self.pos] in "\n}":
                return
            self.token()


def parse(text: str) -> Body:
    """The file as a root body whose blocks are its top-level blocks."""
    return _Scanner(text).body(Body(kind="file"), closing=None)
