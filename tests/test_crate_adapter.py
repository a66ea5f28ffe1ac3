"""The CrateDB adapter's error mapping, row decoding and settings, checked with
the crate client's own exception types and a real client that cannot connect
(no CrateDB answers here, and none is imitated)."""
import socket

import orjson
import pytest
from crate.client import exceptions as crate_errors
from crate.client.http import _raise_for_status
from urllib3.response import HTTPResponse

from timpe.errors import StoreUnavailable
from timpe.store import store_from_settings
from timpe.store.crate import CrateStore, cas_sql, crash_command, decode, unavailable
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
    lambda s: s.scan(USERS.name, fresh=True),
    lambda s: s.newest(USER_TRANSACTIONS.name, ("u1",), since=0),
    lambda s: s.setup(),
    lambda s: s.drop(),
    lambda s: s.sql("SELECT 1"),
], ids=["insert", "get", "get_many", "cas", "scan", "newest", "setup", "drop", "sql"])
def test_unreachable_cluster_is_store_unavailable(unreachable, call):
    with pytest.raises(StoreUnavailable) as caught:
        call(unreachable)
    assert isinstance(caught.value.__cause__, crate_errors.ConnectionError)
    assert caught.value.status == 503


# -- error mapping -------------------------------------------------------------------

@pytest.mark.parametrize("error", [
    crate_errors.ConnectionError("No more Servers available"),
    crate_errors.ProgrammingError("UnavailableShardsException[[doc.users][1] primary shard is not active]"),
    crate_errors.ProgrammingError("NoShardAvailableActionException[No shard available]"),
    crate_errors.ProgrammingError("ClusterBlockException[blocked by: [SERVICE_UNAVAILABLE/2/no master]]"),
    crate_errors.ProgrammingError("CircuitBreakingException[[query] Data too large]"),
    crate_errors.ProgrammingError("RelationUnknown[Relation 'users' unknown]"),
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


def raising(error):
    def execute(sql, params=()):
        raise error
    return execute


def test_insert_reports_a_duplicate_key_as_a_lost_race():
    store = CrateStore("localhost:4200")
    store._execute = raising(crate_errors.IntegrityError("DuplicateKeyException[exists]"))
    assert store.insert(USERS.name, {"id": "u1"}) is False
    store._execute = raising(crate_errors.ProgrammingError("DuplicateKeyException[exists]"))
    assert store.insert(USERS.name, {"id": "u1"}) is False


def test_insert_passes_other_errors_on():
    store = CrateStore("localhost:4200")
    store._execute = raising(crate_errors.ProgrammingError("ColumnUnknownException[x]"))
    with pytest.raises(crate_errors.ProgrammingError):
        store.insert(USERS.name, {"id": "u1"})


def test_cas_reports_a_version_conflict_as_lost():
    store = CrateStore("localhost:4200")
    store._execute = raising(crate_errors.ProgrammingError(
        "VersionConflictEngineException[[u1]: version conflict, required seqNo [3]]"))
    assert store.cas(USERS.name, ("u1",), (3, 1), {"head_seq": 1}) is None


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
    assert cas_sql(USERS, ("u1",), (3, 1), {"head_seq": 1})[1][-2:] == [3, 1]
    for bad in (None, 3, (1,), ("a", "b")):
        with pytest.raises(ValueError):
            cas_sql(USERS, ("u1",), bad, {"head_seq": 1})
    with pytest.raises(ValueError):
        cas_sql(USERS, ("u1",), (3, 1), {})


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


def test_crash_command_targets_every_host():
    argv = crash_command(SETTINGS)
    assert argv[0].endswith("crash")
    assert argv[1:] == ["--hosts", "localhost:4200", "localhost:4201", "--schema", "timpe"]
