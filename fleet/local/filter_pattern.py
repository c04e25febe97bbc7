"""CloudWatch Logs filter patterns, as FilterLogEvents applies them, for the local emulator.

moto matches only single terms and returns every event for anything else; the local fleet's emulator
uses this instead, so ``aws logs tail --filter-pattern ...`` answers locally as it does on AWS. Supported
(see "Filter pattern syntax" in the CloudWatch Logs guide):

* terms: ``ERROR``, ``"exact phrase"``, all required; ``?a ?b`` any of them; ``-term`` must be absent;
* JSON: ``{ $.level = "ERROR" }``, ``{ $.x > 5 }``, ``!=``, ``<``, ``<=``, ``>=``, ``*`` wildcards in
  strings, ``IS TRUE|FALSE|NULL``, ``NOT EXISTS``, ``&&``, ``||`` and parentheses, nested selectors
  ``$.a.b`` and ``$.a[0]``.

Space-delimited patterns (``[ip, user, ...]``) are refused with a clear error rather than matched loosely.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Matcher = Callable[[str], bool]
_MISSING = object()


class FilterPatternError(ValueError):
    """The pattern is not one CloudWatch Logs (or this emulator) accepts."""


def compile_filter_pattern(pattern: str | None) -> Matcher:
    """A predicate on an event's message for ``pattern``; an empty pattern matches everything."""
    text = (pattern or "").strip()
    if not text:
        return lambda _message: True
    if text.startswith("{"):
        return _json_matcher(text)
    if text.startswith("["):
        raise FilterPatternError("space-delimited filter patterns are not supported by the local emulator")
    return _term_matcher(text)


# --- term patterns ------------------------------------------------------------------------------------
_TERM = re.compile(r'([?-]?)(?:"((?:[^"\\]|\\.)*)"|(\S+))')


def _term_matcher(text: str) -> Matcher:
    required: list[str] = []
    optional: list[str] = []
    excluded: list[str] = []
    for match in _TERM.finditer(text):
        prefix, quoted, bare = match.groups()
        term = quoted.replace('\\"', '"') if quoted is not None else bare
        {"": required, "?": optional, "-": excluded}[prefix].append(term)

    def matches(message: str) -> bool:
        return (
            all(term in message for term in required)
            and not any(term in message for term in excluded)
            and (not optional or any(term in message for term in optional))
        )

    return matches


