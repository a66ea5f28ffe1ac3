CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    nickname TEXT NOT NULL,
    initial_balance INTEGER NOT NULL,
    head_seq INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    key_hash TEXT,
    version INTEGER NOT NULL DEFAULT 1
) WITHOUT ROWID;
