"""moto's UpdateItem made cheaper, with the same answers: the job ledger's writes at the emulator's cost, not moto's.

Every UpdateItem (alone or inside TransactWriteItems) costs moto about 7 ms of CPU: it parses the update
expression again, deep-copies the parsed tree, and runs ten tree walks over the copy, three of which only
check the expression's shape. With the ledger on, that put the 200 ms job at 0.83 of its slot limit on a
two-core machine, because the emulator took the CPU the workers needed. Three changes, none of which
changes a result:

* **Parsed once per expression text.** The parse is a pure function of the text, and moto never changes
  the parsed tree: its validator works on a copy. A bad expression raises as before (and is not cached).
* **Copied by pickle.** The validator's copy of the tree is taken from the tree's pickled bytes instead of
  ``copy.deepcopy``: the same tree (parent links included), at a fraction of the cost.
* **Shape checks once per expression, names and key schema.** The action-count, overlapping-path and
  key-attribute checks read only the tree, the attribute names and the table's key attributes, and
  return the tree unchanged; once they have passed for that triple they pass again, so they are skipped.
  Everything that reads the item or the values (paths, ``if_not_exists``, ``+``, types) still runs.
* **Each tree walker's node table built once**: moto rebuilds it per node visited, twice.
"""

from __future__ import annotations

import functools
import pickle
import threading
from collections import deque
from typing import Any, Final

#: Distinct update expressions kept; the job ledger uses a handful.
_PARSED_EXPRESSIONS: Final = 256
#: The three processors that only check the expression's shape come first in moto's list.
_SHAPE_CHECKS: Final = 3
_checked: set[tuple[Any, ...]] = set()
_checked_lock = threading.Lock()


def install() -> None:
    """Patch moto's update-expression path in this process; idempotent."""
    from moto.dynamodb import comparisons, models, responses  # noqa: PLC0415 - imported only in the emulator
    from moto.dynamodb.parsing import ast_nodes, validators  # noqa: PLC0415

    if getattr(getattr(models, "UpdateExpressionParser"), "_fleet_cached", False):  # noqa: B009 - not exported
        return
    _cache_parse(models, responses)
    _cache_condition_lexing(comparisons.ConditionExpressionParser)
    _copy_by_pickle_and_skip_passed_checks(validators.UpdateExpressionValidator)
    _cache_processing_maps(getattr(ast_nodes, "DepthFirstTraverser"))  # noqa: B009 - not in moto's stubs


class _Parsed:
    """An expression's tree and its pickled bytes, from which every validation takes a fresh copy."""

    def __init__(self, text: str, tree: Any) -> None:  # noqa: ANN401 - moto's UpdateExpression node
        self.text = text
        self.tree = tree
        self.pickled = pickle.dumps(tree, protocol=pickle.HIGHEST_PROTOCOL)


def _cache_parse(*modules: Any) -> None:  # noqa: ANN401 - moto.dynamodb's models and responses modules
    parser = modules[0].UpdateExpressionParser

    @functools.lru_cache(maxsize=_PARSED_EXPRESSIONS)
    def parsed(expression: str) -> _Parsed:
        entry = _Parsed(expression, parser.make(expression))
        if len(_sources) >= 4 * _PARSED_EXPRESSIONS:
            _sources.clear()  # a tree not found here is validated the original way: slower, same answer
        _sources[id(entry.tree)] = entry
        return entry

    class CachedParser:
        """Stands in for ``UpdateExpressionParser`` in moto's DynamoDB models: ``make`` only is used there."""

        _fleet_cached = True

        @staticmethod
        def make(expression: str) -> Any:  # noqa: ANN401 - moto's UpdateExpression node
            return parsed(expression).tree

    for module in modules:  # the request handler parses it too, to check the names used; it only reads the tree
        module.UpdateExpressionParser = CachedParser


