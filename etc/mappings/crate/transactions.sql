-- One row per transfer, moved through its states by compare-and-set on
-- (_seq_no, _primary_term); debit_seq/credit_seq record the ledger rows it
-- claims, so recovery finds them by primary key, never by a scan; a hold's
-- expires, posted and release_seq (its second leg's claim) likewise.
-- CrateDB indexes every column, so the scans by state and by timestamp need
-- no CREATE INDEX (the SQLite mapping needs two).
--
-- Shards: routed by id, one, as for user_transactions (which says why).
-- No partitions: partitioning by day or month would make the partition
-- column part of the primary key, and every step of the protocol looks a
-- transaction up by its id alone.
-- Replicas: '0-1', as for users: each node holds a copy of every shard.
-- Refresh every 10 s, not every second: a refresh makes new segments on
-- every shard, and transfers never search (their reads are by primary
-- key); listings and /process refresh first (crate.fresh_scans). The
-- store's CPU per transfer fell by about a third (docs/benchmarks.rst).
-- store: the token this table was made with ({store}, filled in then),
-- which every insert carries and no other may (timpe.store.identity); neither indexed
-- nor in the column store: no query reads it.
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
    fingerprint TEXT,
    expires BIGINT,
    posted BIGINT,
    release_seq BIGINT,
    store TEXT INDEX OFF STORAGE WITH (columnstore = false) CONSTRAINT transactions_store CHECK (store = '{store}')
) CLUSTERED BY (id) INTO 1 SHARDS
WITH (number_of_replicas = '0-1', column_policy = 'strict', refresh_interval = 10000);
