"""The CrateDB adapter's error mapping, row decoding and settings, checked with
the crate client's own exception types, the answers CrateDB gives for one
row of a bulk request (as a live cluster gave them), and a real client that
cannot connect (no CrateDB answers here, and none is imitated)."""
import shutil
import socket
import sys
import time
from pathlib import Path

import orjson
import pytest
from crate.client import exceptions as crate_errors
from crate.client.http import _raise_for_status
from urllib3.response import HTTPResponse

from timpe.errors import StoreUnavailable
from timpe.store import store_from_settings
from timpe.store.crate import (
    CrateStore, crash_command, decode, insert_sql, racing, row_outcome, unavailable,
    update_params, update_sql,
)
from timpe.store.schema import USER_TRANSACTIONS, USERS


def unused_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def unreachable():
    store = CrateStore(f"127.0.0.1:{unused_port()} 127.0.0.1:{unused_port()}", timeout=2)
    yield store
    store.close()


# -- connection errors (a real client, connection refused) ------------------------

@pytest.mark.parametrize("call", [
    lambda s: s.insert(USERS.name, {"id": "u1"}),
    lambda s: s.get(USERS.name, ("u1",)),
    lambda s: s.get_many(USERS.name, [("u1",), ("u2",)]),
    lambda s: s.cas(USERS.name, ("u1",), (0, 1), {"head_seq": 1}),
    lambda s: s.update(USERS.name, ("u1",), {"head_seq": 1}),
    lambda s: s.scan(USERS.name, fresh=True),
    lambda s: s.newest(USER_TRANSACTIONS.name, ("u1",), since=0),
    lambda s: s.setup(),
    lambda s: s.drop(),
    lambda s: s.sql("SELECT 1"),
], ids=["insert", "get", "get_many", "cas", "update", "scan", "newest", "setup", "drop", "sql"])
def test_unreachable_cluster_is_store_unavailable(unreachable, call):
    assert unreachable.unavailable_at is None
    before = time.monotonic()
    with pytest.raises(StoreUnavailable) as caught:
        call(unreachable)
    assert isinstance(caught.value.__cause__, crate_errors.ConnectionError)
    assert caught.value.status == 503
    # what transfers waiting for a turn look at (TransactionService)
    assert before <= unreachable.unavailable_at <= time.monotonic()


# -- error mapping -------------------------------------------------------------------

@pytest.mark.parametrize("error", [
    crate_errors.ConnectionError("No more Servers available"),
    crate_errors.ProgrammingError("UnavailableShardsException[[doc.users][1] primary shard is not active]"),
    crate_errors.ProgrammingError("NoShardAvailableActionException[No shard available]"),
    crate_errors.ProgrammingError("ClusterBlockException[blocked by: [SERVICE_UNAVAILABLE/2/no master]]"),
    crate_errors.ProgrammingError("CircuitBreakingException[[query] Data too large]"),
    crate_errors.ProgrammingError("RelationUnknown[Relation 'users' unknown]"),
    crate_errors.ProgrammingError("NoSuchNodeException[No such node [5X4Vvy0nQXmTEASp9bNCqg]]"),
    crate_errors.ProgrammingError("SQLParseException[Unknown node: VHjqAqWXSiigCujD4OPj5Q]"),
    crate_errors.ProgrammingError(
        "IndexNotFoundException[no such index [transactions/e7WweH8lQnerTejcrGvnew]]"),
])
def test_errors_the_cluster_may_recover_from_are_unavailable(error):
    assert isinstance(unavailable(error), StoreUnavailable)


@pytest.mark.parametrize("error", [
    crate_errors.ProgrammingError("SQLParseException[line 1:8: mismatched input]"),
    crate_errors.ProgrammingError("ColumnUnknownException[Column balance unknown]"),
    crate_errors.IntegrityError("DuplicateKeyException[A document with the same primary key exists already]"),
    ValueError("not a crate error"),
])
def test_bugs_are_not_disguised_as_unavailability(error):
    assert unavailable(error) is None


def crate_answer(status, message):
    """An HTTP error answer in the shape CrateDB's _sql endpoint documents."""
    body = orjson.dumps({"error": {"message": message, "code": status * 10}})
    return HTTPResponse(body=body, status=status, reason="error",
                        headers={"content-type": "application/json"})


def test_the_installed_client_raises_integrity_error_for_a_duplicate_key():
    # The adapter's "lost the race" depends on this mapping in crate.client.http.
    message = "DuplicateKeyException[A document with the same primary key exists already]"
    with pytest.raises(crate_errors.IntegrityError):
        _raise_for_status(crate_answer(409, message))


# -- one row of a bulk answer: as a live two-node CrateDB 6.5 cluster answered --

DUPLICATE = {"rowcount": -2, "error": {
    "code": 4091, "message": "DuplicateKeyException[A document with the same primary key "
                             "exists already]"}}
CONFLICT = {"rowcount": -2, "error": {
    "code": 4092, "message": "VersionConflictEngineException[[c]: version conflict, required "
                             "seqNo [999], primary term [1]. current document has seqNo [1] and "
                             "primary term [2]]"}}
MISSING = {"rowcount": -2, "error": {
    "code": 40411, "message": "DocumentMissingException[[zz]: document missing]"}}