def _cache_condition_lexing(parser_class: Any) -> None:  # noqa: ANN401 - moto's ConditionExpressionParser
    """Split a condition expression into tokens once per text (twice per write before: handler and backend).

    The tokens depend on the text alone (names and values are resolved after); each parse gets fresh ones.
    """
    original = parser_class._lex_condition_expression
    lexed: dict[str, tuple[Any, ...]] = {}

    def _lex_condition_expression(self: Any) -> deque[Any]:  # noqa: ANN401
        tokens = lexed.get(self.condition_expression)
        if tokens is None:
            tokens = tuple(original(self))
            if len(lexed) < _PARSED_EXPRESSIONS:
                lexed[self.condition_expression] = tokens
        return deque(token._replace(children=list(token.children)) for token in tokens)

    parser_class._lex_condition_expression = _lex_condition_expression


#: Parsed trees by identity, so the validator finds the pickled bytes of the tree it was handed.
_sources: dict[int, _Parsed] = {}


def _copy_by_pickle_and_skip_passed_checks(validator_class: Any) -> None:  # noqa: ANN401 - moto's class
    original_init = validator_class.__init__
    original_processors = validator_class.get_ast_processors
    original_validate = validator_class.validate

    def __init__(  # noqa: N807, PLR0917 - moto's signature
        self: Any,  # noqa: ANN401
        expression: Any,  # noqa: ANN401
        expression_attribute_names: dict[str, str],
        expression_attribute_values: dict[str, dict[str, Any]],
        item: Any,  # noqa: ANN401
        table: Any,  # noqa: ANN401
    ) -> None:
        entry = _sources.get(id(expression))
        if entry is None or entry.tree is not expression:
            self._fleet_shape_key = None
            original_init(self, expression, expression_attribute_names, expression_attribute_values, item, table)
            return
        names = tuple(sorted((expression_attribute_names or {}).items()))
        self._fleet_shape_key = (entry.text, names, tuple(table.table_key_attrs))
        self.expression_attribute_names = expression_attribute_names
        self.expression_attribute_values = expression_attribute_values
        self.item = item
        self.table = table
        self.processors = self.get_ast_processors()
        self.node_to_validate = pickle.loads(entry.pickled)  # noqa: S301 - bytes this process pickled

    def get_ast_processors(self: Any) -> list[Any]:  # noqa: ANN401
        processors: list[Any] = original_processors(self)
        key = getattr(self, "_fleet_shape_key", None)
        if key is None:
            return processors
        with _checked_lock:
            passed = key in _checked
        return processors[_SHAPE_CHECKS:] if passed else processors

    def validate(self: Any) -> Any:  # noqa: ANN401
        result = original_validate(self)
        key = getattr(self, "_fleet_shape_key", None)
        if key is not None:  # every check passed, the shape checks among them
            with _checked_lock:
                _checked.add(key)
        return result

    validator_class.__init__ = __init__
    validator_class.get_ast_processors = get_ast_processors
    validator_class.validate = validate


def _cache_processing_maps(traverser_class: Any) -> None:  # noqa: ANN401 - moto's DepthFirstTraverser
    """``_processing_map`` is a fixed dict of bound methods per walker; build it once per walker."""

    def _map(self: Any) -> dict[Any, Any]:  # noqa: ANN401
        cached: dict[Any, Any] | None = self.__dict__.get("_fleet_map")
        if cached is None:
            cached = self._processing_map()
            self.__dict__["_fleet_map"] = cached
            self.__dict__["_fleet_types"] = tuple(cached)
        return cached

    def nodes_to_be_processed(self: Any) -> tuple[Any, ...]:  # noqa: ANN401
        _map(self)
        types: tuple[Any, ...] = self.__dict__["_fleet_types"]
        return types

    def process(self: Any, node: Any) -> Any:  # noqa: ANN401
        for class_key, processor in _map(self).items():
            if isinstance(node, class_key):
                return processor(node)
        return None

    traverser_class.nodes_to_be_processed = nodes_to_be_processed
    traverser_class.process = process
