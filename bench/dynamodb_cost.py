"""DynamoDB on-demand request units, by AWS's documented billing rules, from the items a write saw.

The model is fed one :class:`ItemWrite` per item write (the item as it was before and after, whether the
write was transactional and whether it applied), plus the table's key schema and global secondary
indexes as DescribeTable reports them. Every rule below is DynamoDB developer guide text:

* Item size ("DynamoDB item sizes and formats"): the sum of attribute names and values; a string is its
  UTF-8 bytes, a number about 1 byte per two significant digits plus 1, binary its raw bytes, null and
  Boolean 1 byte, a list or map 3 bytes plus its elements plus 1 byte per element.
* Writes ("Read/write capacity mode", "Working with items"): 1 write request unit per 1 KB, rounded up.
  UpdateItem and PutItem bill the larger of the item's size before and after; DeleteItem the deleted
  item. A failed conditional write still consumes units for the existing item (at least 1).
* Transactions ("Capacity management for transactions"): TransactWriteItems does two underlying writes
  per item (prepare and commit), so 2 units per 1 KB. A cancelled transaction is billed the same here:
  AWS does not document a discount, so the model errs on the dear side.
* Global secondary indexes ("Provisioned throughput considerations for global secondary indexes"): a put
  of the projected item when the item enters the index, a delete plus a put when an index key changes,
  a delete when it leaves, one write when only a projected non-key attribute changes, nothing when the
  item is in the index neither before nor after (sparse) or nothing projected changed. Each is billed by
  the projected item's size in 1 KB units. Index writes follow the table write; they are not doubled by
  a transaction (the guide doubles the transaction's own item writes only).
* Reads: 1 read request unit per 4 KB for a strongly consistent read, half for an eventually consistent
  one. GetItem and BatchGetItem round each item up; Query rounds the sum of the items it returned.
* TTL deletes are free ("Time to Live"), so they never appear here.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Final

#: One attribute value in DynamoDB's JSON form, e.g. ``{"S": "queued"}``; an item maps names to them.
AttributeValue = Mapping[str, Any]
Item = Mapping[str, AttributeValue]

WRITE_UNIT_BYTES: Final = 1024
READ_UNIT_BYTES: Final = 4096
_CONTAINER_OVERHEAD: Final = 3
_ELEMENT_OVERHEAD: Final = 1


def number_size(text: str) -> int:
    """1 byte per two significant digits (leading and trailing zeroes trimmed), plus 1 byte."""
    try:
        digits = Decimal(text).normalize().as_tuple().digits
    except InvalidOperation:
        digits = tuple(int(c) for c in text if c.isdigit())
    significant = "".join(str(d) for d in digits).strip("0") or "0"
    return math.ceil(len(significant) / 2) + 1


def _binary_size(content: Any) -> int:  # noqa: ANN401 - bytes from boto3, base64 text from the wire
    return len(content) if isinstance(content, bytes | bytearray) else len(base64.b64decode(str(content)))


def _list_size(content: Any) -> int:  # noqa: ANN401 - a list of attribute values
    return _CONTAINER_OVERHEAD + sum(_ELEMENT_OVERHEAD + value_size(v) for v in content)


def _map_size(content: Any) -> int:  # noqa: ANN401 - a map of names to attribute values
    return _CONTAINER_OVERHEAD + sum(_ELEMENT_OVERHEAD + len(k.encode()) + value_size(v) for k, v in content.items())


_SIZES: Final[dict[str, Callable[[Any], int]]] = {
    "S": lambda content: len(str(content).encode()),
    "N": lambda content: number_size(str(content)),
    "B": _binary_size,
    "BOOL": lambda _content: 1,
    "NULL": lambda _content: 1,
    "SS": lambda content: sum(len(str(s).encode()) for s in content),
    "NS": lambda content: sum(number_size(str(n)) for n in content),
    "BS": lambda content: sum(_binary_size(b) for b in content),
    "L": _list_size,
    "M": _map_size,
}


def value_size(value: AttributeValue) -> int:
    """The size of one attribute value, without its name."""
    (kind, content), *_ = value.items()
    try:
        size = _SIZES[kind]
    except KeyError:
        raise ValueError(f"unknown DynamoDB attribute type {kind!r}") from None
    return size(content)


def item_size(item: Item | None) -> int:
    """Bytes of an item: attribute names plus values; 0 for no item."""
    if not item:
        return 0
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def write_units(size_bytes: int, *, transactional: bool = False) -> int:
    """Write request units for one item write of ``size_bytes`` (at least 1 KB; x2 in a transaction)."""
    units = max(1, math.ceil(size_bytes / WRITE_UNIT_BYTES))
    return 2 * units if transactional else units


def read_units(size_bytes: int, *, consistent: bool = True) -> float:
    """Read request units for ``size_bytes`` read as one unit (at least 4 KB; half when eventually consistent)."""
    units = max(1, math.ceil(size_bytes / READ_UNIT_BYTES))
    return float(units) if consistent else units / 2


def batch_get_read_units(items: Iterable[Item], *, consistent: bool = False) -> float:
    """BatchGetItem (and GetItem): each item rounded up to 4 KB on its own."""
    return sum(read_units(item_size(item), consistent=consistent) for item in items)


def query_read_units(items: Iterable[Item], *, consistent: bool = False) -> float:
    """Query: the returned items' sizes summed, then rounded up to 4 KB once."""
    return read_units(sum(item_size(item) for item in items), consistent=consistent)


