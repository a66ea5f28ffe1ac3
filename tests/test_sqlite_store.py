"""What the SQLite adapter does beyond the store contract: its file format
and its own checkpoints."""
import logging
import os
import sqlite3

from timpe.store import sqlite as adapter
from timpe.store.sqlite import SQLiteStore, checkpoint_wal


def pragma(store, name):
    return store.sql(f"PRAGMA {name}")[1][0][0]


def test_a_new_file_gets_the_smaller_pages_and_wal(tmp_path):
    store = SQLiteStore(tmp_path / "new.sqlite")
    store.setup()
    assert pragma(store, "page_size") == adapter.PAGE_SIZE == 2048
    assert pragma(store, "journal_mode") == "wal"
    assert pragma(store, "wal_autocheckpoint") == 0  # the adapter checkpoints


def test_an_existing_file_keeps_its_pages_and_rows(tmp_path):
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE kept (a)")
    conn.execute("INSERT INTO kept VALUES (1)")
    conn.commit()
    conn.close()
    store = SQLiteStore(path)
    store.setup()
    assert pragma(store, "page_size") == 4096  # SQLite's default, as it was made
    assert store.sql("SELECT a FROM kept")[1] == [(1,)]


def _append(store, seqs):
    for seq in seqs:
        store.insert("user_transactions", {
            "user_id": "u", "seq": seq, "transaction_id": None, "kind": "deposit",
            "amount": 1, "balance": seq + 1, "timestamp": seq})


def test_a_checkpoint_lets_the_next_writes_start_the_wal_over(tmp_path):
    sizes = {}
    for checkpointing in (True, False):
        path = str(tmp_path / f"{checkpointing}.sqlite")
        store = SQLiteStore(path, checkpoint_every=10 ** 9)  # only the explicit one
        store.setup()
        _append(store, range(300))
        before = os.path.getsize(path + "-wal")
        if checkpointing:
            assert checkpoint_wal(path) is True
        _append(store, range(300, 400))
        sizes[checkpointing] = (before, os.path.getsize(path + "-wal"))
        assert store.sql("SELECT COUNT(*) FROM user_transactions")[1] == [(400,)]
        store.close()
    # Started over: 100 more writes fit in what 300 used. Without: it grew.
    assert sizes[True][1] == sizes[True][0]
    assert sizes[False][1] > sizes[False][0]


def test_a_failed_background_checkpoint_is_logged_not_raised(tmp_path, caplog):
    store = SQLiteStore(tmp_path / "no-such-dir" / "x.sqlite")
    with caplog.at_level(logging.ERROR, logger="timpe.store.sqlite"):
        store._checkpointing = True
        store._checkpoint_in_background()
    assert "checkpoint of" in caplog.text
    assert store._checkpointing is False  # the next one may run


def test_setup_gives_a_ledger_of_an_earlier_version_its_legs_column(tmp_path):
    path = tmp_path / "earlier.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE user_transactions (user_id TEXT NOT NULL, seq INTEGER NOT NULL, "
                 "transaction_id TEXT, kind TEXT NOT NULL, amount INTEGER NOT NULL, "
                 "balance INTEGER NOT NULL, timestamp INTEGER NOT NULL, "
                 "version INTEGER NOT NULL DEFAULT 1, PRIMARY KEY (user_id, seq)) WITHOUT ROWID")
    conn.execute("INSERT INTO user_transactions VALUES ('u', 0, NULL, 'deposit', 5, 5, 1, 1)")
    conn.commit()
    conn.close()
    store = SQLiteStore(path)
    store.setup()
    store.setup()  # again: nothing more to add
    row = store.get("user_transactions", ("u", 0))
    assert (row["legs"], row["balance"]) == (None, 5)
    columns = [r[1] for r in store.sql("PRAGMA table_info(user_transactions)")[1]]
    assert columns.count("legs") == 1
