-- One row per user; id is the SHA-1 hex of the nickname, so registering the
-- same nickname twice is an insert-if-absent race on the primary key.
-- No version column: CrateDB versions every row with _seq_no/_primary_term.
-- Amounts are BIGINT cents: exact, never floating point.
--
-- Shards: rows are routed by the primary key (CLUSTERED BY id). One, as
-- for user_transactions (which says why): phase 1 reads both users rows of
-- each transfer, many transfers' in one look-up, answered by one shard.
-- No partitions: a partition column must be part of the primary key, and
-- users are only ever found by id.
-- Replicas: '0-1' keeps one copy of every shard on each of the two nodes
-- (writes are acknowledged by both), and still lets a one-node cluster work.
-- Refresh every 10 s, as for the other tables.
-- column_policy strict: a misspelt column is an error, not a new column.
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    nickname TEXT NOT NULL,
    initial_balance BIGINT NOT NULL,
    head_seq BIGINT NOT NULL,
    "timestamp" BIGINT NOT NULL,
    -- The SHA-256 hex of the user's API key's secret; only ever read by key.
    key_hash TEXT INDEX OFF
) CLUSTERED BY (id) INTO 1 SHARDS
WITH (number_of_replicas = '0-1', column_policy = 'strict', refresh_interval = 10000);