@dataclass(frozen=True, slots=True)
class Index:
    """A global secondary index: its key attributes, the table's key attributes and what it projects."""

    name: str
    keys: tuple[str, ...]
    table_keys: tuple[str, ...]
    projection: str = "ALL"  # ALL, KEYS_ONLY or INCLUDE
    non_key_attributes: frozenset[str] = frozenset()

    def entry(self, item: Item | None) -> dict[str, AttributeValue] | None:
        """The index's copy of ``item``; None when the item lacks an index key (a sparse index skips it)."""
        if not item or any(key not in item for key in self.keys):
            return None
        if self.projection == "ALL":
            return dict(item)
        wanted = set(self.keys) | set(self.table_keys)
        if self.projection == "INCLUDE":
            wanted |= self.non_key_attributes
        return {name: value for name, value in item.items() if name in wanted}

    def write_units(self, before: Item | None, after: Item | None) -> int:
        """Index write units for one table write that turned ``before`` into ``after``."""
        old, new = self.entry(before), self.entry(after)
        if old is None and new is None:
            return 0
        if old is None:
            return write_units(item_size(new))
        if new is None:
            return write_units(item_size(old))
        if any(old[key] != new[key] for key in self.keys):
            return write_units(item_size(old)) + write_units(item_size(new))
        return 0 if old == new else write_units(item_size(new))


@dataclass(frozen=True, slots=True)
class TableSchema:
    """What the model needs to know of a table: its name, key attributes and global secondary indexes."""

    name: str
    keys: tuple[str, ...]
    indexes: tuple[Index, ...] = ()

    @classmethod
    def from_describe_table(cls, table: Mapping[str, Any]) -> TableSchema:
        """From DescribeTable's ``Table``."""
        keys = tuple(k["AttributeName"] for k in table["KeySchema"])
        indexes = tuple(
            Index(
                name=gsi["IndexName"],
                keys=tuple(k["AttributeName"] for k in gsi["KeySchema"]),
                table_keys=keys,
                projection=gsi.get("Projection", {}).get("ProjectionType", "ALL"),
                non_key_attributes=frozenset(gsi.get("Projection", {}).get("NonKeyAttributes", ())),
            )
            for gsi in table.get("GlobalSecondaryIndexes", ())
        )
        return cls(name=table["TableName"], keys=keys, indexes=indexes)


@dataclass(frozen=True, slots=True)
class ItemWrite:
    """One item write as the table applied it (or refused it: ``applied`` False leaves the item as it was)."""

    table: str
    operation: str  # PutItem, UpdateItem, DeleteItem, or the transaction's Put/Update/Delete/ConditionCheck
    before: Item | None
    after: Item | None
    transactional: bool = False
    applied: bool = True


@dataclass(frozen=True, slots=True)
class WriteCost:
    table_units: int
    index_units: Mapping[str, int]


def cost_of_write(write: ItemWrite, schema: TableSchema) -> WriteCost:
    """Table and index write units of one item write."""
    if not write.applied or write.operation == "ConditionCheck":
        # Refused (or only checked): units for the existing item, at least 1; nothing reaches an index.
        return WriteCost(write_units(item_size(write.before), transactional=write.transactional), {})
    size = max(item_size(write.before), item_size(write.after))
    return WriteCost(
        write_units(size, transactional=write.transactional),
        {index.name: index.write_units(write.before, write.after) for index in schema.indexes},
    )


@dataclass(slots=True)
class DynamoDbBill:
    """Write units summed over many writes, by table and by index."""

    table_units: dict[str, int] = field(default_factory=dict)
    index_units: dict[str, int] = field(default_factory=dict)
    writes: int = 0
    refused: int = 0

    def add(self, write: ItemWrite, schema: TableSchema) -> None:
        cost = cost_of_write(write, schema)
        self.writes += 1
        self.refused += 0 if write.applied else 1
        self.table_units[write.table] = self.table_units.get(write.table, 0) + cost.table_units
        for name, units in cost.index_units.items():
            self.index_units[name] = self.index_units.get(name, 0) + units

    @property
    def total_table_units(self) -> int:
        return sum(self.table_units.values())

    @property
    def total_index_units(self) -> int:
        return sum(self.index_units.values())


def bill(writes: Iterable[ItemWrite], schemas: Mapping[str, TableSchema]) -> DynamoDbBill:
    """The bill of ``writes`` in order; writes to a table without a schema are skipped."""
    total = DynamoDbBill()
    for write in writes:
        schema = schemas.get(write.table)
        if schema is not None:
            total.add(write, schema)
    return total
