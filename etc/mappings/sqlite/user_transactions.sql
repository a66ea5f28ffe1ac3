-- store: the token this table was made with ({store}, filled in then),
-- which every insert carries and no other may (timpe.store.identity).
CREATE TABLE IF NOT EXISTS user_transactions (
    user_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    transaction_id TEXT,
    kind TEXT NOT NULL,
    amount INTEGER NOT NULL,
    balance INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    legs TEXT,
    held INTEGER,
    store TEXT CONSTRAINT user_transactions_store CHECK (store = '{store}'),
    version INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (user_id, seq)
) WITHOUT ROWID;