# --- JSON patterns --------------------------------------------------------------------------------------
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<op>&&|\|\||!=|<=|>=|=|<|>|\(|\))
      | (?P<selector>\$(?:\.[A-Za-z0-9_@-]+|\[\d+\])*)
      | "(?P<string>(?:[^"\\]|\\.)*)"
      | (?P<word>[^\s()=<>!&|"]+)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str


def _tokenize(body: str) -> list[_Token]:
    tokens, position = [], 0
    body = body.rstrip()
    while position < len(body):
        match = _TOKEN.match(body, position)
        if match is None or match.end() == position:
            raise FilterPatternError(f"invalid filter pattern near {body[position:]!r}")
        kind = match.lastgroup or ""
        tokens.append(_Token(kind, match.group(kind)))
        position = match.end()
    return tokens


class _Parser:
    """Recursive descent: or := and ('||' and)*; and := atom ('&&' atom)*; atom := '(' or ')' | test."""

    def __init__(self, tokens: list[_Token]) -> None:
        self._tokens = tokens
        self._index = 0

    def parse(self) -> Callable[[Any], bool]:
        predicate = self._or()
        if self._index != len(self._tokens):
            raise FilterPatternError(f"unexpected {self._tokens[self._index].text!r} in filter pattern")
        return predicate

    def _peek(self) -> _Token | None:
        return self._tokens[self._index] if self._index < len(self._tokens) else None

    def _take(self, what: str) -> _Token:
        token = self._peek()
        if token is None:
            raise FilterPatternError(f"filter pattern ends where {what} was expected")
        self._index += 1
        return token

    def _or(self) -> Callable[[Any], bool]:
        parts = [self._and()]
        while (token := self._peek()) is not None and token.text == "||":
            self._index += 1
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else (lambda doc: any(part(doc) for part in parts))

    def _and(self) -> Callable[[Any], bool]:
        parts = [self._atom()]
        while (token := self._peek()) is not None and token.text == "&&":
            self._index += 1
            parts.append(self._atom())
        return parts[0] if len(parts) == 1 else (lambda doc: all(part(doc) for part in parts))

    def _atom(self) -> Callable[[Any], bool]:
        token = self._take("a selector")
        if token.text == "(":
            inner = self._or()
            if self._take("')'").text != ")":
                raise FilterPatternError("missing ')' in filter pattern")
            return inner
        if token.kind != "selector":
            raise FilterPatternError(f"expected a selector such as $.level, got {token.text!r}")
        return self._test(_selector_path(token.text))

    def _test(self, path: list[str | int]) -> Callable[[Any], bool]:
        operator = self._take("an operator")
        if operator.kind == "word" and operator.text.upper() in {"IS", "NOT"}:
            return self._keyword_test(path, operator.text.upper())
        if operator.kind != "op" or operator.text not in _COMPARISONS:
            raise FilterPatternError(f"expected a comparison operator, got {operator.text!r}")
        value = self._take("a value")
        if value.kind not in {"string", "word"}:
            raise FilterPatternError(f"expected a value, got {value.text!r}")
        compare = _comparison(operator.text, value)
        return lambda doc: (field := _select(doc, path)) is not _MISSING and compare(field)

    def _keyword_test(self, path: list[str | int], keyword: str) -> Callable[[Any], bool]:
        word = self._take("TRUE, FALSE, NULL or EXISTS").text.upper()
        if keyword == "NOT" and word == "EXISTS":
            return lambda doc: _select(doc, path) is _MISSING
        constants: dict[str, Any] = {"TRUE": True, "FALSE": False, "NULL": None}
        if keyword != "IS" or word not in constants:
            raise FilterPatternError(f"expected IS TRUE|FALSE|NULL or NOT EXISTS, got {keyword} {word}")
        wanted = constants[word]
        return lambda doc: (field := _select(doc, path)) is not _MISSING and field is wanted


_COMPARISONS = {"=", "!=", "<", ">", "<=", ">="}
_NUMERIC: dict[str, Callable[[float, float], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}


def _comparison(operator: str, value: _Token) -> Callable[[Any], bool]:
    number = _as_number(value.text) if value.kind == "word" else None
    if number is not None:
        numeric = _NUMERIC[operator]
        return lambda field: _is_number(field) and numeric(float(field), number)
    if operator not in {"=", "!="}:
        raise FilterPatternError(f"{operator} needs a number, got {value.text!r}")
    text = value.text.replace('\\"', '"') if value.kind == "string" else value.text
    wildcard = re.compile(".*".join(re.escape(part) for part in text.split("*")), re.DOTALL)
    equal = operator == "="
    return lambda field: isinstance(field, str) and (wildcard.fullmatch(field) is not None) == equal


def _as_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _is_number(field: object) -> bool:
    return isinstance(field, int | float) and not isinstance(field, bool)


def _selector_path(selector: str) -> list[str | int]:
    return [int(index) if index else name for name, index in re.findall(r"\.([^.\[]+)|\[(\d+)\]", selector)]


def _select(document: Any, path: list[str | int]) -> Any:  # noqa: ANN401 - any JSON value
    current = document
    for step in path:
        indexable = isinstance(step, int) and isinstance(current, list) and step < len(current)
        if indexable or (isinstance(step, str) and isinstance(current, dict) and step in current):
            current = current[step]
        else:
            return _MISSING
    return current


def _json_matcher(text: str) -> Matcher:
    if not text.endswith("}"):
        raise FilterPatternError("a JSON filter pattern must end with '}'")
    predicate = _Parser(_tokenize(text[1:-1])).parse()

    def matches(message: str) -> bool:
        try:
            document = json.loads(message)
        except ValueError:
            return False
        return predicate(document)

    return matches
