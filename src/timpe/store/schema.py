"""The data model: table names, columns and primary keys (DDL per adapter
lives in etc/mappings/<adapter>/). Adapters build SQL only from these names,
never from request data."""
from collections import namedtuple

Table = namedtuple("Table", "name pk columns")

USERS = Table(
    "users",
    pk=("id",),
    # head_seq: a hint of the newest ledger seq; it may lag, never lead.
    columns=("id", "nickname", "initial_balance", "head_seq", "timestamp"),
)

TRANSACTIONS = Table(
    "transactions",
    pk=("id",),
    columns=(
        "id", "sender", "recipient", "amount", "state", "timestamp",
        "updated", "debit_seq", "credit_seq", "reason", "fingerprint",
    ),
)

# The append-only ledger: one row per user per movement of money, never
# updated. (user_id, seq) is contiguous from 0; balance is the running sum.
USER_TRANSACTIONS = Table(
    "user_transactions",
    pk=("user_id", "seq"),
    columns=(
        "user_id", "seq", "transaction_id", "kind", "amount", "balance",
        "timestamp",
    ),
)

TABLES = {t.name: t for t in (USERS, TRANSACTIONS, USER_TRANSACTIONS)}


def table(name):
    try:
        return TABLES[name]
    except KeyError:
        raise ValueError(f"unknown table {name!r}") from None


def check_columns(tbl, columns):
    unknown = set(columns) - set(tbl.columns)
    if unknown:
        raise ValueError(f"unknown columns for {tbl.name}: {sorted(unknown)}")
