-- The prepared form (RFC 8265) of a nickname registered before nicknames
-- were prepared, where it differs: id is its SHA-1, so that registering it
-- is refused like registering a taken nickname (timpe.users.legacy). Read
-- by primary key only (a real-time get); few rows, so shards, replicas and
-- refresh as for users.
CREATE TABLE IF NOT EXISTS nicknames (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    nickname TEXT NOT NULL
) CLUSTERED BY (id) INTO 1 SHARDS
WITH (number_of_replicas = '0-1', column_policy = 'strict', refresh_interval = 10000);
