"""Kill the process at every primitive call of a transfer; /process repairs."""
import pytest

from tests.conftest import assert_sound
from tests.faults import Crash, FaultyStore
from tests.lagging import LaggingStore
from timpe.store.schema import TRANSACTIONS
from timpe.transactions.services import TransactionService
from timpe.users.services import UserService


def setup_users(store, **balances):
    users = UserService(store)
    return {name: users.register(name, cents)["id"] for name, cents in balances.items()}


def calls_of(store, action):
    counter = FaultyStore(store)
    action(counter)
    return counter.calls


def transfer(store, ids, amount=3000, claimed=False):
    service = TransactionService(store)
    return service.complete(service.create(ids["a"], ids["b"], amount, claimed=claimed)[0])


def _count_full_transfer(tmp_path, claimed):
    from timpe.store.sqlite import SQLiteStore
    store = SQLiteStore(tmp_path / "count.sqlite")
    store.setup()
    ids = setup_users(store, a=10000, b=0)
    return calls_of(store, lambda s: transfer(s, ids, claimed=claimed))


@pytest.mark.parametrize("searches", ["current", "lagging"])
@pytest.mark.parametrize("claimed", [False, True], ids=["queued", "immediate"])
@pytest.mark.parametrize("mode", ["before", "after"])
def test_crash_at_every_step_of_one_transfer(store, tmp_path, mode, claimed, searches):
    total = _count_full_transfer(tmp_path, claimed)
    # Phase 1's reads and insert, two ledger inserts, the state changes:
    # an immediate transfer makes 7 calls (its insert claims both legs).
    assert total >= (7 if claimed else 9)
    ids = setup_users(store, a=1000000, b=0)
    # Lagging searches only add round trips (a retry), so every run still
    # reaches its k-th call.
    seen = (lambda k: LaggingStore(store, seed=k)) if searches == "lagging" else (lambda k: store)
    healthy = TransactionService(seen(0))
    users = UserService(store)
    finished = 0
    for k in range(1, total + 1):
        acknowledged = None
        try:
            acknowledged = transfer(FaultyStore(seen(k), crash_at=k, mode=mode), ids, claimed=claimed)
        except Crash:
            pass
        assert acknowledged is None  # every run of the transfer reached k calls
        healthy.process()
        assert_sound(store)
        rows = store.scan(TRANSACTIONS.name)
        # Every transfer recorded is finished (funds are ample), however it was cut.
        assert {t["state"] for t in rows} <= {"finished"}
        finished = len(rows)
        assert users.find(ids["a"])["balance"] == 10000 - 30 * finished
    # Only a crash before phase 1's insert loses the (unacknowledged)
    # transfer: at most 4 calls come first (users rows, two heads, their
    # proof), 2 more when a search lags and the hint's row is read.
    assert finished >= total - 6


@pytest.mark.parametrize("mode", ["before", "after"])
def test_crash_while_a_rival_spends_the_same_money(store, tmp_path, mode):
    """a holds 50; two transfers of 30 race: exactly one may finish."""
    total = 24  # more than one complete() makes
    for k in range(1, total + 1):
        ids = setup_users(store, **{f"a{k}": 5000, f"b{k}": 0})
        service = TransactionService(store)
        first = service.create(ids[f"a{k}"], ids[f"b{k}"], 3000)[0]
        rival = service.create(ids[f"a{k}"], ids[f"b{k}"], 3000)[0]
        try:
            TransactionService(FaultyStore(store, crash_at=k, mode=mode)).complete(first)
        except Crash:
            pass
        service.complete(service.find(rival["id"]))
        service.process()
        states = sorted(service.find(t["id"])["state"] for t in (first, rival))
        assert states == ["failed", "finished"]
        assert UserService(store).find(ids[f"a{k}"])["balance"] == 20
    assert_sound(store)


def test_registration_cut_between_its_two_writes_is_repaired(store):
    # Its calls: the nicknames look-up, the users row, the ledger's row 0.
    faulty = FaultyStore(store, crash_at=3, mode="before")  # users row written, ledger not
    with pytest.raises(Crash):
        UserService(faulty).register("half", 4200)
    [user], _ = UserService(store).all()
    assert (user["nickname"], user["balance"]) == ("half", 42)
    assert_sound(store)