def test_a_bulk_row_that_applied_or_lost():
    assert row_outcome({"rowcount": 1}) is True
    assert row_outcome({"rowcount": 0}) is False
    for lost in (DUPLICATE, CONFLICT, MISSING):
        assert row_outcome(lost) is False


def test_a_bulk_row_the_cluster_could_not_serve_is_unavailable():
    outcome = row_outcome({"rowcount": -2, "error": {
        "code": 5002, "message": "UnavailableShardsException[[doc.users][1] primary shard "
                                 "is not active]"}})
    assert isinstance(outcome, StoreUnavailable)


def test_any_other_bulk_row_error_is_a_bug():
    outcome = row_outcome({"rowcount": -2, "error": {
        "code": 4043, "message": "ColumnUnknownException[Column balance unknown]"}})
    assert isinstance(outcome, crate_errors.ProgrammingError)
    assert isinstance(row_outcome({"rowcount": -2}), crate_errors.ProgrammingError)


def test_a_row_that_failed_unsaid_is_lost_only_where_the_caller_reads_it_again():
    insert = insert_sql(USERS, tuple(USERS.columns))
    cas = update_sql(USERS, ("nickname",), True)
    update = update_sql(USERS, ("nickname",), False)
    assert racing(insert) and racing(cas) and not racing(update)
    assert row_outcome({"rowcount": -2}, unsaid_lost=True) is False
    named = row_outcome({"rowcount": -2, "error": {"code": 4043, "message": "x"}},
                        unsaid_lost=True)
    assert isinstance(named, crate_errors.ProgrammingError)


def test_each_caller_of_a_bulk_request_gets_its_own_rows_outcome():
    store = CrateStore("localhost:4200")
    store._execute_bulk = lambda sql, bulk, unsaid_lost: [row_outcome(DUPLICATE),
                                                           row_outcome({"rowcount": 1})]
    from timpe.store.batching import Job
    batch = [Job("INSERT", ["a"]), Job("INSERT", ["b"])]
    store._write_batch(batch)
    assert [job.outcome for job in batch] == [False, True]


# -- row decoding ----------------------------------------------------------------------

def test_decode_makes_dicts_with_one_version_token():
    columns = ["id", "head_seq", "nickname", "_seq_no", "_primary_term"]
    rows = [["u1", 10**15 + 1, None, 7, 2], ["u2", 0, "bob", 0, 1]]
    assert decode(columns, rows) == [
        {"id": "u1", "head_seq": 10**15 + 1, "nickname": None, "_version": (7, 2)},
        {"id": "u2", "head_seq": 0, "nickname": "bob", "_version": (0, 1)},
    ]


def test_decode_without_version_columns_and_empty_results():
    assert decode(["count"], [[3]]) == [{"count": 3}]
    assert decode(["id"], []) == []


def test_decode_refuses_rows_that_do_not_match_the_columns():
    with pytest.raises(ValueError):
        decode(["id", "nickname"], [["u1"]])


def test_version_token_is_checked():
    assert update_params(USERS, ("u1",), {"head_seq": 1}, (3, 1))[-2:] == [3, 1]
    for bad in (3, (1,), ("a", "b")):
        with pytest.raises(ValueError):
            update_params(USERS, ("u1",), {"head_seq": 1}, bad)
    with pytest.raises(ValueError):
        update_sql(USERS, (), True)
    with pytest.raises(ValueError):
        update_sql(USERS, ("id",), False)


# -- settings ---------------------------------------------------------------------------

SETTINGS = {
    "timpe.store": "timpe.store.crate.CrateStore",
    "crate.hosts": "localhost:4200 localhost:4201",
    "crate.schema": "timpe",
    "crate.fresh_scans": "true",
}


def test_selected_by_dotted_name_with_every_host():
    store = store_from_settings(SETTINGS)
    assert isinstance(store, CrateStore)
    assert store.hosts == ["localhost:4200", "localhost:4201"]
    assert (store.schema, store.fresh_scans) == ("timpe", True)


def test_batches_linger_a_few_milliseconds_unless_the_settings_say_none():
    store = store_from_settings(SETTINGS)
    assert store.linger == (0.001, 0.004)
    assert store_from_settings({**SETTINGS, "crate.linger_ms": "10"}).linger == (0.001, 0.01)
    assert store_from_settings({**SETTINGS, "crate.linger_ms": "0"}).linger is None


def crash_installed():
    return Path(sys.executable).with_name("crash").exists() or shutil.which("crash") is not None


@pytest.mark.skipif(not crash_installed(), reason="the crash shell is the crate extra, which "
                    "make run STORE=crate (or make test with CRATE_HOME) installs")
def test_crash_command_targets_every_host():
    argv = crash_command(SETTINGS)
    assert argv[0].endswith("crash")
    assert argv[1:] == ["--hosts", "localhost:4200", "localhost:4201", "--schema", "timpe"]


@pytest.mark.skipif(crash_installed(), reason="the crash shell is installed here")
def test_crash_command_without_the_shell_says_how_to_install_it():
    with pytest.raises(FileNotFoundError, match=r"\[crate\]"):
        crash_command(SETTINGS)
