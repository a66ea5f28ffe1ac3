-- The append-only ledger: one row per user per batch of legs (movements of
-- money), written once by insert-if-absent on (user_id, seq), never updated.
-- legs: JSON, read by key only, so not indexed; held: the running total of
-- the user's open holds, beside the running balance.
--
-- Key: row_key joins user_id and seq (the adapter fills it in, as a JSON
-- array). CrateDB plans a look-up of many two-column keys in time that
-- grows with the square of the keys, of one-column keys with their number
-- (docs/benchmarks.rst), and a head is proven by a look-up of several.
-- Shards: one, as for every table (one row per batch of legs, so this is
-- the largest table). A bulk request then reaches one primary and its
-- replica, each with one translog sync, whatever its rows: the cluster's
-- CPU is per shard request more than per row (docs/crate.rst). When the
-- cluster outgrows it: ALTER TABLE ... SET ("blocks.write" = true), then
-- SET (number_of_shards = n) (a one-shard table splits into any number).
-- No partitions: the key is what every read uses; a time partition would
-- have to join it.
-- Replicas: '0-1': an acknowledged ledger row is on both nodes.
-- Refresh every 10 s, as for transactions: only the first search of a
-- process for a user's newest row sees it, and a look-up by key corrects it.
-- store: the token this table was made with ({store}, filled in then),
-- which every insert carries and no other may (timpe.store.identity); neither indexed
-- nor in the column store: no query reads it.
CREATE TABLE IF NOT EXISTS user_transactions (
    row_key TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    transaction_id TEXT,
    kind TEXT NOT NULL,
    amount BIGINT NOT NULL,
    balance BIGINT NOT NULL,
    "timestamp" BIGINT NOT NULL,
    legs TEXT INDEX OFF,
    held BIGINT,
    store TEXT INDEX OFF STORAGE WITH (columnstore = false) CONSTRAINT user_transactions_store CHECK (store = '{store}')
) CLUSTERED INTO 1 SHARDS
WITH (number_of_replicas = '0-1', column_policy = 'strict', refresh_interval = 10000);
