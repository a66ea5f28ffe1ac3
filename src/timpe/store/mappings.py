"""Locate and read the DDL files under etc/mappings/<adapter>/."""
from pathlib import Path

from timpe.store import identity

DEFAULT_DIR = Path(__file__).resolve().parents[3] / "etc" / "mappings"


def statements(adapter, directory=None):
    """Yield (table, statement) for every DDL statement of ``adapter``."""
    folder = Path(directory or DEFAULT_DIR) / adapter
    files = sorted(folder.glob("*.sql"))
    if not files:
        raise FileNotFoundError(f"no DDL files in {folder}")
    for path in files:
        for stmt in split(path.read_text()):
            yield path.stem, stmt


def split(text):
    """Split a DDL file on ';', dropping '--' comments."""
    lines = [ln for ln in text.splitlines() if not ln.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def create_tables(adapter, directory, execute, existing):
    """Run every DDL statement of ``adapter`` through ``execute``; return the
    tables that were not in ``existing`` (the DDL itself is IF NOT EXISTS).
    A table made here gets a token of its own (timpe.store.identity)."""
    created = []
    for tbl, stmt in statements(adapter, directory):
        execute(identity.fresh(stmt))
        if tbl not in existing and tbl not in created:
            created.append(tbl)
    return created


def tables(adapter, directory=None):
    """The table names ``adapter``'s DDL files define, in file order."""
    return list(dict(statements(adapter, directory)))


#: Columns added to a table after its first release, with their type on
#: each adapter: a store set up by an earlier version gains them at setup.
ADDED = {
    ("user_transactions", "legs"): {"sqlite": "TEXT", "crate": "TEXT INDEX OFF"},
    ("user_transactions", "held"): {"sqlite": "INTEGER", "crate": "BIGINT"},
    ("transactions", "expires"): {"sqlite": "INTEGER", "crate": "BIGINT"},
    ("transactions", "posted"): {"sqlite": "INTEGER", "crate": "BIGINT"},
    ("transactions", "release_seq"): {"sqlite": "INTEGER", "crate": "BIGINT"},
    ("users", "key_hash"): {"sqlite": "TEXT", "crate": "TEXT INDEX OFF"},
    **{(tbl, identity.COLUMN): {
        "sqlite": f"TEXT CONSTRAINT {identity.constraint(tbl)} "
                  f"CHECK (store = '{identity.PLACEHOLDER}')",
        "crate": "TEXT INDEX OFF STORAGE WITH (columnstore = false) CONSTRAINT "
                 f"{identity.constraint(tbl)} CHECK (store = '{identity.PLACEHOLDER}')",
    } for tbl in identity.TABLES},
}


def add_columns_sql(adapter, tbl, column):
    return identity.fresh(f"ALTER TABLE {tbl} ADD COLUMN {column} {ADDED[(tbl, column)][adapter]}")


def add_columns(adapter, execute, columns):
    """Add the columns of ADDED that a table lacks (``columns(table)``: the
    names it has); return them as 'table.column'."""
    added = []
    for tbl, column in ADDED:
        if column not in columns(tbl):
            execute(add_columns_sql(adapter, tbl, column))
            added.append(f"{tbl}.{column}")
    return added
