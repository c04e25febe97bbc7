"""The DynamoDB cost model, pinned to the rules and examples of DynamoDB's developer guide and pricing page."""

from __future__ import annotations

from bench.dynamodb_cost import (
    DynamoDbBill,
    Index,
    ItemWrite,
    TableSchema,
    batch_get_read_units,
    cost_of_write,
    item_size,
    query_read_units,
    read_units,
    write_units,
)

KB = 1024
BY_STATUS = Index("by-status", ("status", "updatedAt"), ("jobId",), "ALL")
BY_DAY = Index("by-day", ("queuedDay", "jobId"), ("jobId",), "KEYS_ONLY")
FAILURES = Index("failures", ("failedDay", "jobId"), ("jobId",), "KEYS_ONLY")
OLD_LEDGER = TableSchema("jobs", ("jobId",), (BY_STATUS,))
NEW_LEDGER = TableSchema("jobs", ("jobId",), (BY_DAY, FAILURES))


def _s(text: str) -> dict[str, str]:
    return {"S": text}


def _padded(name: str, total_bytes: int) -> dict[str, dict[str, str]]:
    """An item of exactly ``total_bytes``: one string attribute ``name`` filled up."""
    return {name: _s("x" * (total_bytes - len(name)))}


def test_a_string_attribute_is_its_name_plus_its_utf8_bytes() -> None:
    """Item sizes: a string is (UTF-8 bytes of the name) + (UTF-8 bytes of the value); é is 2 bytes."""
    assert 4 + 5 == item_size({"name": _s("Alice")})
    assert 4 + 7 == item_size({"name": _s("Zoé é")})


def test_a_number_is_one_byte_per_two_significant_digits_plus_one() -> None:
    """Item sizes: leading and trailing zeroes are trimmed; 123.45 has 5 significant digits -> 3 + 1 bytes."""
    assert 5 + 4 == item_size({"price": {"N": "123.45"}})
    assert 5 + 2 == item_size({"price": {"N": "1000"}})
    assert 5 + 2 == item_size({"price": {"N": "0.001"}})


def test_null_and_boolean_are_one_byte_and_binary_its_raw_bytes() -> None:
    """Item sizes: null and Boolean 1 byte; a binary value counts its raw (base64-decoded) bytes."""
    assert (1 + 1) + (1 + 1) + (1 + 3) == item_size({"a": {"NULL": True}, "b": {"BOOL": False}, "c": {"B": "AQID"}})


def test_a_map_or_list_costs_three_bytes_plus_one_per_element() -> None:
    """Item sizes: List or Map is 3 bytes of overhead, plus its elements, plus 1 byte per element."""
    assert 1 + 3 == item_size({"m": {"M": {}}})
    assert 1 + 3 + (1 + 1) + (1 + 2) == item_size({"l": {"L": [_s("x"), {"N": "42"}]}})
    assert 1 + 3 + (1 + 1 + 1) == item_size({"m": {"M": {"k": _s("v")}}})


def test_a_write_costs_one_unit_per_kilobyte_rounded_up() -> None:
    """Pricing page: a standard write request unit writes an item up to 1 KB; 1.5 KB takes 2."""
    assert 1 == write_units(1)
    assert 1 == write_units(KB)
    assert 2 == write_units(KB + 512)
    assert 1 == write_units(0)  # a write never costs less than one unit


def test_a_transactional_write_costs_twice_as_much() -> None:
    """Transactions: two underlying writes per item (prepare and commit); a 3 KB item costs 6 units."""
    assert 2 == write_units(500, transactional=True)
    assert 6 == write_units(3 * KB, transactional=True)


def test_reads_cost_one_unit_per_4_kb_and_half_when_eventually_consistent() -> None:
    """Pricing page: a strongly consistent 8 KB read is 2 units, an eventually consistent one 1."""
    assert 2.0 == read_units(8 * KB)
    assert 1.0 == read_units(8 * KB, consistent=False)
    assert 0.5 == read_units(100, consistent=False)


def test_batch_get_rounds_each_item_and_query_rounds_the_sum() -> None:
    """BatchGetItem reading 1.5 KB and 6.5 KB items counts 12 KB (4 + 8); a Query of the same counts 8 KB."""
    items = [_padded("a", 1536), _padded("b", 6656)]
    assert 3.0 == batch_get_read_units(items, consistent=True)
    assert 2.0 == query_read_units(items, consistent=True)


def test_an_update_bills_the_larger_of_the_item_before_and_after() -> None:
    """UpdateItem consumes units for the larger of the before and after images: shrinking 2 KB to 0.5 KB is 2."""
    before, after = _padded("result", 2 * KB), _padded("result", 500)
    assert (
        2 == cost_of_write(ItemWrite("jobs", "UpdateItem", before, after), TableSchema("jobs", ("jobId",))).table_units
    )


