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
    version INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (user_id, seq)
) WITHOUT ROWID;
