"""Every statement the CrateDB adapter can send parses with CrateDB's grammar.

The statements are not listed here: each public method of a CrateStore runs
over every table of the schema with its ``_execute`` (the one place a
statement leaves the adapter) recording what would be sent. Together with the
DDL under etc/mappings/crate this is everything the adapter ever sends,
except the operator's own statements through ``sql()``.
"""
import pytest
from cratedb_sqlparse import sqlparse
from cratedb_sqlparse.parser import ParsingException

from timpe.store import mappings
from timpe.store.crate import CrateStore
from timpe.store.schema import TABLES


class Recording(CrateStore):
    """A CrateStore whose statements are recorded instead of sent.
    Every statement gets an empty answer: no CrateDB behaviour is imitated."""

    def __init__(self):
        super().__init__("localhost:4200")
        self.recorded = []

    def _execute(self, sql, params=(), slow=False, **counted):
        self.recorded.append((sql, list(params)))
        return [], []

    def _execute_bulk(self, sql, bulk, unsaid_lost=False):
        self.recorded.extend((sql, list(params)) for params in bulk)
        return [True] * len(bulk)


def exercise(store, tbl):
    """Call every primitive on ``tbl`` in every shape its SQL can take."""
    row = {c: 0 for c in tbl.columns}
    key = tuple(0 for _ in tbl.pk)
    others = [c for c in tbl.columns if c not in tbl.pk]
    store.insert(tbl.name, row)
    store.insert(tbl.name, {c: 0 for c in tbl.pk})
    store.get(tbl.name, key)
    store.get_many(tbl.name, [key])
    store.get_many(tbl.name, [tuple(i for _ in tbl.pk) for i in range(3)])
    store.get_many(tbl.name, [])
    store.cas(tbl.name, key, (3, 1), {others[0]: 1})
    store.cas(tbl.name, key, (3, 1), {c: 1 for c in others})
    store.update(tbl.name, key, {others[0]: 1})
    store.update(tbl.name, key, {c: 1 for c in others})
    store.scan(tbl.name)
    store.scan(tbl.name, fresh=True)
    store.scan(tbl.name, where={others[0]: 1})
    store.scan(tbl.name, where={others[0]: [1, 2, 3], tbl.pk[0]: []})
    store.scan(tbl.name, where={c: 1 for c in tbl.columns},
               order_by=[f"{c} desc" for c in tbl.columns], limit=10)
    store.scan(tbl.name, order_by=tbl.columns[0], limit=0)
    store.scan(tbl.name, where={others[0]: 1}, order_by=[f"{tbl.columns[0]} desc", tbl.pk[0]],
               after=row, limit=5)
    store.scan(tbl.name, order_by=tbl.columns[0], after=row)
    store.newest(tbl.name, key[:-1])
    store.newest(tbl.name, key[:-1], since=7)
    store.refresh(tbl.name)
    store.count_by(tbl.name, others[0])
    store.count_by(tbl.name, others[0], where={others[0]: [1, 2]}, least=tbl.columns[0],
                   fresh=True)


def adapter_statements():
    store = Recording()
    for tbl in TABLES.values():
        exercise(store, tbl)
    store.setup()
    store.serving()
    store.drop()
    return store.recorded


SENT = adapter_statements()
DDL = [stmt for _, stmt in mappings.statements("crate")]


def parse_one(statement):
    parsed = sqlparse(statement, raise_exception=True)
    assert len(parsed) == 1, f"expected one statement: {statement}"
    return parsed[0]


@pytest.mark.parametrize("statement,params", SENT, ids=[f"{n}:{s[:48]}" for n, (s, _) in enumerate(SENT)])
def test_adapter_statement_parses(statement, params):
    parse_one(statement)
    assert statement.count("?") == len(params)


@pytest.mark.parametrize("statement", DDL)
def test_mapping_ddl_parses(statement):
    assert parse_one(statement).type == "CREATE"


def test_every_kind_of_statement_was_collected():
    kinds = {parse_one(s).type for s, _ in SENT}
    assert kinds == {"INSERT", "SELECT", "UPDATE", "REFRESH", "CREATE", "DROP", "ALTER"}
    assert len({s for s, _ in SENT}) >= 10 * len(TABLES)


def test_every_table_has_a_mapping():
    assert {t for t, _ in mappings.statements("crate")} == set(TABLES)
    for tbl in TABLES.values():
        ddl = next(s for t, s in mappings.statements("crate") if t == tbl.name)
        for column in tbl.columns:
            assert column in ddl, f"{tbl.name}.{column} missing from the CrateDB mapping"
        assert "version" not in ddl  # CrateDB versions rows itself (_seq_no)


@pytest.mark.parametrize("statement", [
    'SELECT "id" FROM "users" WHERE "id" IN ()',  # why scan_sql writes FALSE
    'UPDATE "users" SET "nickname" = ? WHERE "id" = ? RETURNING',
    'INSERT INTO "users" ("id") VALUES (?',
])
def test_the_grammar_check_can_fail(statement):
    with pytest.raises(ParsingException):
        parse_one(statement)