def test_a_refused_conditional_write_still_costs_the_existing_item() -> None:
    """A failed conditional write consumes units for the existing item (at least 1) and writes no index."""
    existing = {"jobId": _s("j1"), "status": _s("running"), "updatedAt": _s("t1")}
    refused = ItemWrite("jobs", "UpdateItem", existing, existing, applied=False)
    assert (1, {}) == (
        cost_of_write(refused, OLD_LEDGER).table_units,
        dict(cost_of_write(refused, OLD_LEDGER).index_units),
    )


def test_an_item_entering_an_index_is_one_put() -> None:
    """GSI writes: a new item that defines the index keys takes one write to put it into the index."""
    item = {"jobId": _s("j1"), "status": _s("queued"), "updatedAt": _s("t1")}
    assert {"by-status": 1} == cost_of_write(ItemWrite("jobs", "UpdateItem", None, item), OLD_LEDGER).index_units


def test_an_index_key_change_is_a_delete_plus_a_put() -> None:
    """GSI writes: changing an indexed key attribute (A to B) takes two writes, a delete and a put."""
    before = {"jobId": _s("j1"), "status": _s("queued"), "updatedAt": _s("t1")}
    after = {"jobId": _s("j1"), "status": _s("running"), "updatedAt": _s("t2")}
    assert {"by-status": 2} == cost_of_write(ItemWrite("jobs", "UpdateItem", before, after), OLD_LEDGER).index_units


def test_a_projected_non_key_change_is_one_write_and_an_unprojected_one_none() -> None:
    """GSI writes: a change to a projected non-key attribute is one write; KEYS_ONLY projects none of them."""
    before = {"jobId": _s("j1"), "status": _s("running"), "updatedAt": _s("t1"), "leaseUntilMs": {"N": "1"}}
    after = {**before, "leaseUntilMs": {"N": "2"}}
    write = ItemWrite("jobs", "UpdateItem", before, after)
    assert {"by-status": 1} == cost_of_write(write, OLD_LEDGER).index_units
    keyed = {**before, "queuedDay": _s("2026-12-04")}
    assert (
        0
        == cost_of_write(
            ItemWrite("jobs", "UpdateItem", keyed, {**keyed, "leaseUntilMs": {"N": "2"}}), NEW_LEDGER
        ).index_units["by-day"]
    )


def test_a_sparse_index_costs_nothing_for_an_item_without_its_key() -> None:
    """GSI writes: an item in the index neither before nor after the write costs the index nothing."""
    before = {"jobId": _s("j1"), "queuedDay": _s("2026-12-04"), "status": _s("running")}
    after = {**before, "status": _s("succeeded")}
    assert 0 == cost_of_write(ItemWrite("jobs", "UpdateItem", before, after), NEW_LEDGER).index_units["failures"]


def test_an_index_entry_is_billed_by_its_projected_size_not_the_items() -> None:
    """A 30 KB result costs an ALL-projected index 30 units per put, and a KEYS_ONLY index still one."""
    item = {
        "jobId": _s("j1"),
        "status": _s("queued"),
        "updatedAt": _s("t1"),
        "queuedDay": _s("2026-12-04"),
        **_padded("result", 30 * KB),
    }
    write = ItemWrite("jobs", "UpdateItem", None, item)
    assert 31 == cost_of_write(write, OLD_LEDGER).index_units["by-status"]
    assert 1 == cost_of_write(write, NEW_LEDGER).index_units["by-day"]


def test_the_old_ledger_costs_eleven_units_per_job_and_the_agreed_design_three() -> None:
    """Issue 28's count: 3 transactional updates (6) + by-status 1 + 2 + 2 = 11; the new design: 3 + by-day 1 = 4."""
    queued = {"jobId": _s("j1"), "status": _s("queued"), "updatedAt": _s("t1")}
    running = {**queued, "status": _s("running"), "updatedAt": _s("t2"), "leaseUntilMs": {"N": "99"}}
    done = {**running, "status": _s("succeeded"), "updatedAt": _s("t3")}
    old = DynamoDbBill()
    for before, after in ((None, queued), (queued, running), (running, done)):
        old.add(ItemWrite("jobs", "Update", before, after, transactional=True), OLD_LEDGER)
    assert (6, 5) == (old.total_table_units, old.total_index_units)

    new = DynamoDbBill()
    day = {"queuedDay": _s("2026-12-04")}
    for before, after in (
        (None, {**queued, **day}),
        ({**queued, **day}, {**running, **day}),
        ({**running, **day}, {**done, **day}),
    ):
        new.add(ItemWrite("jobs", "UpdateItem", before, after), NEW_LEDGER)
    assert (3, {"by-day": 1, "failures": 0}) == (new.total_table_units, new.index_units)


def test_the_schema_comes_from_describe_table() -> None:
    """DescribeTable's key schema and GSIs (keys, projection type, included attributes) are read as is."""
    schema = TableSchema.from_describe_table(
        {
            "TableName": "jobs",
            "KeySchema": [{"AttributeName": "jobId", "KeyType": "HASH"}],
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": "by-day",
                    "KeySchema": [
                        {"AttributeName": "queuedDay", "KeyType": "HASH"},
                        {"AttributeName": "jobId", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                }
            ],
        }
    )
    assert NEW_LEDGER.indexes[:1] == schema.indexes
