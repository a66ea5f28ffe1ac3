-- store: the token this table was made with ({store}, filled in then),
-- which every insert carries and no other may (timpe.store.identity).
CREATE TABLE IF NOT EXISTS transactions (
    id TEXT PRIMARY KEY,
    sender TEXT NOT NULL,
    recipient TEXT NOT NULL,
    amount INTEGER NOT NULL,
    state TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    debit_seq INTEGER,
    credit_seq INTEGER,
    reason TEXT,
    fingerprint TEXT,
    expires INTEGER,
    posted INTEGER,
    release_seq INTEGER,
    store TEXT CONSTRAINT transactions_store CHECK (store = '{store}'),
    version INTEGER NOT NULL DEFAULT 1
) WITHOUT ROWID;
-- /process looks for unfinished work; GET /transactions lists newest first,
-- by state, sender or recipient, a page from its cursor's (timestamp, id) on.
CREATE INDEX IF NOT EXISTS transactions_state ON transactions (state, timestamp);
CREATE INDEX IF NOT EXISTS transactions_timestamp ON transactions (timestamp);
CREATE INDEX IF NOT EXISTS transactions_sender ON transactions (sender, timestamp);
CREATE INDEX IF NOT EXISTS transactions_recipient ON transactions (recipient, timestamp);
