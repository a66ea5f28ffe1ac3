-- The prepared form (RFC 8265) of a nickname registered before nicknames
-- were prepared, where it differs: id is its SHA-1, so that registering it
-- is refused like registering a taken nickname (timpe.users.legacy).
CREATE TABLE IF NOT EXISTS nicknames (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    nickname TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1
) WITHOUT ROWID;
