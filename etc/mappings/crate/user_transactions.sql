-- The append-only ledger: one row per user per movement of money, written
-- once by insert-if-absent on (user_id, seq) and never updated.
--
-- Shards: CLUSTERED BY (user_id) keeps a user's whole ledger on one shard,
-- so the walk from users.head_seq to the newest row is a run of real-time
-- gets against one shard. 6 shards, as for transactions (one row per
-- transaction per party, so this is the largest table).
-- No partitions: (user_id, seq) is the key every read uses; a time partition
-- would have to join it.
-- Replicas: '0-1': an acknowledged ledger row is on both nodes.
CREATE TABLE IF NOT EXISTS user_transactions (
    user_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    transaction_id TEXT,
    kind TEXT NOT NULL,
    amount BIGINT NOT NULL,
    balance BIGINT NOT NULL,
    "timestamp" BIGINT NOT NULL,
    PRIMARY KEY (user_id, seq)
) CLUSTERED BY (user_id) INTO 6 SHARDS
WITH (number_of_replicas = '0-1', column_policy = 'strict');
