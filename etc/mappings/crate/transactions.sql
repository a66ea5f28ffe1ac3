-- One row per transfer, moved through its states by compare-and-set on
-- (_seq_no, _primary_term); debit_seq/credit_seq record the ledger rows it
-- claims, so recovery finds them by primary key, never by a scan.
-- CrateDB indexes every column, so the scans by state and by timestamp need
-- no CREATE INDEX (the SQLite mapping needs two).
--
-- Shards: routed by id (random UUIDs), 6 shards: transfers are the bulk of
-- the writes, and 6 divides evenly over 2, 3 or 6 nodes.
-- No partitions: partitioning by day or month would make the partition
-- column part of the primary key, and every step of the protocol looks a
-- transaction up by its id alone.
-- Replicas: '0-1', as for users: each node holds a copy of every shard.
CREATE TABLE IF NOT EXISTS transactions (
    id TEXT PRIMARY KEY,
    sender TEXT NOT NULL,
    recipient TEXT NOT NULL,
    amount BIGINT NOT NULL,
    state TEXT NOT NULL,
    "timestamp" BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    debit_seq BIGINT,
    credit_seq BIGINT,
    reason TEXT,
    fingerprint TEXT
) CLUSTERED BY (id) INTO 6 SHARDS
WITH (number_of_replicas = '0-1', column_policy = 'strict');
