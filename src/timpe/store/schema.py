"""The data model: table names, columns and primary keys (DDL per adapter
lives in etc/mappings/<adapter>/). Adapters build SQL only from these names,
never from request data."""
from collections import namedtuple

Table = namedtuple("Table", "name pk columns")

USERS = Table(
    "users",
    pk=("id",),
    # head_seq: a hint of the newest ledger seq; it may lag, never lead.
    # key_hash: the SHA-256 hex of the secret of the user's API key
    # (timpe.auth.keys), or NULL: no key.
    columns=("id", "nickname", "initial_balance", "head_seq", "timestamp", "key_hash"),
)

TRANSACTIONS = Table(
    "transactions",
    pk=("id",),
    columns=(
        "id", "sender", "recipient", "amount", "state", "timestamp",
        "updated", "debit_seq", "credit_seq", "reason", "fingerprint",
        # Holds only (timpe.transactions.holds): when it expires (ms), the
        # amount posted, and the claim of the sender's second leg.
        "expires", "posted", "release_seq",
    ),
)

# The append-only ledger, never updated: (user_id, seq) is contiguous from
# 0; balance is the running sum, amount what the row moved in all, held the
# running total of the user's open holds (NULL: 0, a row of an earlier
# version). A row
# carries one leg or many (legs: JSON, see timpe.ledger.legs); a row with
# no legs is the one leg transaction_id, kind, amount.
USER_TRANSACTIONS = Table(
    "user_transactions",
    pk=("user_id", "seq"),
    columns=(
        "user_id", "seq", "transaction_id", "kind", "amount", "balance",
        "timestamp", "legs", "held",
    ),
)

# Nicknames of users registered before nicknames were prepared (RFC 8265)
# whose prepared form is not what they were registered as: id is the SHA-1
# of the prepared form, which registration looks up (timpe.users.legacy).
NICKNAMES = Table(
    "nicknames",
    pk=("id",),
    columns=("id", "user_id", "nickname"),
)

TABLES = {t.name: t for t in (USERS, TRANSACTIONS, USER_TRANSACTIONS, NICKNAMES)}


def table(name):
    try:
        return TABLES[name]
    except KeyError:
        raise ValueError(f"unknown table {name!r}") from None


def check_columns(tbl, columns):
    unknown = set(columns) - set(tbl.columns)
    if unknown:
        raise ValueError(f"unknown columns for {tbl.name}: {sorted(unknown)}")


def check_changes(tbl, columns):
    """An update's columns: known, at least one, and no primary key column
    (a row's key never changes)."""
    check_columns(tbl, columns)
    if not columns:
        raise ValueError("an update needs at least one change")
    if set(columns) & set(tbl.pk):
        raise ValueError("a primary key never changes")


def key_values(tbl, key):
    """The primary-key values of ``key`` as a list, checked against ``tbl``."""
    key = list(key) if isinstance(key, (tuple, list)) else [key]
    if len(key) != len(tbl.pk):
        raise ValueError(f"{tbl.name} key has {len(tbl.pk)} parts")
    return key


def prefix_values(tbl, prefix):
    """The leading primary-key values of ``prefix``: every key column but the last."""
    prefix = list(prefix)
    if len(prefix) != len(tbl.pk) - 1:
        raise ValueError(f"{tbl.name} key prefix has {len(tbl.pk) - 1} parts")
    return prefix


def where_clauses(tbl, where, quote=str):
    """SQL conditions and parameters for a scan's ``where`` ({column: value
    or list of values}): one ``IN`` per column, ``FALSE`` for an empty list
    (``IN ()`` is not SQL everywhere). ``quote`` renders a column name."""
    clauses, params = [], []
    for col, value in (where or {}).items():
        check_columns(tbl, [col])
        values = list(value) if isinstance(value, (list, tuple, set)) else [value]
        if values:
            clauses.append(f"{quote(col)} IN ({', '.join('?' * len(values))})")
            params.extend(values)
        else:
            clauses.append("FALSE")
    return clauses, params


def order_terms(tbl, order_by):
    """[(column, 'ASC'|'DESC')] from 'col', 'col desc' or a sequence of them."""
    terms = []
    for item in ([order_by] if isinstance(order_by, str) else order_by):
        col, _, direction = item.partition(" ")
        check_columns(tbl, [col])
        direction = direction.strip().upper() or "ASC"
        if direction not in ("ASC", "DESC"):
            raise ValueError(f"bad sort direction {direction!r}")
        terms.append((col, direction))
    return terms


def keyset_clause(terms, after, quote=str):
    """The SQL condition and parameters for the rows that come strictly after
    ``after`` (a row, or its values of the order's columns) in the order
    ``terms`` (see order_terms): keyset paging, which finds where the page
    starts from the last row shown instead of reading and dropping every
    row before it, as an OFFSET does. The order's columns must hold no NULL
    and its last terms should make it total (a key)."""
    missing = [col for col, _ in terms if col not in after]
    if not terms or missing:
        raise ValueError(f"'after' needs a value for every column of the order: {missing}")
    alternatives, params = [], []
    for i, (col, direction) in enumerate(terms):
        equal = [f"{quote(c)} = ?" for c, _ in terms[:i]]
        beyond = f"{quote(col)} {'>' if direction == 'ASC' else '<'} ?"
        alternatives.append("(" + " AND ".join(equal + [beyond]) + ")")
        params += [after[c] for c, _ in terms[:i]] + [after[col]]
    return "(" + " OR ".join(alternatives) + ")", params


def scan_sql(tbl, selected, where=None, order_by=None, limit=None, after=None, quote=str):
    """A scan of ``tbl`` as (SQL, parameters): the columns ``selected`` (as
    rendered), ``where`` (see where_clauses), the order (order_terms), the
    rows after ``after`` (keyset_clause), at most ``limit``."""
    clauses, params = where_clauses(tbl, where, quote)
    terms = order_terms(tbl, order_by) if order_by else []
    if after is not None:
        clause, more = keyset_clause(terms, after, quote)
        clauses.append(clause)
        params += more
    sql = f"SELECT {selected} FROM {quote(tbl.name)}"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    if terms:
        sql += " ORDER BY " + ", ".join(f"{quote(c)} {d}" for c, d in terms)
    if limit is not None:
        sql += f" LIMIT {int(limit):d}"
    return sql, params


def count_by_sql(tbl, column, where=None, least=None, quote=str):
    """Rows of ``tbl`` counted by ``column`` (and the least ``least`` of
    each), where ``where`` holds, as (SQL, parameters)."""
    check_columns(tbl, [column] + ([least] if least else []))
    clauses, params = where_clauses(tbl, where, quote)
    low = f"min({quote(least)})" if least else "NULL"
    sql = f"SELECT {quote(column)}, count(*), {low} FROM {quote(tbl.name)}"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    return sql + f" GROUP BY {quote(column)}", params
